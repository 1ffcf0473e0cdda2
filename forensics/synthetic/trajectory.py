"""How a talking head moves over a clip: smooth pose, speech-driven mouth, blinks, brows and gaze.

Poses are sums of a few slow sinusoids around a per-video base pose, soft-limited to the range the
detector is judged on. Speech opens the mouth syllable by syllable (3-5 Hz) inside talk spurts
separated by pauses; blinks come every few seconds and last about 0.16 s (4 frames at 25 fps).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from forensics.synthetic.camera import FrameState


@dataclass(frozen=True)
class MotionLimits:
    """Largest head rotation a clip may reach (degrees), and how much the head drifts and zooms."""

    yaw: float = 35.0
    pitch: float = 20.0
    roll: float = 15.0
    shift: float = 0.03           # frame fractions
    zoom: float = 0.04


def _sines(rng: np.random.Generator, t: np.ndarray, amps: list[float], f_lo: float, f_hi: float) -> np.ndarray:
    out = np.zeros_like(t)
    for amp in amps:
        out += amp * np.sin(2 * np.pi * rng.uniform(f_lo, f_hi) * t + rng.uniform(0, 2 * np.pi))
    return out


def _soft_limit(x: np.ndarray, limit: float) -> np.ndarray:
    """Identity for small values, smoothly saturating at +-limit (no kinks in the motion)."""
    return limit * np.tanh(x / limit)


def _speech(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    """Mouth opening: syllable bumps of random height inside talk spurts (1-4 s) and pauses (0.2-1.2 s)."""
    duration = float(t[-1]) + 1.0 if len(t) else 1.0
    envelope = np.zeros_like(t)
    now = -rng.uniform(0, 1.5)
    talking = rng.random() < 0.85
    while now < duration:
        length = rng.uniform(1.0, 4.0) if talking else rng.uniform(0.2, 1.2)
        if talking:
            envelope = np.maximum(envelope, ((t >= now) & (t < now + length)).astype(float))
        now += length
        talking = not talking
    kernel_t = np.arange(-3, 4)
    kernel = np.exp(-0.5 * (kernel_t / 1.5) ** 2)
    envelope = np.convolve(np.pad(envelope, 3, mode="edge"), kernel / kernel.sum(), mode="valid")
    rate = rng.uniform(3.0, 5.0)
    n_syll = int(duration * rate) + 2
    heights = rng.uniform(0.15, 1.0, n_syll) * rng.uniform(0.5, 1.0)
    phase = t * rate + rng.uniform(0, 1)
    k = np.floor(phase).astype(int)
    bump = np.sin(np.pi * (phase - k)) ** 2
    return np.clip(envelope * heights[np.clip(k, 0, n_syll - 1)] * bump, 0, 1)


def _blinks(rng: np.random.Generator, t: np.ndarray, fps: float) -> np.ndarray:
    """Eyelid closure 0..1: a blink every 2-6 s lasting four frames (fully shut in the middle two)."""
    out = np.zeros_like(t)
    duration = float(t[-1]) + 1.0 if len(t) else 1.0
    now = rng.uniform(0.2, 3.0)
    while now < duration:
        length = 4.0 / fps
        u = (t - now) / length
        inside = (u >= 0) & (u <= 1)
        out = np.maximum(out, np.where(inside, np.clip(1.3 * np.sin(np.pi * np.clip(u, 0, 1)), 0, 1), 0))
        now += rng.uniform(2.0, 6.0)
    return out


def _steps(rng: np.random.Generator, t: np.ndarray, every: tuple[float, float], scale: float) -> np.ndarray:
    """Piecewise-constant random values (gaze saccades), eased over two frames."""
    out = np.zeros_like(t)
    duration = float(t[-1]) + 1.0 if len(t) else 1.0
    now, value = 0.0, rng.normal(0, scale)
    while now < duration:
        nxt = now + rng.uniform(*every)
        out[(t >= now) & (t < nxt)] = value
        value = rng.normal(0, scale)
        now = nxt
    if len(out) > 2:
        out = np.convolve(np.pad(out, 1, mode="edge"), np.ones(3) / 3, mode="valid")
    return out


def video_trajectory(rng: np.random.Generator, frames: int, fps: float,
                     limits: MotionLimits | None = None) -> list[FrameState]:
    """Per-frame states of one clip. Most of the time the speaker faces the camera; turns come and go."""
    lim = limits or MotionLimits()
    t = np.arange(frames) / float(fps)
    base = rng.normal(0, [0.4 * lim.yaw, 0.25 * lim.pitch, 0.2 * lim.roll])
    yaw = _soft_limit(base[0] + _sines(rng, t, [rng.uniform(3, 0.5 * lim.yaw), rng.uniform(0, 0.2 * lim.yaw)],
                                       0.05, 0.5), lim.yaw)
    pitch = _soft_limit(base[1] + _sines(rng, t, [rng.uniform(2, 0.3 * lim.pitch), rng.uniform(0, 0.15 * lim.pitch)],
                                         0.08, 0.7), lim.pitch)
    roll = _soft_limit(base[2] + _sines(rng, t, [rng.uniform(1, 0.3 * lim.roll)], 0.05, 0.4), lim.roll)
    tx = np.clip(rng.normal(0, lim.shift / 2) + _sines(rng, t, [lim.shift / 3], 0.05, 0.3), -lim.shift, lim.shift)
    ty = np.clip(rng.normal(0, lim.shift / 3) + _sines(rng, t, [lim.shift / 4], 0.05, 0.3), -lim.shift, lim.shift)
    scale = 1 + np.clip(_sines(rng, t, [lim.zoom / 2, lim.zoom / 4], 0.03, 0.2), -lim.zoom, lim.zoom)
    mouth = _speech(rng, t)
    smile = np.clip(rng.uniform(-0.3, 0.6) + _sines(rng, t, [rng.uniform(0.1, 0.4)], 0.05, 0.3), 0, 1)
    brow = np.clip(_sines(rng, t, [rng.uniform(0.2, 0.7)], 0.1, 0.6) + 0.4 * mouth - 0.3, 0, 1)
    blink = _blinks(rng, t, fps)
    gaze_x = _steps(rng, t, (0.4, 2.0), 0.012)
    gaze_y = _steps(rng, t, (0.4, 2.0), 0.006)
    return [FrameState(yaw=float(yaw[i]), pitch=float(pitch[i]), roll=float(roll[i]), tx=float(tx[i]),
                       ty=float(ty[i]), scale=float(scale[i]), mouth_open=float(mouth[i]), smile=float(smile[i]),
                       blink=float(blink[i]), brow=float(brow[i]), gaze_x=float(gaze_x[i]), gaze_y=float(gaze_y[i]),
                       index=i, t=float(t[i])) for i in range(frames)]
