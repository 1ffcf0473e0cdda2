"""Degradations media goes through after it is made (re-compression, resizing, blur, sensor noise),
applied to whole videos so that the detector sees them exactly as it would in the wild: decoded by the
product's reader, face-detected, aligned and scored by `forensics detect`'s pipeline.

Conditions are named by what they do, parameter in the name, so a suite lists them as plain strings:

    clean            the file as it is (no re-encode at all)
    jpeg90           every frame JPEG-compressed at quality 90 (any 1..100)
    h264_crf23       the whole video re-encoded by libx264 at CRF 23 (any 0..51)
    downscale0.5     every frame shrunk to 0.5 of its size (area filter), then restored (bilinear)
    blur1.5          Gaussian blur, sigma 1.5 px for a 256-px frame (scaled with the frame's short side)
    noise8           additive Gaussian noise, sigma 8/255 (seeded per video, so reruns are identical)

A per-frame condition has to be written back into a video: it is carried by H.264 at `carrier_crf`
(default 0, x264's lossless mode), so JPEG50 measures JPEG at quality 50 and not JPEG plus another heavy
H.264 pass. What little CRF 0 still loses is the RGB -> YUV 4:2:0 conversion every H.264 file already had.
The H.264 conditions are the FaceForensics++ c23/c40 analogues: a second-generation encode of the source.
"""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from forensics.media import VideoWriter, iter_frames

BLUR_REFERENCE_SIDE = 256     # blur sigma is given for a frame of this short side
CARRIER_CRF = 0               # H.264 quality that carries per-frame conditions (0 = lossless mode)

_PATTERNS = {
    "clean": re.compile(r"clean"),
    "jpeg": re.compile(r"jpeg(\d+)"),
    "h264": re.compile(r"h264_crf(\d+)"),
    "downscale": re.compile(r"downscale(\d*\.?\d+)"),
    "blur": re.compile(r"blur(\d*\.?\d+)"),
    "noise": re.compile(r"noise(\d*\.?\d+)"),
}


@dataclass(frozen=True)
class Condition:
    name: str
    kind: str           # clean | jpeg | h264 | downscale | blur | noise
    value: float | None

    @property
    def reencodes_only(self) -> bool:
        """True when the pixels are left alone and only the codec changes (the video is re-encoded)."""
        return self.kind == "h264"

    def describe(self) -> str:
        if self.kind == "clean":
            return "original file, no re-encode"
        v = self.value
        return {"jpeg": f"per-frame JPEG quality {v:g}",
                "h264": f"re-encoded with libx264 CRF {v:g}",
                "downscale": f"downscaled to {v:g}x then restored",
                "blur": f"Gaussian blur sigma {v:g} px at {BLUR_REFERENCE_SIDE} px",
                "noise": f"Gaussian noise sigma {v:g}/255"}[self.kind]


def parse_condition(name: str) -> Condition:
    """`Condition` for a name like jpeg70; a one-line ValueError for anything else."""
    text = str(name).strip().lower()
    for kind, pattern in _PATTERNS.items():
        match = pattern.fullmatch(text)
        if match:
            value = float(match.group(1)) if match.groups() else None
            _check_range(text, kind, value)
            return Condition(text, kind, value)
    raise ValueError(f"unknown condition {name!r} (use clean, jpegQ, h264_crfN, downscaleF, blurS, noiseS, "
                     f"e.g. jpeg70, h264_crf40, downscale0.5, blur1.5, noise8)")


def _check_range(text: str, kind: str, value: float | None) -> None:
    ok = {"clean": True,
          "jpeg": value is not None and 1 <= value <= 100 and value == int(value),
          "h264": value is not None and 0 <= value <= 51 and value == int(value),
          "downscale": value is not None and 0 < value < 1,
          "blur": value is not None and value > 0,
          "noise": value is not None and 0 < value <= 255}[kind]
    if not ok:
        limits = {"jpeg": "an integer quality 1..100", "h264": "an integer CRF 0..51",
                  "downscale": "a factor in (0, 1)", "blur": "a sigma > 0", "noise": "a sigma in (0, 255]"}
        raise ValueError(f"condition {text!r}: needs {limits[kind]}")


def frame_transform(condition: Condition, seed: int = 0) -> Callable[[np.ndarray], np.ndarray] | None:
    """The per-frame function of a condition (None for clean and the H.264 conditions)."""
    kind, value = condition.kind, condition.value
    if kind == "jpeg":
        return lambda frame: jpeg(frame, int(value))
    if kind == "downscale":
        return lambda frame: downscale(frame, value)
    if kind == "blur":
        return lambda frame: blur(frame, value)
    if kind == "noise":
        rng = np.random.default_rng(seed)
        return lambda frame: noise(frame, value, rng)
    return None


def jpeg(frame: np.ndarray, quality: int) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError(f"JPEG encoding failed at quality {quality}")
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def downscale(frame: np.ndarray, factor: float) -> np.ndarray:
    """Shrink (area filter: what a resizing service does) and bring back to the original size, so the
    detector and the face detector see the same geometry with the detail gone."""
    h, w = frame.shape[:2]
    small = cv2.resize(frame, (max(2, round(w * factor)), max(2, round(h * factor))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def blur(frame: np.ndarray, sigma_at_reference: float) -> np.ndarray:
    sigma = sigma_at_reference * min(frame.shape[:2]) / BLUR_REFERENCE_SIDE
    return cv2.GaussianBlur(frame, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT)


def noise(frame: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    noisy = frame.astype(np.float32) + rng.normal(0.0, sigma, frame.shape).astype(np.float32)
    return np.clip(noisy + 0.5, 0, 255).astype(np.uint8)


def video_seed(path: str | os.PathLike, condition: Condition) -> int:
    """Noise seed from the video's name and the condition: reruns and resumed runs write the same file."""
    digest = hashlib.sha256(f"{Path(path).name}:{condition.name}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def perturb_video(source: str | os.PathLike, target: str | os.PathLike, condition: Condition | str,
                  carrier_crf: int = CARRIER_CRF) -> dict:
    """Write `source` under `condition` to `target` (H.264 MP4, atomically); returns what was done.

    clean is not written (the caller scores the original); asking for it is an error so that no
    "clean" copy with an extra encode can slip into a benchmark.
    """
    condition = parse_condition(condition) if isinstance(condition, str) else condition
    if condition.kind == "clean":
        raise ValueError("perturb_video: the clean condition is the source file itself; nothing to write")
    transform = frame_transform(condition, video_seed(source, condition))
    crf = int(condition.value) if condition.kind == "h264" else int(carrier_crf)
    frames = iter_frames(source)
    fps = float(frames.info.fps or 25.0)
    written = 0
    with frames, VideoWriter(target, fps, crf=crf) as writer:
        for frame in frames:
            writer.write(frame.image if transform is None else transform(frame.image))
            written += 1
    return {"condition": condition.name, "source": str(source), "output": str(target), "frames": written,
            "codec": "h264", "crf": crf, "fps": fps, "complete": frames.complete,
            "bytes": Path(target).stat().st_size}
