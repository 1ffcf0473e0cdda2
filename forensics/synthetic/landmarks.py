"""The 68 iBUG landmarks as 3D points on the rendered surface.

Inner points (brows, nose, eyes, lips) come from the rig's curves and are dropped onto the skin along
the head's z axis, exactly where the painter puts those features. Jaw points are fixed 3D points on the
frontal face outline (like 3D-aware datasets such as AFLW2000-3D), found once per identity by searching
the silhouette of the skin surface; they do not slide to the visible contour when the head turns.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from forensics.synthetic.rig import Rig, feature_points_2d, jaw_drop_inverse
from forensics.synthetic.sdf import Head, skin_sdf

_JAW_CACHE: dict = {}


def surface_z(head: Head, x: np.ndarray, y: np.ndarray, start: float = 1.3, steps: int = 64) -> np.ndarray:
    """Depth of the front-most skin surface seen along -z at each (x, y)."""
    x = np.asarray(x, np.float32)
    y = np.asarray(y, np.float32)
    z = np.full_like(x, start)
    for _ in range(steps):
        d = skin_sdf(head, x, y, z)
        if d.max() < 1e-4:
            break
        z = z - np.maximum(d, 1e-4)
    return z + np.minimum(d, 0)


def jaw_points(head: Head, key) -> np.ndarray:
    """(17,3) rest-pose jaw outline, iBUG order 0..16 (image-left ear level, chin, image-right)."""
    if key in _JAW_CACHE:
        return _JAW_CACHE[key]
    rest = replace(head, rig=replace(head.rig, jaw_drop=0.0, gap=0.0))
    centre = np.array([0.0, rest.rig.eye_y - 0.06])
    angles = np.pi + np.pi * np.arange(17) / 16
    dirs = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    zs = np.linspace(-0.9, 1.1, 101, dtype=np.float32)
    lo, hi = np.full(17, 0.2), np.full(17, 1.7)

    def probe(r):
        xy = centre + dirs * r[:, None]
        px = np.repeat(xy[:, 0], len(zs)).astype(np.float32)
        py = np.repeat(xy[:, 1], len(zs)).astype(np.float32)
        pz = np.tile(zs, 17)
        d = skin_sdf(rest, px, py, pz, ears=False).reshape(17, len(zs))
        return d.min(axis=1), zs[d.argmin(axis=1)]

    for _ in range(22):
        mid = 0.5 * (lo + hi)
        dmin, _ = probe(mid)
        inside = dmin < 0
        lo = np.where(inside, mid, lo)
        hi = np.where(inside, hi, mid)
    r = lo * 0.985                                # a hair inside the outline, where annotators click
    _, z = probe(r)
    xy = centre + dirs * r[:, None]
    pts = np.column_stack([xy, z]).astype(np.float32)
    _JAW_CACHE[key] = pts
    if len(_JAW_CACHE) > 512:
        _JAW_CACHE.pop(next(iter(_JAW_CACHE)))
    return pts


def landmarks_3d(head: Head, jaw_key) -> np.ndarray:
    """(68,3) head-space landmarks for the head's current expression."""
    rig: Rig = head.rig
    jaw = jaw_points(head, jaw_key).copy()
    jaw[:, 1] = jaw_drop_inverse(rig, jaw[:, 1])
    inner = feature_points_2d(rig)
    z = surface_z(head, inner[:, 0], inner[:, 1])
    return np.concatenate([jaw, np.column_stack([inner, z])]).astype(np.float32)


def forehead_points(head: Head) -> np.ndarray:
    """A few points at the top of the forehead, so the face box covers what a detector boxes."""
    top = min(head.hairline, head.rig.eye_y + 0.62)
    x = np.array([-0.3, 0.0, 0.3], np.float32)
    y = np.full(3, top - 0.02, np.float32)
    return np.column_stack([x, y, surface_z(head, x, y)]).astype(np.float32)
