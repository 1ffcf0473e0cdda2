"""Blending masks for self-blended images: a face-region hull from landmarks, deformed and softened at random.

The detector should learn the *boundary* a face swap leaves, not one particular mask shape, so every mask
is a different hull (size, outline, forehead or not), wobbled by an elastic field, eroded or dilated, and
feathered with a random Gaussian (Shiohara & Yamasaki, CVPR 2022).
"""
from __future__ import annotations

import cv2
import numpy as np

from forensics.landmarks import five_points

from generators.blending.config import SBIConfig, check_landmarks

# ArcFace's 112x112 five-point template, as forensics.faces.align.CANONICAL_LANDMARKS_5. Copied rather than
# imported because importing forensics.faces pulls in torch (the detector module), and blending must stay
# numpy + cv2 only; tests/test_blending.py checks the copy still equals the original.
_ARCFACE_5 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                       [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float64) / 112.0

# Face geometry in a landmark-relative frame: x in inter-ocular distances from the eye midpoint along the
# eye axis, y in eye-to-mouth distances down the face. An affine fit of the five points places it on any
# face, so in-plane rotation, scale and foreshortening follow the eyes and mouth.
CANONICAL_5 = np.array([[-0.5, 0.0], [0.5, 0.0], [0.0, 0.52], [-0.4, 1.0], [0.4, 1.0]])
# Outline points (x, y, depth): an affine fit cannot see head turns, which move points that lie deep behind
# the eyes (the jaw by the ears) much further across the image than the eyes. The nose tip's offset from
# where a frontal face has it measures the turn; each point moves against it by its depth factor. Depths
# were read off the synthetic world's 68-point jawline under yaw and pitch (both gave the same factors),
# and agree with a head's proportions: the cheek silhouette is about three nose-lengths behind the eyes.
_HALF_OUTLINE = [(-0.95, -0.40, 1.0), (-1.10, 0.05, 3.9), (-1.07, 0.50, 3.5), (-0.93, 0.90, 3.3),
                 (-0.70, 1.22, 3.1), (-0.36, 1.50, 2.8)]
FACE_OUTLINE = np.array([(0.0, -0.46, 0.5), (-0.50, -0.48, 0.6)] + _HALF_OUTLINE + [(0.0, 1.60, 2.5)]
                        + [(-x, y, g) for x, y, g in reversed(_HALF_OUTLINE)] + [(0.50, -0.48, 0.6)])
MAX_NOSE_OFFSET = 0.25         # beyond this the five points are implausible for a face; clamp the correction
FOREHEAD_RAISE = 0.45          # "extended" hulls reach this many eye-to-mouth distances above the brows
INNER_SHRINK = 0.78            # "inner" hulls: eyes, nose and mouth without cheeks or jaw
MASK_TYPES = ("face", "extended", "inner")
EPSILON = 1e-3                 # mask values below this are set to exactly 0: the pixel is left untouched


def template_landmarks(height: int, width: int, margin: float) -> np.ndarray:
    """Where align_face put the five points of a crop made with `margin` (forensics.faces.template_in_crop)."""
    unit = (_ARCFACE_5 - 0.5) / (1.0 + margin) + 0.5
    return unit * np.array([width, height], dtype=np.float64)


