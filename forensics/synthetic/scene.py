"""Everything around the face that stays fixed within one video: light, background, clothes, camera noise.

Backgrounds are low-frequency on purpose (gradients, blurred shapes, soft textures), the way a shallow
depth of field renders a room behind a speaker; they are drawn once per video and size and cached.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import cv2
import numpy as np

from forensics.synthetic.texture import srgb_to_linear

BACKGROUNDS = ("gradient", "blobs", "shapes", "stripes", "room")


@dataclass
class SceneConfig:
    """One video's surroundings; ``sample_scene`` draws one, ``SceneConfig()`` is a plain studio shot."""

    seed: int = 0
    light_dir: tuple = (-0.35, 0.45, 0.82)    # towards the key light, camera space (x right, y up, z to camera)
    light_rgb: tuple = (1.0, 0.97, 0.92)
    sky_rgb: tuple = (0.34, 0.36, 0.4)         # ambient from above / below
    ground_rgb: tuple = (0.2, 0.18, 0.16)
    rim: float = 0.15
    exposure: float = 1.0
    background: str = "gradient"
    bg_colours: tuple = ((0.55, 0.6, 0.66), (0.3, 0.33, 0.38), (0.7, 0.62, 0.5))
    clothing_rgb: tuple = (0.2, 0.26, 0.38)
    v_neck: bool = False
    noise_sigma: float = 1.5                   # camera noise, in 0..255 units
    blur_sigma: float = 0.0
    base_scale: float = 0.3                    # head units -> fraction of the frame size
    anchor: tuple = (0.5, 0.45)                # where the head origin sits (fractions of width, height)
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("_cache")
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "SceneConfig":
        def tup(v):
            return tuple(tup(x) for x in v) if isinstance(v, (list, tuple)) else v
        return cls(**{k: tup(v) for k, v in d.items() if k != "_cache"})


def _colour(rng: np.random.Generator, lo: float = 0.1, hi: float = 0.85) -> tuple:
    hue = rng.uniform(0, 1)
    sat = rng.uniform(0.05, 0.55)
    val = rng.uniform(lo, hi)
    rgb = cv2.cvtColor(np.array([[[hue * 179, sat * 255, val * 255]]], np.uint8), cv2.COLOR_HSV2RGB)[0, 0]
    return tuple(float(c) / 255 for c in rgb)


def sample_scene(rng: np.random.Generator) -> SceneConfig:
    az = np.deg2rad(rng.uniform(-65, 65))
    el = np.deg2rad(rng.uniform(5, 50))
    light = np.array([np.sin(az) * np.cos(el), np.sin(el), np.cos(az) * np.cos(el)])
    warmth = rng.uniform(-1, 1)
    light_rgb = np.array([1.0 + 0.08 * warmth, 0.98, 1.0 - 0.12 * warmth]) * rng.uniform(0.85, 1.15)
    amb = rng.uniform(0.25, 0.42)
    tint = rng.uniform(0.9, 1.1, 3)
    return SceneConfig(
        seed=int(rng.integers(0, 2**31 - 1)),
        light_dir=tuple(float(c) for c in light / np.linalg.norm(light)),
        light_rgb=tuple(float(c) for c in light_rgb),
        sky_rgb=tuple(float(c) for c in amb * tint * np.array([0.95, 1.0, 1.08])),
        ground_rgb=tuple(float(c) for c in amb * 0.55 * tint * np.array([1.08, 1.0, 0.92])),
        rim=float(rng.uniform(0.0, 0.35)), exposure=float(rng.uniform(0.9, 1.15)),
        background=BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))],
        bg_colours=tuple(_colour(rng) for _ in range(3)),
        clothing_rgb=_colour(rng, 0.08, 0.75), v_neck=bool(rng.random() < 0.35),
        noise_sigma=float(rng.uniform(0.8, 3.5)), blur_sigma=float(rng.choice([0.0, 0.0, 0.4, 0.7])),
        base_scale=float(rng.uniform(0.27, 0.33)),
        anchor=(float(rng.uniform(0.44, 0.56)), float(rng.uniform(0.42, 0.48))),
    )


def background(scene: SceneConfig, size: int) -> np.ndarray:
    """(size, size, 3) linear-light float32 background, drawn once per scene and size."""
    key = ("bg", size)
    if key not in scene._cache:
        scene._cache[key] = _draw_background(scene, size)
    return scene._cache[key]


