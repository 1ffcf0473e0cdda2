"""The face rig: feature curves shared by the painter (albedo) and the ground truth (landmarks).

Eyelids, brows, lips and the nose are defined once here as curves in head coordinates (x to the
image right, y up, z towards the camera when frontal). The albedo paints exactly these curves and the 68
landmarks sample exactly these curves, so ground truth matches the pixels by construction.
Features are symmetric: functions take ``ax = |x|`` and the signed offset ``u = ax - eye_sep`` (outward +).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from forensics.synthetic.identity import Identity


@dataclass(frozen=True)
class Expression:
    """The expression part of a frame, 0..1 each (gaze in head units, small)."""

    mouth_open: float = 0.0
    smile: float = 0.0
    blink: float = 0.0
    brow: float = 0.0
    gaze_x: float = 0.0
    gaze_y: float = 0.0


@dataclass(frozen=True)
class Rig:
    """Numbers the SDF, the painter and the landmarks need for one identity in one expression."""

    # head shape
    face_width: float
    jaw_width: float
    face_length: float
    chin_taper: float
    # eyes
    eye_sep: float
    eye_y: float
    eye_w: float
    eye_h: float
    eye_tilt: float
    blink: float
    squint: float
    iris_r: float
    iris_y: float                 # iris centre height (relative to eye_y), the 6-point eye centre
    gaze_x: float
    gaze_y: float
    # brows
    brow_y: float                 # centre-line height above the eye line
    brow_t: float
    brow_arch: float
    # nose
    nose_top_y: float
    nose_tip_y: float
    nose_tip_z: float
    nose_w: float
    # mouth
    mouth_y: float
    mouth_w: float
    corner_lift: float
    gap: float                    # lip separation at the centre
    lip_u: float
    lip_l: float
    jaw_drop: float               # how far the chin follows the lower lip
    drop_band: float


def build_rig(identity: Identity, expr: Expression) -> Rig:
    smile = float(np.clip(expr.smile, 0, 1))
    mouth_open = float(np.clip(expr.mouth_open, 0, 1))
    gap = 0.15 * mouth_open + 0.02 * smile
    drop = 0.75 * gap
    eye_h = identity.eye_height
    rig = Rig(
        face_width=identity.face_width, jaw_width=identity.jaw_width, face_length=identity.face_length,
        chin_taper=identity.chin_taper,
        eye_sep=identity.eye_sep, eye_y=identity.eye_y, eye_w=identity.eye_width, eye_h=eye_h,
        eye_tilt=identity.eye_tilt, blink=float(np.clip(expr.blink, 0, 1)), squint=0.2 * smile,
        iris_r=identity.iris_radius, iris_y=0.0,
        gaze_x=float(expr.gaze_x), gaze_y=float(expr.gaze_y),
        brow_y=identity.brow_height + 0.05 * float(np.clip(expr.brow, 0, 1)) - 0.01 * smile,
        brow_t=identity.brow_thickness, brow_arch=identity.brow_arch + 0.015 * float(np.clip(expr.brow, 0, 1)),
        nose_top_y=identity.eye_y + 0.02, nose_tip_y=identity.eye_y - identity.nose_length,
        nose_tip_z=0.86 + 0.06 * identity.nose_protrusion, nose_w=identity.nose_width,
        mouth_y=identity.mouth_y, mouth_w=identity.mouth_width * (1 + 0.12 * smile),
        corner_lift=0.03 * smile - 0.006, gap=gap, lip_u=identity.lip_upper, lip_l=identity.lip_lower,
        jaw_drop=drop, drop_band=0.1 + drop,
    )
    # Place the iris where the six eyelid landmarks average to with the eye open, so MTCNN's pupil
    # estimate and the iBUG eye centre describe the same point.
    open_rig = _replace(rig, blink=0.0)
    u = np.array([-rig.eye_w, rig.eye_w, -rig.eye_w / 3, rig.eye_w / 3], np.float32)
    up, lo = eyelids(open_rig, u)
    centre = (lo[0] + lo[1] + up[2] + up[3] + lo[2] + lo[3]) / 6
    return _replace(rig, iris_y=float(centre))


def _replace(rig: Rig, **kw) -> Rig:
    d = dict(rig.__dict__)
    d.update(kw)
    return Rig(**d)


def eyelids(rig: Rig, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Upper and lower lid heights (relative to the eye line) at outward offset ``u`` from the eye centre."""
    t = np.clip(u / rig.eye_w, -1.0, 1.0)
    base = rig.eye_tilt * t
    s = np.maximum(1.0 - t * t, 0.0)
    g_up = s ** 0.65 * (1.0 - 0.12 * t)
    g_lo = s ** 0.8 * (1.0 + 0.1 * t)
    upper = base + rig.eye_h * g_up
    lower = base - 0.55 * rig.eye_h * g_lo * (1.0 - rig.squint)
    closed = lower + 0.25 * (upper - lower)
    upper = upper + (closed - upper) * rig.blink
    lower = lower + (closed - lower) * rig.blink
    return upper.astype(np.float32), lower.astype(np.float32)


