"""Sphere tracing of the head SDF, only for pixels whose rays cross the head's bounding ellipsoid.

Rays start where they enter the ellipsoid and stop where they leave it, so the ~10-20 steps go into the
thin shell around the surface. Converged rays leave the working set each step (compaction), which keeps
the cost proportional to the rays still searching. Rays that pass within a pixel of the surface without
touching it become soft silhouette pixels (coverage < 1) instead of jagged edges.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from forensics.synthetic.camera import PIVOT, Camera
from forensics.synthetic.sdf import Head, head_parts, head_sdf

F32 = np.float32
TETRA = np.array([[1, -1, -1], [-1, -1, 1], [-1, 1, -1], [1, 1, 1]], F32)


@dataclass
class Hits:
    """Surface samples for the pixels the head covers."""

    pixel: np.ndarray      # flat pixel indices (v * size + u)
    point: np.ndarray      # (3, N) head-space surface points
    coverage: np.ndarray   # (N,) 1 for hits, <1 at the silhouette
    depth: np.ndarray      # (N,) camera-space z (larger is nearer)
    normal: np.ndarray     # (3, N) head-space unit normals
    is_hair: np.ndarray    # (N,) bool
    occlusion: np.ndarray  # (N,) 0 (occluded) .. 1 (open)


def bounding_box(head: Head, cam: Camera, size: int) -> tuple[int, int, int, int] | None:
    """Pixel box (u0, v0, u1, v1), exclusive ends, of the projected bounding ellipsoid."""
    c = cam.to_camera(np.asarray(head.bound_c)[None])[0]
    ext = np.sqrt(((cam.R * np.asarray(head.bound_r)[None, :]) ** 2).sum(axis=1))
    u0 = int(np.floor(cam.cx + cam.f * (c[0] - ext[0])))
    u1 = int(np.ceil(cam.cx + cam.f * (c[0] + ext[0]))) + 1
    v0 = int(np.floor(cam.cy - cam.f * (c[1] + ext[1])))
    v1 = int(np.ceil(cam.cy - cam.f * (c[1] - ext[1]))) + 1
    u0, v0, u1, v1 = max(u0, 0), max(v0, 0), min(u1, size), min(v1, size)
    return None if u0 >= u1 or v0 >= v1 else (u0, v0, u1, v1)


def _march(head: Head, o: tuple, d: tuple, t: np.ndarray, t_exit: np.ndarray, eps: float, max_steps: int):
    """Sphere-trace rays from ``t``.

    Returns (hit, t at closest approach, closest distance, still searching). Rays still searching after
    ``max_steps`` are grazing a silhouette; the caller decides what they show."""
    ox, oy, oz = o
    dx, dy, dz = d
    n = len(t)
    t = t.copy()
    hit = np.zeros(n, bool)
    best_d = np.full(n, np.inf, F32)
    best_t = t.copy()
    alive = np.arange(n)
    for _ in range(max_steps):
        if not len(alive):
            break
        ta = t[alive]
        dist = head_sdf(head, ox[alive] + ta * dx, oy[alive] + ta * dy, oz[alive] + ta * dz)
        adist = np.abs(dist)
        closer = adist < best_d[alive]
        best_d[alive] = np.where(closer, adist, best_d[alive])
        best_t[alive] = np.where(closer, ta, best_t[alive])
        converged = adist < eps
        hit[alive[converged]] = True
        # a start placed just behind the surface steps back out (negative distance) instead of stopping inside
        t[alive] = ta + np.where(dist > 0, np.maximum(dist, eps * 0.5), dist)
        alive = alive[~converged & (t[alive] < t_exit[alive])]
    searching = np.zeros(n, bool)
    searching[alive] = True
    hit |= best_d < eps * 3                                  # stalled at grazing angles: close enough
    return hit, best_t, best_d, searching & ~hit


def _enter_exit(head: Head, origin: np.ndarray, direction: np.ndarray):
    """Ray parameters where each ray enters and leaves the bounding ellipsoid (nan where it misses)."""
    c = np.asarray(head.bound_c, F32)[:, None]
    r = np.asarray(head.bound_r, F32)[:, None]
    o = (origin - c) / r
    d = direction[:, None] / r
    a = float((d * d).sum())
    b = 2 * (o * d).sum(axis=0)
    q = (o * o).sum(axis=0) - 1
    disc = b * b - 4 * a * q
    sq = np.sqrt(np.maximum(disc, 0))
    t0 = np.where(disc > 0, (-b - sq) / (2 * a), np.nan).astype(F32)
    t1 = np.where(disc > 0, (-b + sq) / (2 * a), np.nan).astype(F32)
    return t0, t1


def trace(head: Head, cam: Camera, size: int, coarse_steps: int = 32, fine_steps: int = 12) -> Hits | None:
    """Trace every other pixel first, then start each full-resolution ray just before its coarse
    neighbours' hits (or skip it when they all passed far from the head): most rays then need 2-4 steps."""
    box = bounding_box(head, cam, size)
    if box is None:
        return None
    u0, v0, u1, v1 = box
    px_size = 1.0 / cam.f
    eps = F32(0.2 * px_size)
    direction = cam.rays(np.zeros(1), np.zeros(1))[1]
    dvec = tuple(float(c) for c in direction)

    # coarse pass on a stride-2 grid that covers the box
    hc, wc = (v1 - v0) // 2 + 2, (u1 - u0) // 2 + 2
    vc, uc = np.mgrid[0:hc, 0:wc]
    oc, _ = cam.rays((u0 + 2 * uc).ravel().astype(np.float64), (v0 + 2 * vc).ravel().astype(np.float64))
    t0c, t1c = _enter_exit(head, oc, direction)
    coarse_t = np.full(hc * wc, np.inf, F32)
    coarse_d = np.full(hc * wc, np.inf, F32)
    live = np.nonzero(~np.isnan(t0c))[0]
    if len(live):
        hit, bt, bd, searching = _march(head, tuple(oc[i, live] for i in range(3)), dvec, t0c[live], t1c[live],
                                        eps, coarse_steps)
        hit |= searching & (bd < 2 * px_size)              # grazing an edge: near enough to seed the fine rays
        coarse_t[live] = np.where(hit, bt, np.inf)
        coarse_d[live] = np.where(hit, 0.0, bd)
    coarse_t, coarse_d = coarse_t.reshape(hc, wc), coarse_d.reshape(hc, wc)

    # fine pass
    vv, uu = np.mgrid[0:v1 - v0, 0:u1 - u0]
    i0, i1, j0, j1 = vv // 2, (vv + 1) // 2, uu // 2, (uu + 1) // 2
    corners = (coarse_t[i0, j0], coarse_t[i0, j1], coarse_t[i1, j0], coarse_t[i1, j1])
    near_t = np.minimum(np.minimum(corners[0], corners[1]), np.minimum(corners[2], corners[3])).ravel()
    far_t = np.maximum(np.maximum(corners[0], corners[1]), np.maximum(corners[2], corners[3])).ravel()
    with np.errstate(invalid="ignore"):
        mean_t = (0.25 * (corners[0] + corners[1] + corners[2] + corners[3])).ravel()
    # all neighbours hit: start just before the interpolated hit (usually converged at once; at a depth edge
    # this can put an edge pixel on the far side, a one-pixel error); at the outline: before the nearest hit
    with np.errstate(invalid="ignore"):
        smooth = np.isfinite(far_t) & (far_t - near_t < 12 * px_size)
    near_t = np.where(smooth, mean_t - 0.3 * px_size, near_t - 1.5 * px_size)
    near_d = np.minimum(np.minimum(coarse_d[i0, j0], coarse_d[i0, j1]),
                        np.minimum(coarse_d[i1, j0], coarse_d[i1, j1])).ravel()
    candidates = np.nonzero(np.isfinite(near_t) | (near_d < 2.5 * px_size))[0]
    if not len(candidates):
        return None
    uf = (u0 + uu.ravel()[candidates]).astype(np.float64)
    vf = (v0 + vv.ravel()[candidates]).astype(np.float64)
    of, _ = cam.rays(uf, vf)
    t0f, t1f = _enter_exit(head, of, direction)
    ok = ~np.isnan(t0f)
    of, t0f, t1f, uf, vf = of[:, ok], t0f[ok], t1f[ok], uf[ok], vf[ok]
    start = np.where(np.isfinite(near_t[candidates][ok]), np.maximum(near_t[candidates][ok], t0f), t0f).astype(F32)
    o = tuple(of[i] for i in range(3))
    hit, best_t, best_d, searching = _march(head, o, dvec, start, t1f, F32(2.5 * eps), fine_steps)
    # rays still grazing an edge after a few steps show the nearest surface they passed when a coarse
    # neighbour hit something (no see-through holes at nose or ear edges); otherwise they are soft edge pixels
    hit |= searching & np.isfinite(far_t[candidates][ok])
    coverage = np.where(hit, 1.0, np.clip(0.5 - best_d / px_size, 0.0, 0.5)).astype(F32)
    keep = np.nonzero(coverage > 0)[0]
    tt = best_t[keep]
    p = np.stack([o[0][keep] + tt * dvec[0], o[1][keep] + tt * dvec[1], o[2][keep] + tt * dvec[2]]).astype(F32)
    normal, is_hair = _normals(head, p, h=0.6 * px_size)
    occlusion = _occlusion(head, p, normal)
    depth = (cam.R[2] @ (p.astype(np.float64) - PIVOT[:, None]) + PIVOT[2]).astype(F32)
    pixel = (vf[keep] * size + uf[keep]).astype(np.int64)
    return Hits(pixel=pixel, point=p, coverage=coverage[keep], depth=depth, normal=normal,
                is_hair=is_hair, occlusion=occlusion)