def _fit_affine(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares 2x3 affine taking src points to dst points."""
    design = np.hstack([src, np.ones((len(src), 1))])
    solution, *_ = np.linalg.lstsq(design, dst, rcond=None)
    return solution.T


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


def _polygon_from_five(five: np.ndarray, mask_type: str) -> np.ndarray:
    outline, depth = FACE_OUTLINE[:, :2].copy(), FACE_OUTLINE[:, 2].copy()
    if mask_type == "extended":
        top = outline[:, 1] < 0
        outline[top, 1] -= FOREHEAD_RAISE
        depth[top] += 0.5                                   # the forehead slopes back
    elif mask_type == "inner":
        centre = np.array([0.0, 0.5])
        outline = centre + INNER_SHRINK * (outline - centre)
        outline[:, 1] = np.maximum(outline[:, 1], -0.22)   # stop at the brows
        depth *= 0.5
    matrix = _fit_affine(CANONICAL_5, five)
    if abs(np.linalg.det(matrix[:, :2])) < 1e-6:
        raise ValueError("landmark_mask: the five landmarks are degenerate (collinear or coincident)")
    to_canonical = np.linalg.inv(np.vstack([matrix, [0.0, 0.0, 1.0]]))[:2]
    turn = np.clip(_apply(to_canonical, five[2:3])[0] - CANONICAL_5[2], -MAX_NOSE_OFFSET, MAX_NOSE_OFFSET)
    return _apply(matrix, outline - depth[:, None] * turn)


def _polygon_from_68(lm: np.ndarray, mask_type: str) -> np.ndarray:
    if mask_type == "inner":
        return lm[17:]                       # brows, nose, eyes and mouth: no jawline
    if mask_type == "extended":
        five = five_points(lm)
        up = (five[0] + five[1]) / 2 - (five[3] + five[4]) / 2    # mouth -> eyes, one eye-to-mouth length
        brows = lm[17:27] + FOREHEAD_RAISE * up
        return np.vstack([lm, brows])
    return lm


def face_polygon(landmarks: np.ndarray, mask_type: str, scale: float) -> np.ndarray:
    """Convex hull (float pixel coords) of the face region, scaled about its centroid."""
    lm = np.asarray(landmarks, np.float64)
    points = _polygon_from_five(lm, mask_type) if len(lm) == 5 else _polygon_from_68(lm, mask_type)
    hull = cv2.convexHull(points.astype(np.float32)).reshape(-1, 2).astype(np.float64)
    centre = hull.mean(axis=0)
    return centre + scale * (hull - centre)


def fill_polygon(shape: tuple[int, int], polygon: np.ndarray) -> np.ndarray:
    """Hard 0/1 float32 mask of the polygon, with 1/16-pixel vertex precision."""
    canvas = np.zeros(shape, np.uint8)
    shift = 4
    cv2.fillConvexPoly(canvas, np.round(polygon * (1 << shift)).astype(np.int32), 1, cv2.LINE_8, shift)
    return canvas.astype(np.float32)


def elastic_warp(mask: np.ndarray, amplitude_px: float, grid: int, rng: np.random.Generator) -> np.ndarray:
    """Wobble the mask outline: a coarse random displacement field, upsampled smoothly, moves each pixel by
    at most `amplitude_px`; coarse fields keep the outline smooth, unlike per-pixel noise."""
    if amplitude_px <= 0:
        return mask
    h, w = mask.shape
    field = rng.uniform(-1.0, 1.0, size=(2, grid, grid)).astype(np.float32) * amplitude_px
    dx = cv2.resize(field[0], (w, h), interpolation=cv2.INTER_CUBIC)
    dy = cv2.resize(field[1], (w, h), interpolation=cv2.INTER_CUBIC)
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(mask, xs + dx, ys + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def erode_or_dilate(mask: np.ndarray, radius_px: int) -> np.ndarray:
    """Grow (radius > 0) or shrink (radius < 0) the mask with an elliptical structuring element."""
    if radius_px == 0:
        return mask
    size = 2 * abs(radius_px) + 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    op = cv2.dilate if radius_px > 0 else cv2.erode
    return op(mask, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)


def feather(mask: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian-soften the edge and renormalise so the face interior is fully blended; tiny tails become 0."""
    if sigma_px > 0:
        mask = cv2.GaussianBlur(mask, (0, 0), sigmaX=sigma_px, sigmaY=sigma_px, borderType=cv2.BORDER_CONSTANT)
    peak = float(mask.max())
    if peak <= 0:
        return mask
    mask = mask / peak
    mask[mask < EPSILON] = 0.0
    return np.clip(mask, 0.0, 1.0, out=mask)


def _uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(rng.uniform(bounds[0], bounds[1])) if bounds[1] > bounds[0] else float(bounds[0])


def landmark_mask(shape: tuple[int, int], landmarks: np.ndarray | None, rng: np.random.Generator,
                  config: SBIConfig | None = None) -> tuple[np.ndarray, dict]:
    """Random soft face mask (float32 HxW in [0, 1], peak 1) from 5 or 68 landmarks in pixel coords (None: an
    aligned crop's template, see SBIConfig.margin), and the recipe of every random choice. The blend ratio
    is not applied here; self_blend does that."""
    config = config if config is not None else SBIConfig()
    h, w = int(shape[0]), int(shape[1])
    if landmarks is None:
        lm = template_landmarks(h, w, config.margin)
    else:
        lm = check_landmarks(landmarks, "landmark_mask")
    size = float(min(h, w))
    mask_type = str(config.mask_types[int(rng.integers(len(config.mask_types)))])
    scale = _uniform(rng, config.hull_scale)
    mask = fill_polygon((h, w), face_polygon(lm, mask_type, scale))
    if mask.max() <= 0:   # landmarks entirely outside the image: nothing to blend, say so plainly
        raise ValueError(f"landmark_mask: the face hull lies outside the {w}x{h} image")
    elastic_px = _uniform(rng, config.elastic) * size if rng.random() < config.elastic_prob else 0.0
    grid = int(rng.integers(config.elastic_grid[0], config.elastic_grid[1] + 1))
    mask = elastic_warp(mask, elastic_px, grid, rng)
    radius = int(round(_uniform(rng, config.morph) * size))
    mask = erode_or_dilate(mask, radius)
    if mask.max() <= 0:   # eroded away on a tiny face: fall back to the undeformed hull
        mask = fill_polygon((h, w), face_polygon(lm, mask_type, scale))
        radius = 0
    sigma = _uniform(rng, config.blur) * size
    mask = feather(mask, sigma)
    recipe = {"mask_type": mask_type, "landmarks": len(lm), "hull_scale": round(scale, 4),
              "elastic_px": round(elastic_px, 3), "elastic_grid": grid, "morph_px": radius,
              "blur_sigma_px": round(sigma, 3)}
    return mask.astype(np.float32, copy=False), recipe
