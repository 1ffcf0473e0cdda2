"""Temporal pseudo-fakes made from real clips alone: the time-axis counterpart of self-blended images.

Why. SBI teaches a frame detector the seams of blending without any generator; a temporal detector needs the
same for time. Swaps and reenactments are made frame by frame, so the replaced region flickers, lags, jitters
or stutters against the head that carries it even where every frame alone looks right. These fakes break
exactly that in one real face track: one region (mouth, eyes, inner face, whole face) changes through a soft
mask built from each frame's own landmarks, with content plausible in any single frame (the same face lightly
jittered, or the same region from a nearby moment aligned onto it) that does not fit its neighbours in time.
Strengths, masks and touched frames are drawn per frame, so no one spatial artifact is shared by the fakes:
a detector separates them from real clips only by how the region changes over time.

  flicker         region blended with a colour/brightness/sharpness-jittered copy of the same frame; each
                  frame draws its own jitter, strength and feather (some frames none).
  region_time     region of frame t shows frame sigma(t)'s (offset with wrap or clamp, reversed, or frozen,
                  over a window of >= 3 frames), aligned onto frame t.
  warp_jitter     each frame's region gets its own small affine (0.5-2 px, <= 2 deg, <= 2 %).
  region_stutter  held (t shows t-1, runs allowed) or dropped (t shows t+1) frames, in the region only.

Where the cue lies: flicker and warp_jitter add a new change in every touched frame, so the region's
frame-to-frame second difference rises. region_time and region_stutter only reorder real content: they show
where the region moves (a stall, a jump, the seam at a window's edge) and vanish where it is still; on crops
re-aligned per frame from noisy landmarks a held region is smoother than the real jitter around it, so there
the cue is the region moving against its surroundings rather than roughness.

Reproducible: a TemporalRecipe records every choice (per-frame values as lists) and apply_recipe has no
randomness, so a recipe stored with a sample rebuilds its fake bit for bit. recipe.frames is exactly the set
of changed positions (apply_recipe checks it); other frames, and pixels where the mask is 0, are untouched.

Held-out kind: the kinds break time by different mechanisms, so the protocol trains on all kinds but one
(temporal_fake(..., kinds=...)) and reports the detector on the one left out: one that learned "this region
is inconsistent in time" rather than a kind's signature still catches it.

numpy + cv2 only, like the rest of generators.blending (data loaders make these without torch).
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from generators.blending.config import MIN_SIDE, check_landmarks
from generators.blending.masks import CANONICAL_5, face_polygon, feather, fill_polygon
from generators.blending.sbi import blend

TEMPORAL_KINDS = ("flicker", "region_time", "warp_jitter", "region_stutter")
REGIONS = ("mouth", "eyes", "inner", "face")
TIME_MODES = ("offset_wrap", "offset_clamp", "reverse", "freeze")
MIN_FRAMES = 3
ATTEMPTS = 8                    # temporal_fake redraws this often when a recipe cannot change a still clip

# Ranges drawn from. Softness is the feather sigma as a fraction of the eye-to-mouth distance, so a mouth and
# a whole face are feathered alike at any crop size. Colour amounts are small: one frame alone must pass.
FLICKER = {"on_prob": 0.7, "alpha": (0.3, 1.0), "brightness": (2.0, 8.0), "gain": 0.04, "saturation": 0.1,
           "sharpness": 0.6, "softness": (0.1, 0.35)}
WARP = {"on_prob": 0.75, "shift_px": (0.5, 2.0), "angle_deg": 2.0, "scale": 0.02}
TIME = {"max_offset": 4}
STUTTER = {"events": (1, 3), "max_run": 3}
BLEND = {"alpha": (0.75, 1.0), "softness": (0.06, 0.2)}    # region_time, warp_jitter, region_stutter

# Mouth and eyes as ellipses (centre x, centre y, half-width, half-height) in masks.CANONICAL_5's frame:
# x in inter-ocular distances from the eye midpoint, y in eye-to-mouth distances down the face.
_ELLIPSES = {"mouth": ((0.0, 1.02, 0.62, 0.30),),
             "eyes": ((-0.5, -0.02, 0.36, 0.20), (0.5, -0.02, 0.36, 0.20))}
# Landmarks a region is aligned on (left eye, right eye, nose, left mouth, right mouth).
_ALIGN = {"mouth": [2, 3, 4], "eyes": [0, 1, 2], "inner": [0, 1, 2, 3, 4], "face": [0, 1, 2, 3, 4]}
_PER_FRAME = {"flicker": ("alpha", "softness", "gain", "brightness", "saturation", "sharpness"),
              "warp_jitter": ("tx", "ty", "angle_deg", "scale"), "region_time": ("source",),
              "region_stutter": ("source",)}


class UnchangedFrameError(ValueError):
    """A frame the recipe lists came out pixel-identical (a flat or motionless region): it does not fit."""


@dataclass(frozen=True)
class TemporalRecipe:
    """Every choice behind one temporal fake; apply_recipe(clip, landmarks, recipe) rebuilds it exactly."""

    kind: str
    region: str
    length: int                     # T the recipe was drawn for
    frames: tuple[int, ...]         # clip positions whose pixels change, sorted
    params: dict = field(default_factory=dict)   # JSON-safe; per-frame values as lists of length T

    def to_dict(self) -> dict:
        return {"kind": self.kind, "region": self.region, "length": int(self.length),
                "frames": [int(t) for t in self.frames], "params": json.loads(json.dumps(self.params))}

    @classmethod
    def from_dict(cls, d: dict) -> TemporalRecipe:
        try:
            return cls(kind=str(d["kind"]), region=str(d["region"]), length=int(d["length"]),
                       frames=tuple(int(t) for t in d["frames"]), params=dict(d["params"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"TemporalRecipe.from_dict: needs kind, region, length, frames, params ({exc})") from None


def _r(x) -> float:
    return round(float(x), 4)           # recipes stay readable; apply uses exactly the recorded values


def _similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares rotation + uniform scale + translation (2x3) taking src points onto dst points."""
    s, d = src[:, 0] + 1j * src[:, 1], dst[:, 0] + 1j * dst[:, 1]
    sc = s - s.mean()
    z = complex(np.vdot(sc, d - d.mean()) / max(float(np.vdot(sc, sc).real), 1e-9))
    t = d.mean() - z * s.mean()
    return np.array([[z.real, -z.imag, t.real], [z.imag, z.real, t.imag]])


