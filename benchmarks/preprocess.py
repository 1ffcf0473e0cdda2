"""Preprocessing throughput: frames per second through decode -> MTCNN -> alignment -> crops -> cache.

Two inputs: 256x256 synthetic video (the demo's scale) and a 1280x720 H.264 clip (a talking head placed in
an HD frame, the size real footage comes in, where MTCNN runs on a downscaled copy). Every frame is
processed (``every=1``) so the figure is a steady-state rate, and a sampled-mode run (16 frames a video)
shows the time to preprocess one video as the cache does by default.

    python -m benchmarks.preprocess [--seconds 4] [--out benchmarks/results/preprocess_speed.json]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks.machine import machine_info
from forensics.data.cache import CacheConfig, FaceCache
from forensics.data.manifest import ManifestRow
from forensics.io import atomic_write_json
from forensics.media import probe, write_video
from forensics.synthetic import Identity, VideoConfig, render_video, sample_identity


def _hd_frames(frames: list[np.ndarray], width: int = 1280, height: int = 720) -> list[np.ndarray]:
    """Place 256-px renders, scaled to 2/3 of the frame height, off-centre in a blurred HD background."""
    out = []
    face_side = int(height * 2 / 3)
    for f in frames:
        canvas = cv2.resize(f, (width, height), interpolation=cv2.INTER_LINEAR)
        canvas = cv2.GaussianBlur(canvas, (0, 0), 12)
        face = cv2.resize(f, (face_side, face_side), interpolation=cv2.INTER_CUBIC)
        x0, y0 = width // 2 - face_side // 3, (height - face_side) // 2
        canvas[y0:y0 + face_side, x0:x0 + face_side] = face
        out.append(canvas)
    return out


def _time_cache(path: Path, cfg: CacheConfig, work: Path) -> dict:
    cache = FaceCache(work / f"cache-{time.monotonic_ns()}", cfg)
    row = ManifestRow(path=str(path), label="real", identity="bench", split="test", source="bench")
    t0 = time.perf_counter()
    report = cache.build([row], progress=False)
    elapsed = time.perf_counter() - t0
    entry = cache.entries()[0] if cache.entries() else None
    frames = report.frames
    return {"frames": frames, "seconds": round(elapsed, 3), "frames_per_s": round(frames / elapsed, 2),
            "faces_found": len(entry.faces) if entry else 0, "errors": report.failed}


def run(seconds: float, out: Path) -> dict:
    fps = 25
    n = int(seconds * fps)
    identity: Identity = sample_identity(np.random.default_rng(7), 7)
    frames, _ = render_video(identity, seed=11, config=VideoConfig(size=256, frames=n, fps=fps))
    results = {"command": "python -m benchmarks.preprocess", "machine": machine_info(), "inputs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        small = write_video(work / "synthetic_256.mp4", frames, fps=fps, crf=23)
        hd = write_video(work / "talking_head_720p.mp4", _hd_frames(frames), fps=fps, crf=23)
        for name, path in (("synthetic_256x256", small), ("h264_1280x720", hd)):
            info = probe(path)
            # Warm-up run so model construction is not counted as throughput.
            _time_cache(path, CacheConfig(frames=2, crop_size=224, device="cpu"), work)
            every = _time_cache(path, CacheConfig(every=1, crop_size=224, device="cpu"), work)
            sampled = _time_cache(path, CacheConfig(frames=16, crop_size=224, device="cpu"), work)
            results["inputs"][name] = {"width": info.width, "height": info.height, "frames": info.frames,
                                       "every_frame": every, "sampled_16": sampled}
            print(f"{name}: every frame {every['frames_per_s']} frames/s "
                  f"({every['faces_found']} faces in {every['frames']} frames); "
                  f"16 sampled frames in {sampled['seconds']} s")
    atomic_write_json(out, results)
    print(f"-> {out}")
    return results


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=4.0, help="clip length (default 4 s at 25 fps)")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/preprocess_speed.json"))
    args = p.parse_args(argv)
    run(args.seconds, args.out)


if __name__ == "__main__":
    main()