def _normals(head: Head, p: np.ndarray, h: float) -> tuple[np.ndarray, np.ndarray]:
    """Tetrahedral finite-difference gradient, and which material (skin/hair) is nearer."""
    grad = np.zeros_like(p)
    skin_sum = np.zeros(p.shape[1], F32)
    hair_sum = np.zeros(p.shape[1], F32)
    h = max(h, 1e-3)
    for k in TETRA:
        skin, hair = head_parts(head, p[0] + k[0] * h, p[1] + k[1] * h, p[2] + k[2] * h)
        d = np.minimum(skin, hair)
        grad += k[:, None] * d[None]
        skin_sum += skin
        hair_sum += np.minimum(hair, 1e3)
    grad /= np.linalg.norm(grad, axis=0, keepdims=True) + F32(1e-8)
    return grad, hair_sum < skin_sum


def _occlusion(head: Head, p: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Ambient occlusion from two SDF probes along the normal (sockets, nostrils, under the hair)."""
    ao = np.ones(p.shape[1], F32)
    for delta, weight in ((0.045, 0.5), (0.14, 0.5)):
        q = p + n * F32(delta)
        d = head_sdf(head, q[0], q[1], q[2])
        ao -= weight * np.clip((delta - d) / delta, 0, 1)
    return np.clip(ao, 0.2, 1.0)