def region_mask(landmarks_5: np.ndarray, region: str, shape: tuple[int, int], softness: float) -> np.ndarray:
    """Soft mask (float32 HxW in [0, 1], peak 1) of one face region placed by five landmarks in pixels.

    Mouth and eyes are ellipses, inner and face the hulls of masks.face_polygon, all mapped through an affine
    fit of the five points so they follow rotation, scale and foreshortening. `softness` is the feather sigma
    in eye-to-mouth distances (0: a hard mask); values below masks.EPSILON are exactly 0.
    """
    if region not in REGIONS:
        raise ValueError(f"region_mask: unknown region {region!r}, expected one of {REGIONS}")
    lm = check_landmarks(landmarks_5, "region_mask")
    if len(lm) != 5:
        raise ValueError(f"region_mask: needs five landmarks, got {len(lm)}")
    matrix = np.linalg.lstsq(np.hstack([CANONICAL_5, np.ones((5, 1))]), lm, rcond=None)[0].T   # canonical -> pixels
    if abs(np.linalg.det(matrix[:, :2])) < 1e-6:
        raise ValueError("region_mask: the five landmarks are degenerate (collinear or coincident)")
    h, w = int(shape[0]), int(shape[1])
    if region in _ELLIPSES:
        angles = np.linspace(0.0, 2 * np.pi, 40, endpoint=False)
        polygons = [np.stack([cx + ax * np.cos(angles), cy + ay * np.sin(angles)], axis=1) @ matrix[:, :2].T
                    + matrix[:, 2] for cx, cy, ax, ay in _ELLIPSES[region]]
    else:
        polygons = [face_polygon(lm, region, 1.0)]
    mask = np.max([fill_polygon((h, w), p) for p in polygons], axis=0)
    if mask.max() <= 0:
        raise ValueError(f"region_mask: the {region} region lies outside the {w}x{h} image")
    eye_to_mouth = float(np.linalg.norm((lm[0] + lm[1]) / 2 - (lm[3] + lm[4]) / 2))
    return feather(mask, max(0.0, float(softness)) * eye_to_mouth).astype(np.float32, copy=False)


