"""The synthetic face world: determinism, ground truth that follows the pixels, and MTCNN's verdict."""
from __future__ import annotations

import json
import os

import av
import numpy as np
import pytest

from forensics.cli.main import main as cli_main
from forensics.data.manifest import read_manifest
from forensics.synthetic import (FrameState, Identity, SceneConfig, VideoConfig, WorldConfig, five_points,
                                 generate_world, load_truth, mtcnn_agreement, render_frame, render_video,
                                 sample_identity, world_identity)
from forensics.synthetic.world import assign_splits
from forensics.synthetic.rig import Expression, build_rig
from forensics.synthetic.sdf import build_head, head_sdf

SIZE = 128


def _person(k: int = 3) -> Identity:
    return world_identity(0, k)


def _eye_box(truth, pad: float = 4.0) -> tuple[slice, slice]:
    eyes = truth.landmarks[36:48]
    x0, y0 = np.floor(eyes.min(axis=0) - pad).astype(int)
    x1, y1 = np.ceil(eyes.max(axis=0) + pad).astype(int)
    return slice(y0, y1), slice(x0, x1)


@pytest.fixture(scope="module")
def detector():
    from facenet_pytorch import MTCNN
    return MTCNN(keep_all=True, device="cpu")


@pytest.fixture(scope="module")
def small_world(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth_world")
    manifest = generate_world(root, WorldConfig(identities=6, videos_per_identity=1, frames=3, size=176, seed=5),
                              progress=False)
    return root, manifest


# ---------------------------------------------------------------- determinism and identities

def test_same_seed_same_pixels_and_different_seeds_differ():
    cfg = VideoConfig(size=SIZE, frames=3)
    a, truth_a = render_video(_person(), seed=7, config=cfg)
    b, truth_b = render_video(_person(), seed=7, config=cfg)
    c, _ = render_video(_person(), seed=8, config=cfg)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert all(np.array_equal(x.landmarks, y.landmarks) for x, y in zip(truth_a, truth_b))
    assert np.abs(a[0].astype(int) - c[0].astype(int)).mean() > 5
    assert a[0].dtype == np.uint8 and a[0].shape == (SIZE, SIZE, 3)


def test_identities_differ_and_round_trip():
    scene = SceneConfig(noise_sigma=0.0)
    frontal = [render_frame(world_identity(0, k), FrameState(), scene, SIZE)[0].astype(int) for k in range(4)]
    diffs = [np.abs(frontal[i] - frontal[j]).mean() for i in range(4) for j in range(i + 1, 4)]
    assert min(diffs) > 4.0, diffs
    person = _person()
    assert Identity.from_dict(json.loads(json.dumps(person.to_dict()))) == person
    assert world_identity(0, 3) == person and world_identity(1, 3) != person
    assert sample_identity(np.random.default_rng(1), 9).id == 9


def test_splits_are_by_identity_and_deterministic():
    ids = list(range(20))
    splits = assign_splits(ids, seed=0, val_fraction=0.15, test_fraction=0.15)
    assert splits == assign_splits(ids, seed=0, val_fraction=0.15, test_fraction=0.15)
    assert sorted(splits.values()).count("test") == 3 and sorted(splits.values()).count("val") == 3
    assert splits != assign_splits(ids, seed=1, val_fraction=0.15, test_fraction=0.15)
    small = assign_splits([0, 1, 2], seed=0, val_fraction=0.15, test_fraction=0.15)
    assert sorted(small.values()) == ["test", "train", "val"]


def test_nothing_of_the_head_lies_outside_the_tracers_bounding_ellipsoid():
    """The tracer only looks inside this ellipsoid: a chin or bun poking out would be cut off."""
    rng = np.random.default_rng(0)
    styles = set()
    for k in range(40):
        person = world_identity(0, k)
        styles.add(person.hair_style)
        for expr in (Expression(), Expression(mouth_open=1.0, smile=1.0, brow=1.0)):
            head = build_head(person, build_rig(person, expr))
            d = rng.normal(size=(3, 4000))
            d /= np.linalg.norm(d, axis=0)
            p = np.asarray(head.bound_c)[:, None] + d * np.asarray(head.bound_r)[:, None] * rng.uniform(1, 1.3, 4000)
            assert head_sdf(head, *p.astype(np.float32)).min() > 0, (k, person.hair_style)
    assert len(styles) >= 5


# ---------------------------------------------------------------- ground truth follows the pixels

@pytest.mark.parametrize("pose", [dict(), dict(yaw=30, pitch=-15, roll=12), dict(yaw=-32, pitch=18, roll=-14)])
def test_landmarks_inside_frame_and_boxes(pose):
    _, truth = render_frame(_person(5), FrameState(**pose, mouth_open=0.5), SceneConfig(), SIZE)
    lm = truth.landmarks
    assert lm.shape == (68, 2) and lm.dtype == np.float32
    assert (lm >= 0).all() and (lm < SIZE).all()
    x1, y1, x2, y2 = truth.box
    assert (lm[:, 0] >= x1).all() and (lm[:, 0] <= x2).all() and (lm[:, 1] >= y1).all() and (lm[:, 1] <= y2).all()
    fx1, fy1, fx2, fy2 = truth.face_box
    assert fx1 <= x1 and fy1 < y1 - 2 and fx2 >= x2 and fy2 >= y2       # the face box adds the forehead


def test_blink_closes_the_eyes_where_the_landmarks_say():
    scene = SceneConfig(noise_sigma=0.0)
    open_img, open_t = render_frame(_person(), FrameState(), scene, SIZE)
    shut_img, shut_t = render_frame(_person(), FrameState(blink=1.0), scene, SIZE)

    def lid_gap(t):
        lm = t.landmarks
        return np.mean([np.linalg.norm(lm[a] - lm[b]) for a, b in ((37, 41), (38, 40), (43, 47), (44, 46))])
    assert lid_gap(shut_t) < 0.35 * lid_gap(open_t)
    diff = np.abs(open_img.astype(int) - shut_img.astype(int)).sum(axis=2)
    rows, cols = _eye_box(open_t)
    inside = diff[rows, cols].mean()
    outside = (diff.sum() - diff[rows, cols].sum()) / (diff.size - diff[rows, cols].size)
    assert inside > 20 * max(outside, 0.01)          # the blink changed the eyes and nothing else


def test_mouth_open_and_smile_move_the_lips():
    scene = SceneConfig(noise_sigma=0.0)
    _, closed = render_frame(_person(), FrameState(), scene, SIZE)
    _, opened = render_frame(_person(), FrameState(mouth_open=1.0), scene, SIZE)
    _, smiling = render_frame(_person(), FrameState(smile=1.0), scene, SIZE)
    inner = lambda t: np.linalg.norm(t.landmarks[62] - t.landmarks[66])
    outer = lambda t: np.linalg.norm(t.landmarks[51] - t.landmarks[57])
    width = lambda t: np.linalg.norm(t.landmarks[48] - t.landmarks[54])
    assert inner(opened) > inner(closed) + 5 and outer(opened) > outer(closed) + 5
    assert closed.landmarks[8, 1] < opened.landmarks[8, 1] - 2          # the chin drops with the jaw
    assert width(smiling) > width(closed) + 1
    corners_up = (smiling.landmarks[[48, 54], 1] - smiling.landmarks[51, 1]).mean()
    assert corners_up < (closed.landmarks[[48, 54], 1] - closed.landmarks[51, 1]).mean()


def test_yaw_moves_the_nose_tip_towards_the_turn():
    scene = SceneConfig(noise_sigma=0.0)

    def nose_offset(yaw):
        _, t = render_frame(_person(), FrameState(yaw=yaw), scene, SIZE)
        eyes = five_points(t.landmarks)[:2].mean(axis=0)
        return t.landmarks[30, 0] - eyes[0]
    left, centre, right = nose_offset(-30), nose_offset(0), nose_offset(30)
    assert abs(centre) < 1.0
    assert right > centre + 3 and left < centre - 3


# ---------------------------------------------------------------- the world on disk and MTCNN's verdict

def test_generate_world_layout_and_manifest(small_world):
    root, manifest = small_world
    assert manifest == root / "manifest.csv"
    assert json.loads((root / "world.json").read_text())["identities"] == 6
    assert [d["id"] for d in json.loads((root / "identities.json").read_text())] == list(range(6))
    rows = read_manifest(manifest)
    assert len(rows) == 6 and {r.label for r in rows} == {"real"} and {r.source for r in rows} == {"synthetic"}
    assert {r.split for r in rows} == {"train", "val", "test"}
    for row in rows:
        assert os.path.isfile(row.path) and row.path.endswith(f"{row.identity}_v00.mp4")
        assert row.meta["frames"] == 3 and row.meta["size"] == 176
        meta, truths = load_truth(root / row.meta["truth"])
        assert meta["identity"] == row.identity and len(truths) == 3
        assert all(t.landmarks.shape == (68, 2) for t in truths)
        with av.open(row.path) as container:
            decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        assert len(decoded) == 3 and decoded[0].shape == (176, 176, 3)
    # a second run renders nothing: files are untouched
    before = {p: p.stat().st_mtime_ns for p in (root / "videos").iterdir()}
    generate_world(root, WorldConfig(identities=6, videos_per_identity=1, frames=3, size=176, seed=5), progress=False)
    assert before == {p: p.stat().st_mtime_ns for p in (root / "videos").iterdir()}


def test_mtcnn_finds_rendered_faces_where_the_truth_says(small_world, detector):
    root, manifest = small_world
    frames, truths = [], []
    for row in read_manifest(manifest):
        with av.open(row.path) as container:
            frames += [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        truths += load_truth(root / row.meta["truth"])[1]
    result = mtcnn_agreement(frames, truths, detector=detector)
    assert result["frames"] == 18
    assert result["detection_rate"] >= 0.9, result["per_frame"]
    assert result["nme_mean"] <= 0.08, result["point_nme"]
    # the same measure rejects ground truth that is off by a fifth of the eye distance
    shifted = []
    for t in truths:
        iod = np.linalg.norm(five_points(t.landmarks)[1] - five_points(t.landmarks)[0])
        moved = type(t)(**{**t.__dict__, "landmarks": t.landmarks + np.float32(0.2 * iod)})
        shifted.append(moved)
    assert mtcnn_agreement(frames, shifted, detector=detector)["nme_mean"] > 0.15


def test_no_face_no_detection(detector):
    blank = np.full((160, 160, 3), 128, np.uint8)
    _, truth = render_frame(_person(), FrameState(), SceneConfig(), 160)
    result = mtcnn_agreement([blank], [truth], detector=detector)
    assert result["detection_rate"] == 0.0 and result["nme_mean"] is None


# ---------------------------------------------------------------- command line

def test_cli_sheet_and_usage_errors(tmp_path, capsys):
    sheet = tmp_path / "sheet.png"
    assert cli_main(["synth", "--sheet", str(sheet), "--identities", "4", "--size", "96"]) == 0
    import cv2
    image = cv2.imread(str(sheet))
    assert image.shape == (192, 192, 3) and image.std() > 10
    capsys.readouterr()
    for argv in (["synth", "--out", str(tmp_path / "w"), "--frames", "0"], ["synth"],
                 ["synth", "--sheet", str(tmp_path / "x.jpg")]):
        assert cli_main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("forensics synth:") and "\n" not in err
    with pytest.raises(SystemExit) as exc:
        cli_main(["synth", "--frames", "many"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "invalid int value" in err and "\n" not in err
