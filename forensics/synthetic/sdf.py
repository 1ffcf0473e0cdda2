"""Signed distances of the head (skin and hair) in head coordinates, vectorised over float32 point arrays.

The head is a smooth union of a few ellipsoids (skull, tapered lower face, cheeks, brow ridge, lips,
chin, ears), a round cone for the nose, eyeballs in carved sockets, and a hair shell with the face cut
out. Symmetric parts are evaluated once on ``|x|``. Distances are approximate but never overestimate by
much, which is all sphere tracing needs.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from forensics.synthetic.identity import Identity
from forensics.synthetic.rig import Rig, smoothstep

F32 = np.float32
HAIR_THICKNESS = {"bald": 0.0, "buzz": 0.012, "short": 0.06, "medium": 0.09, "long": 0.07, "curly": 0.17,
                  "bun": 0.05}


@dataclass(frozen=True)
class Head:
    """Shape parameters of one identity in one expression, plus a bounding ellipsoid for the tracer."""

    rig: Rig
    style: str
    hair_th: float
    hairline: float
    ear: float
    bound_c: tuple
    bound_r: tuple


def build_head(identity: Identity, rig: Rig) -> Head:
    th = HAIR_THICKNESS[identity.hair_style] * identity.hair_volume
    # generous enough for the dropped jaw and the thickest hair (tests probe it from outside)
    if identity.hair_style == "long":
        c, r = (0.0, -0.25, -0.12), (1.0 + th, 1.75, 1.24)
    elif identity.hair_style == "bun":
        c, r = (0.0, 0.05, -0.1), (1.0, 1.45, 1.36)
    else:
        c, r = (0.0, 0.07, 0.0), (0.95 + th, 1.38 + th, 1.26 + th)
    return Head(rig=rig, style=identity.hair_style, hair_th=th, hairline=identity.hairline,
                ear=identity.ear_size, bound_c=c, bound_r=r)


# ---------------------------------------------------------------- primitives

def ellipsoid(x, y, z, c, r):
    """Approximate ellipsoid distance (Inigo Quilez's k0*(k0-1)/k1 bound)."""
    px, py, pz = (x - c[0]) * (1 / r[0]), (y - c[1]) * (1 / r[1]), (z - c[2]) * (1 / r[2])
    k0 = np.sqrt(px * px + py * py + pz * pz)
    qx, qy, qz = px * (1 / r[0]), py * (1 / r[1]), pz * (1 / r[2])
    k1 = np.sqrt(qx * qx + qy * qy + qz * qz) + F32(1e-6)
    return k0 * (k0 - 1) / k1


def smin(a, b, k: float):
    """Polynomial smooth minimum: blends two surfaces over a band of width ``k``."""
    h = np.clip(0.5 + (0.5 / k) * (b - a), 0.0, 1.0)
    return b + (a - b) * h - k * h * (1.0 - h)


def smax(a, b, k: float):
    return -smin(-a, -b, k)


def round_cone(x, y, z, a, b, r1: float, r2: float):
    """Distance to a cone capped by spheres of radius r1 at ``a`` and r2 at ``b`` (Quilez)."""
    bx, by, bz = (float(b[i]) - float(a[i]) for i in range(3))   # python floats keep arrays float32
    l2 = bx * bx + by * by + bz * bz
    rr = float(r1 - r2)
    a2 = l2 - rr * rr
    il2 = 1.0 / l2
    pax, pay, paz = x - a[0], y - a[1], z - a[2]
    yy = pax * bx + pay * by + paz * bz
    zz = yy - l2
    cx, cy, cz = pax * l2 - yy * bx, pay * l2 - yy * by, paz * l2 - yy * bz
    x2 = cx * cx + cy * cy + cz * cz
    y2 = yy * yy * l2
    z2 = zz * zz * l2
    k = (1.0 if rr >= 0 else -1.0) * rr * rr * x2
    d_tip = np.sqrt(x2 + z2) * il2 - r2
    d_base = np.sqrt(x2 + y2) * il2 - r1
    d_side = (np.sqrt(x2 * a2 * il2) + yy * rr) * il2 - r1
    return np.where(np.sign(zz) * a2 * z2 > k, d_tip, np.where(np.sign(yy) * a2 * y2 < k, d_base, d_side))


# ---------------------------------------------------------------- the head

def skin_sdf(head: Head, x, y, z, ears: bool = True):
    rig = head.rig
    ax = np.abs(x)
    yr = y + F32(rig.jaw_drop) * smoothstep(rig.mouth_y, rig.mouth_y - rig.drop_band, y) if rig.jaw_drop > 0 else y
    fw, jw, fl = rig.face_width, rig.jaw_width, rig.face_length
    d = ellipsoid(ax, y, z, (0.0, 0.26, -0.1), (0.76 * fw, 0.96, 0.93))
    taper = 1.0 - rig.chin_taper * np.clip((-0.3 - yr) * (1 / 0.72), 0.0, 1.0) ** 1.5
    px, py, pz = ax / (0.66 * jw * taper), (yr + 0.22 * fl) * (1 / (0.8 * fl)), (z - 0.1) * (1 / 0.66)
    k0 = np.sqrt(px * px + py * py + pz * pz)
    k1 = np.sqrt((px / (0.66 * jw * taper)) ** 2 + (py / (0.8 * fl)) ** 2 + (pz / 0.66) ** 2) + F32(1e-6)
    d = smin(d, k0 * (k0 - 1) / k1, 0.22)
    d = smin(d, ellipsoid(ax, y, z, (0.4 * fw, -0.1, 0.44), (0.24, 0.2, 0.22)), 0.12)
    d = smin(d, ellipsoid(ax, y, z, (0.25, rig.eye_y + 0.19, 0.67), (0.24, 0.08, 0.12)), 0.08)
    socket = ellipsoid(ax, y, z, (rig.eye_sep, rig.eye_y + 0.01, 0.8), (0.17, 0.11, 0.12))
    d = smax(d, -socket, 0.04)
    ex, ey, ez = ax - rig.eye_sep, y - rig.eye_y, z - 0.6
    d = np.minimum(d, np.sqrt(ex * ex + ey * ey + ez * ez) - 0.14)
    nose = round_cone(x, y, z, (0.0, rig.nose_top_y - 0.03, 0.72), (0.0, rig.nose_tip_y + 0.025, rig.nose_tip_z),
                      0.035, 0.058)
    alae = ellipsoid(ax, y, z, (0.62 * rig.nose_w, rig.nose_tip_y - 0.035, 0.8),
                     (0.45 * rig.nose_w + 0.02, 0.055, 0.075))
    d = smin(d, smin(nose, alae, 0.05), 0.05)
    d = smin(d, ellipsoid(ax, yr, z, (0.0, rig.mouth_y - 0.012, 0.67), (rig.mouth_w * 1.05, 0.095, 0.1)), 0.05)
    d = smin(d, ellipsoid(ax, yr, z, (0.0, -0.22 * fl - 0.68 * fl, 0.45), (0.17 * jw, 0.12, 0.12)), 0.1)
    if ears:
        d = smin(d, ellipsoid(ax, y, z, (0.75 * fw, rig.eye_y - 0.1, -0.1),
                              (0.07, 0.19 * head.ear, 0.12 * head.ear)), 0.04)
    return d


def hair_sdf(head: Head, x, y, z):
    """Hair: an offset of the skull, thin at the hairline and full ``hair_th`` away from it (no hard walls).

    ``None`` for bald heads. The face window is an ellipse capped by the hairline that continues as a
    vertical strip below its centre; in front of the ears the hair may not come forward of the cheeks.
    """
    if head.style == "bald":
        return None
    rig, th = head.rig, head.hair_th
    ax = np.abs(x)
    fw = rig.face_width
    a, b = 0.6 * fw, 0.55
    qy = np.maximum(y - (head.hairline - b), 0.0) * (1 / b)
    d_win = (np.sqrt((ax * (1 / a)) ** 2 + qy * qy) - 1.0) * a
    edge = np.maximum(d_win, -0.02 - z)                 # > 0 where hair may grow, = distance from the edge
    if head.style in ("buzz", "short", "bun"):
        edge = np.minimum(edge, y - 0.1 - 0.55 * np.minimum(z, 0.0))
    elif head.style in ("medium", "curly"):
        edge = np.minimum(edge, y + 0.32 - 0.3 * np.minimum(z, 0.0))
    thick = 0.006 + (th - 0.006) * smoothstep(0.0, 0.4, edge)
    d = ellipsoid(ax, y, z, (0.0, 0.26 + 0.3 * th, -0.1 - 0.15 * th), (0.76 * fw, 0.96, 0.93)) - thick
    if head.style == "long":
        fall = ellipsoid(ax, y, z, (0.0, -0.35, -0.32), (0.78 * fw + th, 1.25, 0.7))
        fall = np.maximum(fall, np.maximum(-1.55 - y, -np.maximum(d_win, -0.02 - z) + 0.02))
        d = smin(d, fall, 0.1)
    elif head.style == "bun":
        bx, by, bz = x, y - 0.88, z + 0.72
        d = np.minimum(d, np.sqrt(bx * bx + by * by + bz * bz) - 0.27)
    return np.maximum(d, -edge)


def head_sdf(head: Head, x, y, z):
    skin = skin_sdf(head, x, y, z)
    hair = hair_sdf(head, x, y, z)
    return skin if hair is None else np.minimum(skin, hair)


def head_parts(head: Head, x, y, z) -> tuple[np.ndarray, np.ndarray]:
    """Skin and hair distances (hair = +inf when bald): the nearer one is the material at a hit."""
    skin = skin_sdf(head, x, y, z)
    hair = hair_sdf(head, x, y, z)
    if hair is None:
        hair = np.full_like(skin, np.inf)
    return skin, hair