def _check_clip(clip, landmarks, who: str) -> tuple[np.ndarray, np.ndarray]:
    """T x H x W x 3 uint8 RGB clip and T x 5 x 2 finite landmarks in crop pixels; nothing is guessed."""
    arr = np.asarray(clip)
    if arr.dtype != np.uint8:
        raise ValueError(f"{who}: clip must be uint8, got {arr.dtype}")
    if arr.ndim != 4 or arr.shape[3] != 3:
        raise ValueError(f"{who}: clip must be TxHxWx3, got shape {arr.shape}")
    if len(arr) < MIN_FRAMES:
        raise ValueError(f"{who}: clip needs at least {MIN_FRAMES} frames, got {len(arr)}")
    if min(arr.shape[1:3]) < MIN_SIDE:
        raise ValueError(f"{who}: frames must be at least {MIN_SIDE}x{MIN_SIDE} pixels, got {arr.shape[2]}x{arr.shape[1]}")
    try:
        lm = np.asarray(landmarks, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{who}: landmarks must be numeric, got {type(landmarks).__name__}") from None
    if lm.shape != (len(arr), 5, 2):
        raise ValueError(f"{who}: landmarks must have shape ({len(arr)}, 5, 2), got {lm.shape}")
    if not np.isfinite(lm).all():
        raise ValueError(f"{who}: landmarks contain NaN or infinity")
    return np.ascontiguousarray(arr), lm


def _planned(kind: str, params: dict, length: int) -> tuple[int, ...]:
    """The positions a recipe's params change (the draw makes recipe.frames equal to this)."""
    if kind == "flicker":
        return tuple(t for t in range(length) if params["alpha"][t] > 0)
    if kind == "warp_jitter":
        return tuple(t for t in range(length) if (params["tx"][t], params["ty"][t], params["angle_deg"][t],
                                                  params["scale"][t]) != (0, 0, 0, 1))
    return tuple(t for t in range(length) if params["source"][t] != t)


def _check_recipe(recipe: TemporalRecipe, length: int) -> None:
    if recipe.kind not in TEMPORAL_KINDS or recipe.region not in REGIONS:
        raise ValueError(f"apply_recipe: unknown kind {recipe.kind!r} or region {recipe.region!r}, expected one of "
                         f"{TEMPORAL_KINDS} and {REGIONS}")
    if recipe.length != length:
        raise ValueError(f"apply_recipe: the recipe was drawn for {recipe.length} frames, the clip has {length}")
    try:
        sources = recipe.params.get("source", range(length))
        if any(len(recipe.params[key]) != length for key in _PER_FRAME[recipe.kind]) or not all(
                0 <= int(s) < length for s in sources):
            raise IndexError
        planned = _planned(recipe.kind, recipe.params, length)
    except (KeyError, IndexError, TypeError, ValueError):
        raise ValueError(f"apply_recipe: params do not describe a {length}-frame {recipe.kind} recipe") from None
    if tuple(recipe.frames) != planned:
        raise ValueError(f"apply_recipe: recipe.frames {list(recipe.frames)} disagree with its params {list(planned)}")


def _on_frames(rng: np.random.Generator, length: int, prob: float) -> np.ndarray:
    """Which frames a per-frame kind touches: each independently, redrawn until at least two are."""
    while True:
        on = rng.random(length) < prob
        if on.sum() >= 2:
            return on


def _draw_flicker(length: int, rng: np.random.Generator) -> dict:
    """Each touched frame draws its own strength, tint, brightness sign, saturation, sharpness and feather."""
    c = FLICKER
    on = _on_frames(rng, length, c["on_prob"])
    alpha = rng.uniform(*c["alpha"], length) * on
    brightness = rng.uniform(*c["brightness"], length) * rng.choice([-1.0, 1.0], length) * on
    gain = 1.0 + rng.uniform(-c["gain"], c["gain"], (length, 3)) * on[:, None]
    saturation = 1.0 + rng.uniform(-c["saturation"], c["saturation"], length) * on
    sharpness = rng.uniform(-c["sharpness"], c["sharpness"], length) * on
    softness = rng.uniform(*c["softness"], length)
    return {"alpha": [_r(a) for a in alpha], "softness": [_r(s) for s in softness],
            "gain": [[_r(g) for g in row] for row in gain], "brightness": [_r(b) for b in brightness],
            "saturation": [_r(s) for s in saturation], "sharpness": [_r(s) for s in sharpness]}


def _draw_warp(length: int, rng: np.random.Generator) -> dict:
    on = _on_frames(rng, length, WARP["on_prob"])
    shift = rng.uniform(*WARP["shift_px"], length)
    direction = rng.uniform(0.0, 2 * np.pi, length)
    angle = rng.uniform(-WARP["angle_deg"], WARP["angle_deg"], length)
    scale = 1.0 + rng.uniform(-WARP["scale"], WARP["scale"], length)
    return {"tx": [_r(v) for v in shift * np.cos(direction) * on], "ty": [_r(v) for v in shift * np.sin(direction) * on],
            "angle_deg": [_r(v) for v in angle * on], "scale": [_r(v) if o else 1.0 for v, o in zip(scale, on)]}


def _draw_time(length: int, rng: np.random.Generator) -> dict:
    """sigma over a window of >= 3 frames (>= 2 changed in every mode), never the whole clip for reverse and
    freeze: outside the window the clip runs in real time, so entering or leaving it is a seam in time. A
    wholly reversed or frozen region differs from a real clip only by disagreeing with the rest of the face,
    which a short aligned clip barely shows: close to a mislabelled real."""
    mode = TIME_MODES[int(rng.integers(len(TIME_MODES)))]
    longest = length - 1 if mode in ("reverse", "freeze") and length > MIN_FRAMES else length
    span = int(rng.integers(MIN_FRAMES, longest + 1))
    a = int(rng.integers(0, length - span + 1))
    window, offset, frozen = range(a, a + span), 0, None
    source = list(range(length))
    if mode == "offset_wrap":
        offset = int(rng.integers(1, span))
        source[a:a + span] = [a + (t - a + offset) % span for t in window]
    elif mode == "offset_clamp":
        offset = int(rng.integers(1, min(TIME["max_offset"], length - 1) + 1)) * int(rng.choice([-1, 1]))
        source[a:a + span] = [min(max(t + offset, 0), length - 1) for t in window]
    elif mode == "reverse":
        source[a:a + span] = window[::-1]
    else:
        frozen = int(rng.integers(a, a + span))
        source[a:a + span] = [frozen] * span
    return {"mode": mode, "window": [a, a + span - 1], "offset": offset, "frozen": frozen, "source": source}


def _draw_stutter(length: int, rng: np.random.Generator) -> dict:
    """Holds (frames s..s+run-1 show frame s-1) and drops (frame t shows t+1); no event overwrites another."""
    while True:
        source, holds, drops = list(range(length)), [], []
        for _ in range(int(rng.integers(STUTTER["events"][0], STUTTER["events"][1] + 1))):
            if rng.random() < 0.5:
                start = int(rng.integers(1, length))
                run = min(int(rng.integers(1, STUTTER["max_run"] + 1)), length - start)
                if all(source[u] == u for u in range(start, start + run)):
                    holds.append([start, run])
                    source[start:start + run] = [start - 1] * run
            else:
                t = int(rng.integers(0, length - 1))
                if source[t] == t:
                    drops.append(t)
                    source[t] = t + 1
        if sum(s != t for t, s in enumerate(source)) >= 2:
            return {"holds": sorted(holds), "drops": sorted(drops), "source": source}


_DRAW = {"flicker": _draw_flicker, "region_time": _draw_time, "warp_jitter": _draw_warp,
         "region_stutter": _draw_stutter}


def draw_recipe(kind: str, length: int, rng: np.random.Generator) -> TemporalRecipe:
    """A random recipe of `kind` for a clip of `length` frames; every choice comes from `rng`."""
    if kind not in TEMPORAL_KINDS:
        raise ValueError(f"draw_recipe: unknown kind {kind!r}, expected one of {TEMPORAL_KINDS}")
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"draw_recipe: rng must be a numpy.random.Generator, got {type(rng).__name__}")  # noqa: TRY004
    if int(length) != length or length < MIN_FRAMES:
        raise ValueError(f"draw_recipe: length must be an integer >= {MIN_FRAMES}, got {length}")
    length = int(length)
    region = REGIONS[int(rng.integers(len(REGIONS)))]
    params = _DRAW[kind](length, rng)
    if kind != "flicker":
        params["alpha"] = _r(rng.uniform(*BLEND["alpha"]))
        params["softness"] = _r(rng.uniform(*BLEND["softness"]))
    return TemporalRecipe(kind, region, length, _planned(kind, params, length), params)


