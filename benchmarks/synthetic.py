"""Realism and speed of the synthetic face world, judged by a detector nobody here trained.

Renders a world (default 50 identities x 1 clip x 24 frames at 256 px) with ``generate_world``, decodes
the H.264 MP4s with PyAV, runs facenet-pytorch's MTCNN on the frames and compares its five points with
the ground truth. Writes ``benchmarks/results/synthetic_realism.json`` (detection rate at p >= 0.9,
NME mean/median/p95, per-point errors, per-yaw-bin rates) and ``synthetic_speed.json`` (render-only and
render+encode frames/s at 256x256, single process).

    python -m benchmarks.synthetic [--identities 50] [--frames 24] [--every 1] [--seed 0]
"""
from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

from benchmarks.machine import machine_info
from forensics.data.manifest import read_manifest
from forensics.io import atomic_write_json
from forensics.media import write_video
from forensics.synthetic import (FrameState, VideoConfig, WorldConfig, generate_world, load_truth,
                                 mtcnn_agreement, render_frame, render_video, world_identity)
from forensics.synthetic.agreement import default_detector, summarise
from forensics.synthetic.video import video_scene

YAW_BINS = [(-40, -25), (-25, -15), (-15, -5), (-5, 5), (5, 15), (15, 25), (25, 40)]


def decode(path: str) -> list[np.ndarray]:
    with av.open(path) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def realism(identities: int, frames: int, size: int, every: int, seed: int, work: Path) -> dict:
    config = WorldConfig(identities=identities, videos_per_identity=1, frames=frames, size=size, seed=seed)
    t0 = time.perf_counter()
    manifest = generate_world(work / "world", config, progress=True)
    world_s = time.perf_counter() - t0
    detector = default_detector()
    records = []
    for row in read_manifest(manifest):
        images = decode(row.path)
        _, truths = load_truth(Path(manifest).parent / row.meta["truth"])
        picked = list(range(0, len(images), every))
        result = mtcnn_agreement([images[i] for i in picked], [truths[i] for i in picked], detector=detector)
        records += result["per_frame"]
    summary = summarise(records)
    per_frame = summary.pop("per_frame")
    bins = []
    for lo, hi in YAW_BINS:
        sel = [r for r in per_frame if lo <= r["yaw"] < hi]
        found = [r for r in sel if r["detected"]]
        bins.append({"yaw": [lo, hi], "frames": len(sel),
                     "detection_rate": round(len(found) / len(sel), 4) if sel else None,
                     "nme_mean": round(float(np.mean([r["nme"] for r in found])), 4) if found else None})
    misses = [{k: r[k] for k in ("identity", "index", "yaw", "pitch", "roll", "prob")}
              for r in per_frame if not r["detected"]]
    worst = sorted((r for r in per_frame if r["detected"]), key=lambda r: -r["nme"])[:10]
    return {**{k: (round(v, 4) if isinstance(v, float) else v) for k, v in summary.items() if k != "point_nme"},
            "point_nme": {k: round(v, 4) for k, v in (summary["point_nme"] or {}).items()},
            "criteria": {"detection_rate_min": 0.95, "nme_mean_max": 0.08,
                         "passed": bool(summary["detection_rate"] >= 0.95 and (summary["nme_mean"] or 1) <= 0.08)},
            "per_yaw_bin": bins, "misses": misses,
            "worst_nme": [{k: (round(r[k], 4) if isinstance(r[k], float) else r[k])
                           for k in ("identity", "index", "yaw", "pitch", "nme")} for r in worst],
            "world": config.to_dict(), "every": every, "world_render_encode_s": round(world_s, 1)}


def speed(size: int = 256, frames: int = 48, work: Path | None = None) -> dict:
    identity = world_identity(0, 3)
    config = VideoConfig(size=size, frames=frames)
    scene = video_scene(11, config)
    render_frame(identity, FrameState(), scene, size)               # warm caches (jaw outline, background)
    t0 = time.perf_counter()
    for i in range(frames):
        render_frame(identity, FrameState(yaw=20 * np.sin(i / 7), mouth_open=0.5 * (1 + np.sin(i)), index=i),
                     scene, size)
    render_fps = frames / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    images, _ = render_video(identity, 11, config)
    write_video(work / "speed.mp4", images, fps=config.fps, crf=config.crf)
    both_fps = frames / (time.perf_counter() - t0)
    return {"size": size, "frames": frames, "render_only_fps": round(render_fps, 2),
            "render_and_encode_fps": round(both_fps, 2), "single_process": True}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--identities", type=int, default=50)
    p.add_argument("--frames", type=int, default=24)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--every", type=int, default=1, help="run MTCNN on every k-th frame (default every frame)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    p.add_argument("--skip-speed", action="store_true")
    args = p.parse_args(argv)
    command = "python -m benchmarks.synthetic " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        result = {"command": command.strip(), "machine": machine_info(),
                  **realism(args.identities, args.frames, args.size, args.every, args.seed, work)}
        atomic_write_json(args.out / "synthetic_realism.json", result)
        print(f"detection rate {result['detection_rate']:.3f} at p>=0.9 over {result['frames']} frames; "
              f"NME mean {result['nme_mean']} median {result['nme_median']} p95 {result['nme_p95']} "
              f"-> {args.out / 'synthetic_realism.json'}")
        if not args.skip_speed:
            sp = {"command": command.strip(), "machine": machine_info(), **speed(work=work)}
            atomic_write_json(args.out / "synthetic_speed.json", sp)
            print(f"render {sp['render_only_fps']} frames/s, render+encode {sp['render_and_encode_fps']} frames/s "
                  f"at {sp['size']}x{sp['size']} -> {args.out / 'synthetic_speed.json'}")
    return 0 if result["criteria"]["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