def _draw_background(scene: SceneConfig, size: int) -> np.ndarray:
    rng = np.random.default_rng([scene.seed, 7])
    c0, c1, c2 = (np.asarray(c, np.float32) for c in scene.bg_colours)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    ang = rng.uniform(0, 2 * np.pi)
    g = np.clip(0.5 + (np.cos(ang) * (xx - 0.5) + np.sin(ang) * (yy - 0.5)) * rng.uniform(0.8, 1.6), 0, 1)
    img = c0 * (1 - g[..., None]) + c1 * g[..., None]
    kind = scene.background
    if kind in ("blobs", "shapes", "room"):
        layer = (img * 255).astype(np.uint8).copy()
        for _ in range(int(rng.integers(4, 12))):
            col = tuple(int(v) for v in (np.asarray(_colour(rng)) * 255))
            cx, cy = (int(v) for v in rng.integers(0, size, 2))
            if kind == "blobs" or (kind == "shapes" and rng.random() < 0.5):
                cv2.circle(layer, (cx, cy), int(rng.uniform(0.05, 0.3) * size), col, -1)
            elif kind == "room":
                w, h = int(rng.uniform(0.1, 0.5) * size), int(rng.uniform(0.2, 1.0) * size)
                cv2.rectangle(layer, (cx, cy - h), (cx + w, cy + h), col, -1)
            else:
                w, h = (int(v) for v in rng.uniform(0.05, 0.35, 2) * size)
                cv2.rectangle(layer, (cx - w, cy - h), (cx + w, cy + h), col, -1)
        sigma = size * rng.uniform(0.01, 0.04) if kind != "blobs" else size * rng.uniform(0.03, 0.08)
        img = cv2.GaussianBlur(layer, (0, 0), sigma).astype(np.float32) / 255
    elif kind == "stripes":
        freq = rng.uniform(6, 20)
        ang2 = rng.uniform(0, np.pi)
        s = 0.5 + 0.5 * np.sin((np.cos(ang2) * xx + np.sin(ang2) * yy) * freq * 2 * np.pi)
        img = img * (1 - 0.5 * s[..., None]) + c2 * 0.5 * s[..., None]
        img = cv2.GaussianBlur(img, (0, 0), size * 0.006)
    low = cv2.resize(rng.normal(0, 1, (6, 6)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
    img = img * (1 + 0.06 * low[..., None])
    return srgb_to_linear(np.clip(img, 0, 1))


def torso_layer(scene: SceneConfig, size: int, cx: float, cy: float, f: float) -> tuple[np.ndarray, np.ndarray]:
    """Shoulders and clothes (linear colour, alpha) for a head whose origin projects to (cx, cy) at f px/unit."""
    def pt(x, y):
        return (cx + f * x, cy - f * y)
    neck, top = 0.42, -1.22
    if scene.v_neck:
        neckline = [pt(-neck, top), pt(0.0, top - 0.45), pt(neck, top)]
    else:
        neckline = [pt(-neck, top)] + [pt(neck * np.cos(a), top - 0.2 * np.sin(a))
                                       for a in np.linspace(np.pi * 0.95, np.pi * 0.05, 9)] + [pt(neck, top)]
    right = [pt(0.8, top - 0.06), pt(1.35, top - 0.2), pt(1.75, top - 0.5), pt(1.95, top - 1.2), pt(2.1, -6.0)]
    left = [pt(-2.1, -6.0), pt(-1.95, top - 1.2), pt(-1.75, top - 0.5), pt(-1.35, top - 0.2), pt(-0.8, top - 0.06)]
    poly = np.array(left + neckline + right, np.float32)
    shift = 4
    mask = np.zeros((size, size), np.uint8)
    cv2.fillPoly(mask, [np.round(poly * (1 << shift)).astype(np.int32)], 255, cv2.LINE_AA, shift)
    alpha = mask.astype(np.float32) / 255
    if ("grid", size) not in scene._cache:
        scene._cache[("grid", size)] = np.mgrid[0:size, 0:size].astype(np.float32)
    yy, xx = scene._cache[("grid", size)]
    lx = float(scene.light_dir[0])
    shade = 0.55 + 0.25 * np.clip(lx * (xx - cx) / (1.6 * f), -1, 1) - 0.15 * np.clip((yy - cy) / (3 * f), 0, 1)
    fold = np.sin((xx - cx) / f * 5.0 + np.sin((yy - cy) / f * 3.0)) * 0.04
    colour = srgb_to_linear(scene.clothing_rgb) * (shade + fold)[..., None] * np.asarray(scene.light_rgb, np.float32)
    return colour.astype(np.float32), alpha
