"""Cheap deterministic procedural noise for skin, hair and backgrounds (float32, no state).

Evaluated at head-space points, so texture sticks to the face as it turns. Sums of a few random
sinusoids are smooth and nearly free; the hash gives per-cell random values for stubble and pores.
"""
from __future__ import annotations

import numpy as np

F32 = np.float32


def srgb_to_linear(c):
    c = np.asarray(c, np.float32)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(c):
    c = np.clip(c, 0.0, 1.0)
    return np.where(c <= 0.0031308, c * 12.92, 1.055 * np.power(c, 1 / 2.4) - 0.055).astype(np.float32)


class SineNoise:
    """Smooth 3D noise: a sum of ``octaves`` random plane waves per frequency band, in -1..1-ish."""

    def __init__(self, seed: int, base_freq: float, octaves: int = 3, waves: int = 3):
        rng = np.random.default_rng(seed)
        self.terms = []
        amp, freq, total = 1.0, base_freq, 0.0
        for _ in range(octaves):
            for _ in range(waves):
                k = rng.normal(size=3)
                k = k / np.linalg.norm(k) * freq * rng.uniform(0.8, 1.25)
                self.terms.append((float(k[0]), float(k[1]), float(k[2]), float(rng.uniform(0, 2 * np.pi)),
                                   amp / waves))
                total += amp / waves
            amp *= 0.5
            freq *= 2.1
        self.norm = 1.0 / total

    def __call__(self, x, y, z):
        out = np.zeros_like(x)
        for kx, ky, kz, phase, amp in self.terms:
            out += amp * np.sin(kx * x + ky * y + kz * z + phase)
        return out * self.norm


def hash2(ix, iy, seed: int = 0):
    """Per-cell pseudo-random value in 0..1 for integer-valued cell coordinates (float arrays)."""
    h = np.sin(ix * F32(12.9898) + iy * F32(78.233) + F32(seed % 997) * F32(0.1731)) * F32(43758.5453)
    return (h - np.floor(h)).astype(np.float32)


def hash_noise(x, y, cell: float, seed: int = 0):
    """Blocky white noise with cells of ``cell`` head units (stubble dots, pores)."""
    return hash2(np.floor(x * (1 / cell)), np.floor(y * (1 / cell)), seed)


def soft_inside(signed, width):
    """Anti-aliased 'inside' (signed > 0 inside) over a band of ``width`` (a pixel, in the same units)."""
    return np.clip(0.5 + signed / width, 0.0, 1.0).astype(np.float32)
