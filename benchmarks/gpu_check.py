"""The GPU figures in one prepared run: detector and generator training throughput, detect on 1080p, memory.

What it records (benchmarks/results/gpu.json), each with the machine it ran on:
- detector training images/s, mobilenetv3-small and efficientnet-b4, bf16 autocast and channels_last, with the
  step's FLOPs (counted by torch.utils.flop_counter on one step) and the fraction of the GPU's dense bf16 peak
  they reach;
- generator training images/s at 256 px (the face swap's and the animation model's `gpu` presets) through the
  shared loop's parts, on a small world rendered here;
- `forensics detect --every 1` frames/s on a 1080p H.264 clip, MTCNN and the detector on the device;
- peak device memory of each part.

    benchmarks/gpu_check.sh                          # one GPU: < 8 minutes, writes benchmarks/results/gpu.json
    benchmarks/gpu_check.sh --device cpu --smoke     # the same code at toy size on the CPU (tests/test_gpu_check.py)

The smoke mode shrinks every size and step count so the whole path runs in about a minute on a CPU; its figures
mean nothing and it writes to --out, never to the committed gpu.json unless told to.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.detect_speed import gradient_background
from benchmarks.machine import machine_info
from detectors import create_detector, save_detector
from forensics.io import atomic_write_json
from forensics.media import write_video
from forensics.pipelines import DetectConfig, DetectPipeline
from forensics.synthetic import VideoConfig, WorldConfig, generate_world, render_video, sample_identity
from forensics.training import StepContext, seed_everything
from forensics.training.step import GradientWindow
from generators.registry import create_generator

RESULTS = Path("benchmarks/results/gpu.json")
# Dense (no sparsity) bf16 tensor-core peak, TFLOP/s, from the vendors' data sheets; matched on the device name.
BF16_PEAK_TFLOPS = (("H200", 989.4), ("H100 PCIe", 756.0), ("H100", 989.4), ("A100", 312.0), ("L40S", 362.1),
                    ("L4", 121.0), ("A10", 125.0))
DETECTORS = {"mobilenetv3-small": (224, 256), "efficientnet-b4": (380, 32)}     # arch -> (input px, batch)
GENERATORS = ("faceswap", "animation")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory_mb(device: torch.device) -> float | None:
    return round(torch.cuda.max_memory_allocated(device) / 2 ** 20, 1) if device.type == "cuda" else None


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def bf16_peak(device: torch.device) -> tuple[float | None, str]:
    if device.type != "cuda":
        return None, "cpu"
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in BF16_PEAK_TFLOPS if key in name), None), name


def detector_training(arch: str, device: torch.device, size: int, batch: int, steps: int, warmup: int) -> dict:
    """Images/s of a plain detector training step (AdamW, BCE on logits) with bf16 autocast and channels_last."""
    seed_everything(0)
    reset_peak(device)
    model = create_detector(arch, input_size=size).to(device).train().to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    images = torch.randn(batch, 3, size, size, device=device).contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, 2, (batch,), device=device).float()

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16):
            logits = model(images).reshape(batch, -1)[:, 0]
        loss = F.binary_cross_entropy_with_logits(logits.float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    with FlopCounterMode(display=False) as counter:
        step()
    flops = counter.get_total_flops()
    for _ in range(warmup):
        step()
    sync(device)
    started = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    seconds = time.perf_counter() - started
    achieved = flops * steps / seconds / 1e12
    peak, _ = bf16_peak(device)
    return {"input_px": size, "batch": batch, "steps": steps, "images_per_s": round(steps * batch / seconds, 1),
            "step_ms": round(1000 * seconds / steps, 2), "tflop_per_step": round(flops / 1e12, 4),
            "achieved_tflops": round(achieved, 2),
            "fraction_of_bf16_peak": round(achieved / peak, 4) if peak else None,
            "peak_memory_mb": peak_memory_mb(device)}


def generator_training(family: str, device: torch.device, world: Path, steps: int, warmup: int,
                       smoke: bool) -> dict:
    """Images/s of the family's `gpu` preset training step (adversarial terms on) through the shared loop's
    parts (the loop's bf16 autocast on CUDA), on `world`."""
    overrides = {"device": str(device), "world": str(world)}
    if smoke:                                       # toy widths and sizes: the code path, not the figure
        overrides.update({"size": 64, "batch_size": 2} if family == "faceswap" else
                         {"size": 128, "batch_size": 2, "pairs_per_video": 2})   # its hourglasses need 128
    spec, config = create_generator(family, "gpu", **overrides)
    task = spec.make_task(config)
    seed_everything(0)
    reset_peak(device)
    modules = {name: module.to(device).train() for name, module in task.build(device).items()}
    window = GradientWindow(task.configure_optimizers(modules), {}, 1, None, device, amp=device.type == "cuda")
    epoch = getattr(config, "adv_start_epoch", getattr(config, "adversarial_start_epoch", 1))
    ctx = StepContext(device=device, modules=modules, raw_modules=modules, epoch=epoch, _window=window)
    per_step = 2 * config.batch_size if family == "faceswap" else config.batch_size
    batches = _cycle(task, epoch)
    for index in range(warmup + steps):
        if index == warmup:
            sync(device)
            started = time.perf_counter()
        task.training_step(next(batches), ctx)
        window.end_micro_batch()
        window.step()
    sync(device)
    seconds = time.perf_counter() - started
    return {"preset": "gpu" + (" (smoke sizes)" if smoke else ""), "size_px": config.size,
            "batch": config.batch_size, "images_per_step": per_step, "steps": steps,
            "images_per_s": round(steps * per_step / seconds, 1), "step_ms": round(1000 * seconds / steps, 1),
            "peak_memory_mb": peak_memory_mb(device),
            "counts": "faceswap: 2 x batch crops reconstructed per step; animation: one driving frame per pair"}


def _cycle(task, epoch: int):
    while True:
        yield from task.train_batches(epoch, 0, 1)


def hd_clip(path: Path, width: int, height: int, frames: int, face: int) -> Path:
    """A talking head composed onto a plain gradient background (as benchmarks.detect_speed, at any size)."""
    renders = (frames + 1) // 2
    faces, _ = render_video(sample_identity(np.random.default_rng(7), 7), seed=11,
                            config=VideoConfig(size=face, frames=renders, fps=12))
    background = gradient_background(width, height)
    y0 = (height - face) // 2

    def compose():
        for i in range(frames):
            frame = background.copy()
            x0 = width // 5 + int(round((width // 2) * i / max(1, frames - 1)))
            frame[y0:y0 + face, x0:x0 + face] = faces[i // 2]
            yield frame
    return write_video(path, compose(), fps=25)


def detect_every_frame(device: torch.device, work: Path, smoke: bool) -> dict:
    width, height, frames, face = (320, 180, 12, 96) if smoke else (1920, 1080, 250, 480)
    clip = hd_clip(work / "clip.mp4", width, height, frames, face)
    model = save_detector(work / "detector", create_detector("mobilenetv3-small"),
                          {"threshold": 0.5, "note": "untrained, for timing only"})
    pipeline = DetectPipeline.from_path(model, DetectConfig(every=1, device=str(device), thumbnails=0))
    pipeline.analyse(clip)                          # warm-up: cuDNN autotuning, MTCNN's first shapes
    reset_peak(device)
    sync(device)
    started = time.perf_counter()
    analysis = pipeline.analyse(clip)
    sync(device)
    seconds = time.perf_counter() - started
    record = analysis.record.to_json()
    return {"clip": f"{width}x{height} h264, {frames} frames", "status": record["status"],
            "frames_per_s": round(record["frames_analyzed"] / seconds, 1),
            "stages_ms_per_frame": {k: round(1000 * v / max(1, record["frames_analyzed"]), 2)
                                    for k, v in analysis.timings.items()},
            "peak_memory_mb": peak_memory_mb(device)}


def run(device: torch.device, smoke: bool) -> dict:
    steps, warmup = (2, 1) if smoke else (30, 10)
    out: dict = {"what": __doc__.split("\n\n")[0], "machine": machine_info(), "device": bf16_peak(device)[1],
                 "bf16_peak_tflops": bf16_peak(device)[0], "smoke": smoke, "seconds": {}}
    detectors = {arch: ((64, 2) if smoke else spec) for arch, spec in DETECTORS.items()}
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        out["detector_training"] = {arch: detector_training(arch, device, size, batch, steps, warmup)
                                    for arch, (size, batch) in detectors.items()}
        out["seconds"]["detector_training"] = round(time.perf_counter() - t0, 1)

        t0 = time.perf_counter()
        world = work / "world"
        generate_world(world, WorldConfig(identities=4, videos_per_identity=1, frames=8 if smoke else 24,
                                          size=96 if smoke else 320, seed=5), progress=False)
        out["seconds"]["render_world"] = round(time.perf_counter() - t0, 1)
        t0 = time.perf_counter()
        out["generator_training"] = {family: generator_training(family, device, world, steps, warmup, smoke)
                                     for family in GENERATORS}
        out["seconds"]["generator_training"] = round(time.perf_counter() - t0, 1)

        t0 = time.perf_counter()
        out["detect_every_frame"] = detect_every_frame(device, work, smoke)
        out["seconds"]["detect"] = round(time.perf_counter() - t0, 1)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    parser.add_argument("--smoke", action="store_true", help="toy sizes: checks the code path, figures mean nothing")
    parser.add_argument("--out", type=Path, default=None, help=f"default {RESULTS} (smoke: print only)")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("gpu_check: no CUDA device here; run it on a GPU machine, or --device cpu --smoke", file=sys.stderr)
        return 2
    result = run(torch.device(args.device), args.smoke)
    out = args.out or (None if args.smoke else RESULTS)
    if out is not None:
        atomic_write_json(out, result)
    print(json.dumps({k: result[k] for k in ("device", "seconds")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
