"""Self-blended images (Shiohara & Yamasaki, "Detecting Deepfakes with Self-Blended Images", CVPR 2022).

A pseudo-fake made from one real face: a transformed copy of the face (the "source") is pasted back onto
the untouched face (the "target") through a soft, randomly deformed face mask. Training on these teaches a
detector the generic traces of blending (colour and frequency seams, misaligned boundaries) without any
generator, so it is not tied to the artifacts of the generators it happened to see.
"""
from __future__ import annotations

import numpy as np

from generators.blending.config import SBIConfig, check_face, check_landmarks
from generators.blending.masks import landmark_mask, template_landmarks
from generators.blending.transforms import colour_jitter, frequency_change, small_warp


def blend(source: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """source * mask + target * (1 - mask), written as target + mask * (source - target) so that wherever
    the mask is exactly 0 the target's pixels come back bit for bit."""
    target_f = target.astype(np.float32)
    out = target_f + mask[:, :, None] * (source.astype(np.float32) - target_f)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def self_blend(face: np.ndarray, landmarks: np.ndarray | None, rng: np.random.Generator,
               config: SBIConfig | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """One pseudo-fake of `face` (HxWx3 uint8 RGB crop).

    `landmarks`: (5, 2) or (68, 2) points in crop pixels; None for a crop made by align_face with
    `config.margin`, whose five points sit on the canonical template. Every random choice comes from `rng`,
    so a seed reproduces the fake exactly. Returns (fake uint8 HxWx3, mask float32 HxW in [0, 1] as used
    for blending, recipe: a JSON-safe dict of every choice made).
    """
    face = check_face(face)
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"self_blend: rng must be a numpy.random.Generator, got {type(rng).__name__}")
    config = config if config is not None else SBIConfig()
    h, w = face.shape[:2]
    if landmarks is None:
        points, landmark_source = template_landmarks(h, w, config.margin), "template"
    else:
        points = check_landmarks(landmarks)
        landmark_source = f"landmarks{len(points)}"

    mask, mask_recipe = landmark_mask((h, w), points, rng, config)
    ratio = float(config.blend_ratios[int(rng.integers(len(config.blend_ratios)))])
    source, colour = colour_jitter(face, rng, config)
    source, frequency = frequency_change(source, rng, config)
    source, geometry = small_warp(source, rng, config)
    mask *= ratio
    fake = blend(source, face, mask)
    recipe = {"generator": "sbi", "landmark_source": landmark_source, "mask": mask_recipe,
              "blend_ratio": ratio, "colour": colour, "frequency": frequency, "geometry": geometry}
    return fake, mask, recipe