def _warp(image: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Bicubic (keeps more fine detail than bilinear, so the moved region is not visibly softer)."""
    if np.array_equal(matrix, np.eye(2, 3)):
        return image
    h, w = image.shape[:2]
    return cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)


def _jitter(image: np.ndarray, p: dict, t: int) -> np.ndarray:
    """Sharpen (> 0) or soften (< 0), desaturate or saturate, tint and brighten one frame, in float."""
    out = image.astype(np.float32)
    out = out + np.float32(p["sharpness"][t]) * (out - cv2.GaussianBlur(out, (0, 0), 1.0))
    grey = out.mean(axis=2, keepdims=True)
    out = grey + np.float32(p["saturation"][t]) * (out - grey)
    return out * np.asarray(p["gain"][t], np.float32) + np.float32(p["brightness"][t])


def _source(recipe: TemporalRecipe, clip: np.ndarray, lm: np.ndarray, t: int) -> tuple[np.ndarray, float, float]:
    """What frame t's region is blended with, at which strength and feather."""
    p, points = recipe.params, _ALIGN[recipe.region]
    if recipe.kind == "flicker":
        return _jitter(clip[t], p, t), float(p["alpha"][t]), float(p["softness"][t])
    if recipe.kind == "warp_jitter":
        centre = lm[t, points].mean(axis=0)
        matrix = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), float(p["angle_deg"][t]),
                                         float(p["scale"][t]))
        matrix[:, 2] += (p["tx"][t], p["ty"][t])
        return _warp(clip[t], matrix), float(p["alpha"]), float(p["softness"])
    s = int(p["source"][t])
    return _warp(clip[s], _similarity(lm[s, points], lm[t, points])), float(p["alpha"]), float(p["softness"])


