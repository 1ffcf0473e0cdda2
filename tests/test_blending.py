"""Self-blended pseudo-fakes: determinism, exactness outside the mask, mask placement, landmark inputs, errors."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from forensics.faces import align_face, template_in_crop
from forensics.landmarks import five_points
from forensics.synthetic import FrameState, SceneConfig, render_frame, world_identity
from generators.blending import SBIConfig, landmark_mask, self_blend, template_landmarks


def _render(k: int, size: int, yaw: float = 0.0):
    frame, truth = render_frame(world_identity(0, k), FrameState(yaw=yaw, mouth_open=0.3), SceneConfig(), 2 * size)
    crop, matrix = align_face(frame, five_points(truth.landmarks), size=size, margin=0.25)
    lm68 = truth.landmarks.astype(np.float64) @ matrix[:, :2].T + matrix[:, 2]
    return crop, lm68, five_points(lm68)


@pytest.fixture(scope="module")
def face128():
    return _render(2, 128, yaw=12.0)


def _landmarks(face128, kind):
    return {"68": face128[1], "5": face128[2], "none": None}[kind]


def test_same_seed_same_fake_and_recipe_other_seed_differs(face128):
    crop, lm68, _ = face128
    a = self_blend(crop, lm68, np.random.default_rng(11))
    b = self_blend(crop, lm68, np.random.default_rng(11))
    c = self_blend(crop, lm68, np.random.default_rng(12))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]
    assert not np.array_equal(a[0], c[0]) and a[2] != c[2]


@pytest.mark.parametrize("kind", ["68", "5", "none"])
def test_outputs_masks_and_exactness_for_each_landmark_input(face128, kind):
    crop = face128[0]
    for seed in range(6):
        fake, mask, recipe = self_blend(crop, _landmarks(face128, kind), np.random.default_rng(seed))
        assert fake.shape == crop.shape and fake.dtype == np.uint8
        assert mask.shape == crop.shape[:2] and mask.dtype == np.float32
        assert mask.min() >= 0.0 and mask.max() <= 1.0
        assert mask.max() == pytest.approx(recipe["blend_ratio"], abs=1e-6)
        for corner in (mask[:4, :4], mask[:4, -4:], mask[-4:, :4], mask[-4:, -4:]):
            assert (corner == 0).all()
        assert mask[60:70, 60:70].min() > 0                         # face centre (nose) is always blended
        untouched = mask == 0
        assert untouched.mean() > 0.1
        assert np.array_equal(fake[untouched], crop[untouched])      # bit for bit outside the mask
        core = mask >= 0.5 * mask.max()
        assert np.abs(fake[core].astype(int) - crop[core].astype(int)).mean() > 0.5
        json.dumps(recipe)                                          # JSON-safe
        expected = {"68": "landmarks68", "5": "landmarks5", "none": "template"}[kind]
        assert recipe["landmark_source"] == expected


def test_recipe_lists_every_choice(face128):
    _, _, recipe = self_blend(face128[0], face128[1], np.random.default_rng(3))
    assert set(recipe) == {"generator", "landmark_source", "mask", "blend_ratio", "colour", "frequency", "geometry"}
    assert set(recipe["mask"]) >= {"mask_type", "hull_scale", "elastic_px", "morph_px", "blur_sigma_px"}
    assert set(recipe["colour"]) == {"hue", "saturation", "value", "brightness", "contrast", "rgb_shift"}
    assert recipe["frequency"]["kind"] in ("resize", "sharpen", "blur")
    assert set(recipe["geometry"]) == {"tx", "ty", "scale"}
    kinds = {self_blend(face128[0], None, np.random.default_rng(s))[2]["frequency"]["kind"] for s in range(30)}
    assert kinds == {"resize", "sharpen", "blur"}


def test_mask_follows_the_face_and_hull_covers_the_68_points(face128):
    crop, lm68, lm5 = face128
    config = SBIConfig(mask_types=("face",), hull_scale=(1.0, 1.0), elastic_prob=0.0, morph=(0.0, 0.0),
                       blur=(0.0, 0.0))
    hard68, _ = landmark_mask(crop.shape[:2], lm68, np.random.default_rng(0), config)
    hard5, _ = landmark_mask(crop.shape[:2], lm5, np.random.default_rng(0), config)
    inside = np.round(lm68[17:]).astype(int)                     # brows, eyes, nose, mouth lie inside both
    assert hard68[inside[:, 1], inside[:, 0]].min() == 1.0
    assert hard5[inside[:, 1], inside[:, 0]].min() == 1.0
    overlap = (hard68 * hard5).sum() / np.maximum(hard68, hard5).sum()
    assert overlap > 0.75                                         # the 5-point outline extrapolates the face well
    moved = landmark_mask(crop.shape[:2], lm68 + [20.0, 0.0], np.random.default_rng(0), config)[0]
    xs = np.nonzero(moved.any(axis=0))[0]
    assert xs.min() > np.nonzero(hard68.any(axis=0))[0].min() + 15


@pytest.mark.parametrize("size", [64, 128, 224])
def test_works_at_common_crop_sizes(size):
    crop, lm68, lm5 = _render(4, size)
    for landmarks in (lm68, lm5, None):
        fake, mask, _ = self_blend(crop, landmarks, np.random.default_rng(size))
        assert fake.shape == (size, size, 3) and mask.shape == (size, size)
        assert mask[size // 2, size // 2] > 0 and mask[0, 0] == 0
        assert np.array_equal(fake[mask == 0], crop[mask == 0])


def test_non_square_crop_and_five_points(face128):
    crop, lm68, lm5 = face128
    wide = np.ascontiguousarray(np.hstack([crop, crop[:, :32]]))
    fake, mask, _ = self_blend(wide, lm68, np.random.default_rng(1))
    assert fake.shape == wide.shape and mask.shape == wide.shape[:2]
    assert np.allclose(five_points(lm68), lm5)


def test_template_copy_matches_forensics_faces():
    for size, margin in ((128, 0.25), (224, 0.4), (64, 0.0)):
        assert np.allclose(template_landmarks(size, size, margin), template_in_crop(size, margin), atol=1e-4)


@pytest.mark.parametrize("face, landmarks, words", [
    (np.zeros((64, 64), np.uint8), None, "HxWx3"),
    (np.zeros((64, 64, 4), np.uint8), None, "HxWx3"),
    (np.zeros((64, 64, 3), np.float32), None, "uint8"),
    ([[0]], None, "numpy array"),
    (np.zeros((8, 8, 3), np.uint8), None, "at least"),
    (np.zeros((64, 64, 3), np.uint8), np.zeros((4, 2)), "(5, 2) or (68, 2)"),
    (np.zeros((64, 64, 3), np.uint8), np.zeros((5, 3)), "(5, 2) or (68, 2)"),
    (np.zeros((64, 64, 3), np.uint8), np.full((5, 2), np.nan), "NaN"),
    (np.zeros((64, 64, 3), np.uint8), np.full((5, 2), 30.0), "degenerate"),
    (np.zeros((64, 64, 3), np.uint8), template_landmarks(64, 64, 0.25) - 1000.0, "outside"),
])
def test_bad_input_is_a_one_line_value_error(face, landmarks, words):
    with pytest.raises(ValueError) as info:
        self_blend(face, landmarks, np.random.default_rng(0))
    message = str(info.value)
    assert words in message and "\n" not in message


def test_bad_rng_and_config_are_one_line_value_errors(face128):
    with pytest.raises(ValueError, match="numpy.random.Generator"):
        self_blend(face128[0], None, 0)
    with pytest.raises(ValueError, match="SBIConfig: blend_ratios"):
        SBIConfig(blend_ratios=(0.0,))
    with pytest.raises(ValueError, match="SBIConfig: hull_scale"):
        SBIConfig(hull_scale=(1.1, 0.9))


def test_blending_does_not_import_torch():
    code = "import sys, generators.blending; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"