def brow_line(rig: Rig, u: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centre height, thickness and 0..1 position (inner to outer) of the brow at outward offset ``u``."""
    inner, outer = -(rig.eye_w + 0.035), rig.eye_w + 0.075
    s = (u - inner) / (outer - inner)
    peak = 0.62
    bump = 1.0 - ((s - peak) / 0.62) ** 2
    centre = rig.brow_y + rig.brow_arch * bump - 0.012 * (1 - s)
    thick = rig.brow_t * (1.15 - 0.55 * np.clip(s, 0, 1))
    return centre.astype(np.float32), thick.astype(np.float32), s.astype(np.float32)


def mouth_lines(rig: Rig, ax: np.ndarray) -> dict[str, np.ndarray]:
    """Lip contours (relative to the mouth line) at |x| = ``ax``: outer/inner of upper and lower lip."""
    t = np.clip(ax / rig.mouth_w, 0.0, 1.0)
    s = np.maximum(1.0 - t * t, 0.0)
    line = rig.corner_lift * t * t - 0.004 * s
    gap = rig.gap * s ** 0.7
    upper_inner = line + 0.25 * gap
    lower_inner = line - 0.75 * gap
    bow = s ** 0.45 * (1.0 + 0.3 * np.exp(-((t - 0.3) / 0.15) ** 2) - 0.28 * np.exp(-(t / 0.11) ** 2))
    upper_outer = upper_inner + rig.lip_u * bow
    lower_outer = lower_inner - rig.lip_l * s ** 0.55
    return {"line": line, "upper_inner": upper_inner, "lower_inner": lower_inner,
            "upper_outer": upper_outer, "lower_outer": lower_outer}


def jaw_drop(rig: Rig, y: np.ndarray) -> np.ndarray:
    """Rest-space height of a deformed point: below the mouth everything moves down with the jaw."""
    return y + rig.jaw_drop * smoothstep(rig.mouth_y, rig.mouth_y - rig.drop_band, y)


def jaw_drop_inverse(rig: Rig, y_rest: np.ndarray) -> np.ndarray:
    """Where a rest-space point lands after the jaw opens (fixed-point inverse of :func:`jaw_drop`)."""
    y = np.asarray(y_rest, np.float64).copy()
    for _ in range(30):
        y = y_rest - rig.jaw_drop * smoothstep(rig.mouth_y, rig.mouth_y - rig.drop_band, y)
    return y


def smoothstep(edge0: float, edge1: float, x):
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def feature_points_2d(rig: Rig) -> np.ndarray:
    """(51, 2) iBUG points 17..67 in head x/y, in iBUG order (jaw points come from the silhouette)."""
    pts: list[tuple[float, float]] = []
    ex, ey, w = rig.eye_sep, rig.eye_y, rig.eye_w
    # brows 17-21 (image-left, outer -> inner) and 22-26 (image-right, inner -> outer)
    inner, outer = -(w + 0.035), w + 0.075
    s_vals = np.array([1.0, 0.75, 0.5, 0.25, 0.0])
    u_b = inner + s_vals * (outer - inner)
    c, th, _ = brow_line(rig, u_b)
    y_b = ey + c + 0.25 * th
    pts += [(-(ex + u), y) for u, y in zip(u_b, y_b)]
    pts += [(ex + u, y) for u, y in zip(u_b[::-1], y_b[::-1])]
    # nose bridge 27-30 and base 31-35
    for k in range(4):
        pts.append((0.0, rig.nose_top_y + (rig.nose_tip_y - rig.nose_top_y) * k / 3))
    sub = rig.nose_tip_y - 0.075
    nw = rig.nose_w
    pts += [(-0.85 * nw, sub + 0.028), (-0.45 * nw, sub + 0.008), (0.0, sub), (0.45 * nw, sub + 0.008),
            (0.85 * nw, sub + 0.028)]
    # eyes 36-41 (image-left: outer, upper x2, inner, lower x2) and 42-47 (image-right: inner, ... )
    u_e = np.array([w, w / 3, -w / 3, -w, -w / 3, w / 3], np.float32)
    up, lo = eyelids(rig, u_e)
    v_e = np.array([lo[0], up[1], up[2], lo[3], lo[4], lo[5]])   # at the corners both lids meet
    pts += [(-(ex + u), ey + v) for u, v in zip(u_e, v_e)]
    order_right = [3, 2, 1, 0, 5, 4]          # inner, upper-inner, upper-outer, outer, lower-outer, lower-inner
    pts += [(ex + u_e[i], ey + v_e[i]) for i in order_right]
    # outer lips 48-59, inner lips 60-67
    mw = rig.mouth_w
    t_o = np.array([1.0, 0.6, 0.3, 0.0, 0.3, 0.6, 1.0, 0.6, 0.3, 0.0, 0.3, 0.6])
    sign_o = np.array([-1, -1, -1, 0, 1, 1, 1, 1, 1, 0, -1, -1])
    lines = mouth_lines(rig, t_o * mw)
    for i in range(12):
        if i in (0, 6):
            v = lines["line"][i]
        elif i < 6:
            v = lines["upper_outer"][i]
        else:
            v = lines["lower_outer"][i]
        pts.append((float(sign_o[i] * t_o[i] * mw), rig.mouth_y + float(v)))
    t_i = np.array([0.9, 0.45, 0.0, 0.45, 0.9, 0.45, 0.0, 0.45])
    sign_i = np.array([-1, -1, 0, 1, 1, 1, 0, -1])
    lines = mouth_lines(rig, t_i * mw)
    for i in range(8):
        if i in (0, 4):
            v = 0.5 * (lines["upper_inner"][i] + lines["lower_inner"][i])
        elif i < 4:
            v = lines["upper_inner"][i]
        else:
            v = lines["lower_inner"][i]
        pts.append((float(sign_i[i] * t_i[i] * mw), rig.mouth_y + float(v)))
    return np.asarray(pts, np.float32)