def apply_recipe(clip: np.ndarray, landmarks: np.ndarray, recipe: TemporalRecipe) -> np.ndarray:
    """The fake of `clip` (TxHxWx3 uint8) that `recipe` describes; no randomness at all.

    Frames not in recipe.frames, and pixels where a frame's mask is 0, come back bit for bit. Raises
    UnchangedFrameError (a ValueError) when a listed frame would come out unchanged, so recipe.frames is
    always exactly the set of changed positions.
    """
    clip, lm = _check_clip(clip, landmarks, "apply_recipe")
    if not isinstance(recipe, TemporalRecipe):
        raise ValueError(f"apply_recipe: recipe must be a TemporalRecipe, got {type(recipe).__name__}")  # noqa: TRY004
    _check_recipe(recipe, len(clip))
    out = clip.copy()
    for t in recipe.frames:
        source, alpha, softness = _source(recipe, clip, lm, t)
        out[t] = blend(source, clip[t], region_mask(lm[t], recipe.region, clip.shape[1:3], softness) * alpha)
        if np.array_equal(out[t], clip[t]):
            raise UnchangedFrameError(f"apply_recipe: frame {t} of this {recipe.kind} recipe comes out unchanged "
                                      f"(the {recipe.region} is flat or motionless there)")
    return out


def temporal_fake(clip: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator,
                  kinds: Sequence[str] = TEMPORAL_KINDS) -> tuple[np.ndarray, TemporalRecipe]:
    """A temporal fake of a real clip: a kind drawn uniformly from `kinds`, its recipe drawn and applied.

    A still clip cannot be stuttered or time-shifted; when a recipe leaves a listed frame unchanged, kind and
    recipe are drawn again from the same rng (up to ATTEMPTS times), so the result stays reproducible.
    """
    kinds = tuple(kinds)
    if not kinds or any(k not in TEMPORAL_KINDS for k in kinds):
        raise ValueError(f"temporal_fake: kinds must be drawn from {TEMPORAL_KINDS}, got {kinds}")
    clip, lm = _check_clip(clip, landmarks, "temporal_fake")
    for _ in range(ATTEMPTS):
        recipe = draw_recipe(kinds[int(rng.integers(len(kinds)))], len(clip), rng)
        try:
            return apply_recipe(clip, lm, recipe), recipe
        except UnchangedFrameError:
            continue
    raise ValueError(f"temporal_fake: no recipe of {kinds} changes this clip in {ATTEMPTS} draws (a still, flat clip?)")
