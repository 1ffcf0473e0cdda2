"""Spectacles drawn as projected 3D wire frames, hidden where the head is in front of them."""
from __future__ import annotations

import cv2
import numpy as np

from forensics.synthetic.camera import Camera
from forensics.synthetic.identity import Identity
from forensics.synthetic.rig import Rig
from forensics.synthetic.texture import srgb_to_linear


def _rim(rig: Rig, side: int, round_: bool, n: int = 40) -> np.ndarray:
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    cx, cy = side * (rig.eye_sep + 0.01), rig.eye_y - 0.015
    if round_:
        x, y = 0.15 * np.cos(a), 0.13 * np.sin(a)
    else:  # rounded rectangle via a superellipse
        c, s = np.cos(a), np.sin(a)
        x = 0.17 * np.sign(c) * np.abs(c) ** 0.45
        y = 0.115 * np.sign(s) * np.abs(s) ** 0.45
    z = 0.9 - 0.06 * (side * x > 0.05) * (side * x) - 0.2 * (x * side > 0) * (x * side) ** 2
    return np.column_stack([cx + x, cy + y, z])


def draw_glasses(colour: np.ndarray, depth: np.ndarray, identity: Identity, rig: Rig, cam: Camera) -> None:
    """Draw frames and faint lenses into the linear ``colour`` buffer in place (depth-tested)."""
    size = colour.shape[0]
    rims = [_rim(rig, s, identity.glasses_round) for s in (-1, 1)]
    bridge_x = np.linspace(-(rig.eye_sep - 0.14), rig.eye_sep - 0.14, 9)
    bridge = np.column_stack([bridge_x, rig.eye_y + 0.02 + 0.02 * np.cos(bridge_x * 6), np.full(9, 0.9)])
    arms = []
    for s in (-1, 1):
        t = np.linspace(0, 1, 16)[:, None]
        start = np.array([s * (rig.eye_sep + 0.17), rig.eye_y + 0.03, 0.84])
        end = np.array([s * 0.76 * rig.face_width, rig.eye_y - 0.02, -0.08])
        arms.append(start * (1 - t) + end * t)
    thick = max(1, int(round(cam.f * 0.018)))
    frame_mask = np.zeros((size, size), np.uint8)
    lens_mask = np.zeros((size, size), np.uint8)
    shift = 3
    for poly in rims + [bridge] + arms:
        uv, z = cam.project(poly)
        closed = poly is rims[0] or poly is rims[1]
        pts = np.concatenate([uv, uv[:1]]) if closed else uv
        zs = np.concatenate([z, z[:1]]) if closed else z
        for i in range(len(pts) - 1):
            mid = 0.5 * (pts[i] + pts[i + 1])
            ui, vi = int(round(mid[0])), int(round(mid[1]))
            if 0 <= ui < size and 0 <= vi < size and depth[vi, ui] > 0.5 * (zs[i] + zs[i + 1]) + 0.02:
                continue                                   # the head is in front of this piece
            a = tuple(np.round(pts[i] * (1 << shift)).astype(int))
            b = tuple(np.round(pts[i + 1] * (1 << shift)).astype(int))
            cv2.line(frame_mask, a, b, 255, thick, cv2.LINE_AA, shift)
        if closed:
            cv2.fillPoly(lens_mask, [np.round(uv * (1 << shift)).astype(np.int32)], 255, cv2.LINE_AA, shift)
    lens = lens_mask.astype(np.float32)[..., None] / 255
    colour *= 1 - 0.12 * lens                                  # tinted glass
    yy, xx = np.mgrid[0:size, 0:size]
    streak = (np.abs(((xx + yy) % max(8, int(cam.f * 0.5))) - 3) < 1.5)[..., None] * lens * 0.05
    colour += streak.astype(np.float32)                        # faint reflection
    alpha = frame_mask.astype(np.float32)[..., None] / 255
    frame_rgb = srgb_to_linear(identity.glasses_rgb)
    colour[:] = colour * (1 - alpha) + frame_rgb * alpha
