"""Paint the head: skin, eyes, brows, lips and mouth, nostrils, beard and hair, at head-space hit points.

Features are painted from the rig's curves (the same ones the landmarks sample), so a blink closes the
painted eye exactly where the eyelid landmarks go. Edges are anti-aliased over one pixel (``px``, the
pixel size in head units). Each feature only touches the points inside its own small box.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from forensics.synthetic.identity import Identity
from forensics.synthetic.rig import Rig, brow_line, eyelids, mouth_lines, smoothstep
from forensics.synthetic.texture import SineNoise, hash_noise, soft_inside, srgb_to_linear

F32 = np.float32
SCLERA = srgb_to_linear((0.86, 0.82, 0.78))
TEETH = srgb_to_linear((0.86, 0.84, 0.76))
CAVITY = srgb_to_linear((0.16, 0.05, 0.05))
TONGUE = srgb_to_linear((0.5, 0.2, 0.2))


@dataclass
class Surface:
    """Per-point material: linear albedo (N,3), specular strength/shininess, emission, subsurface weight."""

    albedo: np.ndarray
    ks: np.ndarray
    shininess: np.ndarray
    emit: np.ndarray
    sss: np.ndarray


def _mix(dst: np.ndarray, idx: np.ndarray, colour, alpha: np.ndarray) -> None:
    """dst[idx] = lerp(dst[idx], colour, alpha) in place; colour is (3,) or (n,3)."""
    a = alpha[:, None]
    dst[idx] = dst[idx] * (1 - a) + np.asarray(colour, F32) * a


class Painter:
    """Holds an identity's colours and noise fields; ``paint`` is called once per frame on the hit points."""

    def __init__(self, identity: Identity):
        self.identity = identity
        seed = identity.texture_seed
        self.skin = srgb_to_linear(identity.skin_rgb)
        self.hair = srgb_to_linear(identity.hair_rgb)
        self.brow = srgb_to_linear(identity.brow_rgb)
        self.lips = srgb_to_linear(identity.lip_rgb)
        self.iris = srgb_to_linear(identity.iris_rgb)
        self.beard = srgb_to_linear(identity.beard_rgb)
        self.lash = srgb_to_linear(np.asarray(identity.brow_rgb) * 0.35)
        self.skin_noise = SineNoise(seed, 5.0, octaves=3)
        self.hair_noise = SineNoise(seed + 1, 2.5, octaves=2)
        self.seed = seed

    def paint(self, rig: Rig, x, y, z, is_hair, px: float) -> Surface:
        n = len(x)
        albedo = np.empty((n, 3), F32)
        albedo[:] = self.skin
        ks = np.full(n, 0.06 + 0.06 * self.identity.skin_tone, F32)   # darker skin reads by its sheen
        shin = np.full(n, 22.0, F32)
        emit = np.zeros((n, 3), F32)
        sss = np.ones(n, F32)
        ax = np.abs(x)
        self._skin_tone(rig, albedo, ks, x, y, z, ax)
        front = z > 0.3
        self._beard(rig, albedo, ks, sss, x, y, z, ax, px)
        self._eyes(rig, albedo, ks, shin, emit, sss, x, y, ax, front, px)
        self._brows(rig, albedo, ks, x, y, ax, front, px)
        self._nostrils(rig, albedo, y, z, ax, px)
        self._mouth(rig, albedo, ks, shin, sss, y, ax, front, px)
        hair = np.nonzero(is_hair)[0]
        if len(hair):
            self._hair(albedo, ks, shin, sss, hair, x[hair], y[hair], z[hair])
        return Surface(albedo, ks, shin, emit, sss)

    # ------------------------------------------------------------ skin

    def _skin_tone(self, rig, albedo, ks, x, y, z, ax) -> None:
        noise = self.skin_noise(x, y, z)
        albedo *= (1.0 + 0.07 * noise)[:, None]
        cheek = np.exp(-((ax - 0.36) ** 2 + (y + 0.2) ** 2) * (1 / 0.025))
        nose = np.exp(-(ax ** 2 + (y - rig.nose_tip_y) ** 2) * (1 / 0.01)) * (z > 0.7)
        blush = self.identity.blush * (cheek + 0.7 * nose)
        albedo *= (1.0 - blush[:, None] * np.array([0.0, 0.28, 0.24], F32))
        shiny = np.exp(-(ax ** 2) * (1 / 0.04)) * (y > rig.nose_tip_y - 0.05)
        ks += 0.1 * shiny                                     # oily T-zone
        ear = (ax > 0.72) & (np.abs(y - rig.eye_y + 0.1) < 0.15)
        if ear.any():
            idx = np.nonzero(ear)[0]
            concha = ((z[idx] + 0.1) / 0.07) ** 2 + ((y[idx] - rig.eye_y + 0.12) / 0.1) ** 2 < 1
            albedo[idx] *= np.where(concha, 0.7, 1.0).astype(F32)[:, None]

    def _beard(self, rig, albedo, ks, sss, x, y, z, ax, px) -> None:
        """Facial hair: speckled strands under a soft, noisy edge that rises from the cheeks to the ears."""
        style = self.identity.beard
        if style == "none":
            return
        region = (y < rig.eye_y - 0.05) & (z > -0.15) & (y > -1.3)
        if style in ("mustache", "goatee"):
            region &= (ax < rig.mouth_w + 0.08) & (y < rig.nose_tip_y - 0.05)
        idx = np.nonzero(region)[0]
        if not len(idx):
            return
        bx, by, bz, bax = x[idx], y[idx], z[idx], ax[idx]
        lines = mouth_lines(rig, bax)
        v = by - rig.mouth_y
        wobble = 0.015 * self.skin_noise(bx * 3, by * 3, bz * 3)
        lips = soft_inside(np.minimum(lines["upper_outer"] + 0.01 - v, v - lines["lower_outer"] + 0.01), 0.01) \
            * soft_inside(rig.mouth_w + 0.01 - bax, 0.01)
        under_nose = soft_inside(rig.nose_tip_y - 0.09 - by + wobble, 0.02)
        # a mustache hugs the upper lip and thins out as it droops towards the mouth corners
        droop = soft_inside(rig.nose_tip_y - 0.09 - 0.35 * np.maximum(bax - 0.06, 0) - by + wobble, 0.02)
        mustache = droop * soft_inside(v - lines["upper_outer"] + 0.005, 0.01) \
            * soft_inside(rig.mouth_w + 0.02 - bax + wobble, 0.02)
        if style == "mustache":
            area = mustache
        elif style == "goatee":
            cy = lines["lower_outer"] - 0.11
            chin = soft_inside(1.0 - np.sqrt((bax / (0.55 * rig.mouth_w)) ** 2 + ((v - cy) / 0.1) ** 2) + wobble * 4, 0.15)
            area = np.maximum(chin * soft_inside(lines["lower_outer"] - 0.012 - v, 0.01), mustache)
        else:   # stubble and full beards cover the lower face up to a line rising to the sideburns
            top = rig.mouth_y + 0.17 + (rig.eye_y - 0.1 - rig.mouth_y - 0.17) * smoothstep(0.28, 0.66, bax)
            area = soft_inside(top - by + wobble, 0.04) * soft_inside(bz + 0.1, 0.1)
        speck = hash_noise(bx + 0.3 * bz, by, 0.009, self.seed)
        if style == "stubble":          # at video resolution, stubble is a shadow more than dots
            cover = area * (0.3 + 0.2 * speck)
            colour = np.minimum(self.beard, self.skin) * 0.45
        else:
            cover = area * (0.8 + 0.2 * speck)
            colour = self.beard[None, :] * (0.65 + 0.7 * speck)[:, None]
        cover = (cover * (1.0 - lips)).astype(F32)
        _mix(albedo, idx, colour, cover)
        sss[idx] *= 1.0 - 0.8 * cover
        ks[idx] *= 1.0 - 0.6 * cover

    # ------------------------------------------------------------ eyes and brows

    def _eyes(self, rig, albedo, ks, shin, emit, sss, x, y, ax, front, px) -> None:
        box = front & (np.abs(ax - rig.eye_sep) < rig.eye_w + 0.03) & (np.abs(y - rig.eye_y - 0.02) < 0.11)
        idx = np.nonzero(box)[0]
        if not len(idx):
            return
        u = ax[idx] - rig.eye_sep
        v = y[idx] - rig.eye_y
        side = np.sign(x[idx]).astype(F32)
        up, lo = eyelids(rig, u)
        up_open, _ = eyelids(replace(rig, blink=0.0), u)
        within = soft_inside(rig.eye_w - np.abs(u), px)
        inside = soft_inside(np.minimum(up - v, v - lo), px) * within
        # eyeball: sclera shaded by the upper lid, iris with radial fibres, pupil, catch-light
        sclera = SCLERA * (0.55 + 0.45 * np.clip((up - v) / (0.6 * rig.eye_h + 1e-4), 0, 1))[:, None]
        corner = smoothstep(0.6, 1.0, np.abs(u) / rig.eye_w)
        sclera = sclera * (1 - 0.25 * corner[:, None] * np.array([0.0, 1.0, 1.0], F32))
        du = u - side * rig.gaze_x
        dv = v - rig.iris_y - rig.gaze_y
        r = np.sqrt(du * du + dv * dv) / rig.iris_r
        ang = np.arctan2(dv, du)
        fibres = 0.5 + 0.5 * np.sin(ang * 23 + 2.5 * np.sin(ang * 7 + self.seed % 11))
        iris = self.iris * ((0.55 + 0.45 * fibres) * (1 - 0.55 * smoothstep(0.7, 1.0, r))
                            * (1 + 0.4 * smoothstep(0.7, 0.45, r)))[:, None]
        in_iris = soft_inside((1 - r) * rig.iris_r, px)
        in_pupil = soft_inside((0.42 - r) * rig.iris_r, px)
        eye = sclera * (1 - in_iris)[:, None] + iris * in_iris[:, None]
        eye = eye * (1 - in_pupil)[:, None] + 0.008 * in_pupil[:, None]
        eye = eye * (0.75 + 0.25 * np.clip((up - v) / (0.35 * rig.eye_h + 1e-4), 0, 1))[:, None]
        _mix(albedo, idx, eye, inside)
        hx, hy = du + side * 0.32 * rig.iris_r, dv - 0.32 * rig.iris_r
        glint = soft_inside((0.2 * rig.iris_r - np.sqrt(hx * hx + hy * hy)), px) * inside
        emit[idx] += (1.6 * glint)[:, None]
        ks[idx] = ks[idx] * (1 - inside) + 0.5 * inside
        shin[idx] = shin[idx] * (1 - inside) + 80 * inside
        sss[idx] *= 1 - inside
        # lash line on the upper lid (thicker outwards), a faint lower line, and the lid crease
        t = np.clip((u + rig.eye_w) / (2 * rig.eye_w), 0, 1)
        lash_w = 0.008 + 0.01 * t + 0.004 * rig.blink
        lash = soft_inside(lash_w - np.abs(v - up - 0.3 * lash_w), px) * soft_inside(rig.eye_w * 1.08 - np.abs(u), px)
        _mix(albedo, idx, self.lash, 0.92 * lash)
        lower = soft_inside(0.005 - np.abs(v - lo + 0.004), px) * within * (1 - rig.blink)
        albedo[idx] *= (1 - 0.35 * lower)[:, None]
        crease = np.exp(-((v - up_open - 0.045) / 0.014) ** 2) * within
        albedo[idx] *= (1 - 0.22 * crease)[:, None]

    def _brows(self, rig, albedo, ks, x, y, ax, front, px) -> None:
        box = front & (np.abs(ax - rig.eye_sep) < rig.eye_w + 0.12) & (y > rig.eye_y + 0.06) & (y < rig.eye_y + 0.36)
        idx = np.nonzero(box)[0]
        if not len(idx):
            return
        u = ax[idx] - rig.eye_sep
        v = y[idx] - rig.eye_y
        centre, thick, s = brow_line(rig, u)
        body = soft_inside(0.5 * thick - np.abs(v - centre), px)
        ends = soft_inside(np.minimum(s, 1 - s) * 0.3, px)
        strokes = 0.7 + 0.3 * np.sin(u * 260 + v * 90 + np.sin(u * 50) * 2)
        alpha = (0.92 * body * ends * strokes).astype(F32)
        _mix(albedo, idx, self.brow, alpha)
        ks[idx] *= 1 - 0.9 * alpha                       # hair is not shiny like the skin under it

    def _nostrils(self, rig, albedo, y, z, ax, px) -> None:
        cy = rig.nose_tip_y - 0.062
        box = (z > 0.76) & (ax < rig.nose_w) & (np.abs(y - cy) < 0.05)
        idx = np.nonzero(box)[0]
        if not len(idx):
            return
        q = np.sqrt(((ax[idx] - 0.42 * rig.nose_w) / 0.03) ** 2 + ((y[idx] - cy) / 0.016) ** 2)
        hole = soft_inside((1 - q) * 0.016, px)
        albedo[idx] *= (1 - 0.85 * hole)[:, None]

    # ------------------------------------------------------------ mouth

    def _mouth(self, rig, albedo, ks, shin, sss, y, ax, front, px) -> None:
        box = front & (ax < rig.mouth_w + 0.03) & (y < rig.mouth_y + 0.13) & (y > rig.mouth_y - 0.33)
        idx = np.nonzero(box)[0]
        if not len(idx):
            return
        a = ax[idx]
        v = y[idx] - rig.mouth_y
        lines = mouth_lines(rig, a)
        width = soft_inside(rig.mouth_w - a, px)
        cavity = soft_inside(np.minimum(lines["upper_inner"] - v, v - lines["lower_inner"]), px) * width
        upper = soft_inside(np.minimum(lines["upper_outer"] - v, v - lines["upper_inner"]), px) * width
        lower = soft_inside(np.minimum(lines["lower_inner"] - v, v - lines["lower_outer"]), px) * width
        # the upper lip is darker than the lower one; on darker skin the lower lip is also pinker
        tone = self.identity.skin_tone
        lower_lip = self.lips * np.array([1.1 + 0.25 * tone, 1.0 + 0.15 * tone, 1.03 + 0.2 * tone], F32)
        colour = np.where((v > lines["line"])[:, None], self.lips * 0.85, lower_lip)
        _mix(albedo, idx, colour, np.clip(upper + lower, 0, 1))
        # inside the mouth: upper teeth under the upper lip, lower teeth and tongue at the bottom
        tooth_gap = 0.8 + 0.2 * np.abs(np.sin(a * (np.pi / 0.05) + np.pi / 2))
        # teeth show once the lips part properly; a slightly open mouth is a dark slit, not a white line
        show = float(smoothstep(0.025, 0.08, rig.gap))
        upper_teeth = soft_inside(0.5 * rig.gap - (lines["upper_inner"] - v), px) \
            * soft_inside(0.8 * rig.mouth_w - a, px) * show
        lower_teeth = soft_inside(0.2 * rig.gap - (v - lines["lower_inner"]), px) \
            * soft_inside(0.6 * rig.mouth_w - a, px) * show
        depth_shade = (1 - 0.7 * smoothstep(0.3, 1.0, a / rig.mouth_w)) * 0.75
        mouth = CAVITY * np.ones((len(idx), 1), F32)
        tongue = soft_inside(0.05 - (v - lines["lower_inner"]), px) * 0.6
        mouth = mouth * (1 - tongue)[:, None] + TONGUE * 0.5 * tongue[:, None]
        teeth = np.clip(upper_teeth + 0.8 * lower_teeth, 0, 1)
        mouth = mouth * (1 - teeth)[:, None] + (TEETH * (tooth_gap * depth_shade)[:, None]) * teeth[:, None]
        _mix(albedo, idx, mouth, cavity)
        slit = soft_inside(0.008 - np.abs(v - lines["line"]), px) * width * (1 - cavity)
        albedo[idx] *= (1 - 0.75 * slit)[:, None]
        # soft shadow under the lower lip and in the mouth corners, as the lips overhang
        below = np.exp(-((v - lines["lower_outer"] + 0.03) / 0.022) ** 2) * soft_inside(rig.mouth_w * 0.8 - a, 0.05)
        corner = np.exp(-(((a - rig.mouth_w) / 0.025) ** 2 + ((v - lines["line"]) / 0.02) ** 2))
        albedo[idx] *= (1 - 0.3 * below * (1 - lower) - 0.45 * corner)[:, None]
        lip_or_mouth = np.clip(upper + lower + cavity, 0, 1)
        ks[idx] = ks[idx] * (1 - lip_or_mouth) + 0.12 * (upper + lower) + 0.2 * cavity * teeth
        shin[idx] = shin[idx] * (1 - lip_or_mouth) + 30 * lip_or_mouth
        sss[idx] *= 1 - cavity

    # ------------------------------------------------------------ hair

    def _hair(self, albedo, ks, shin, sss, idx, x, y, z) -> None:
        style = self.identity.hair_style
        warp = self.hair_noise(x, y, z)
        if style == "curly":
            curls = np.sin(x * 38 + 4 * warp) * np.sin(y * 38 - 3 * warp) * np.sin(z * 38 + warp)
            strand = 0.5 + 0.5 * curls
        else:
            phi = np.arctan2(x, z + 0.15)
            strand = 0.5 + 0.5 * np.sin(phi * 70 + 6 * warp) * np.sin(phi * 23 - 3 * warp + y * 4)
        colour = self.hair * (0.6 + 0.55 * strand + 0.25 * warp)[:, None]
        # the inside of long hair, seen beside and behind the neck, gets little light
        inner = smoothstep(-0.3, -0.6, y) * smoothstep(0.75, 0.55, np.abs(x))
        colour = colour * (1 - 0.8 * inner)[:, None]
        if style == "buzz":
            dots = hash_noise(x + z, y, 0.01, self.seed)
            cover = (0.55 + 0.35 * dots)[:, None]
            colour = colour * cover + self.skin * (1 - cover)
        albedo[idx] = colour
        ks[idx] = (0.12 + 0.1 * strand) * (1 - 0.9 * inner)
        shin[idx] = 9.0
        sss[idx] = 0.0
