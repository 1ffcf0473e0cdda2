"""Detection speed as a suite: benchmarks.detect_speed (a 720p H.264 talking head through `forensics detect`,
every frame and the default sampling, per-stage timings, median of quiet runs) with the suite's sizes.

The benchmark itself lives in benchmarks/detect_speed.py (also runnable on its own); this kind only runs
it through the suite runner so its figures land in the `benchmarks` experiment and results/ like the rest.
"""
from __future__ import annotations

from benchmarks import detect_speed
from benchmarks.suites import SuiteError, SuiteKind, register_kind
from benchmarks.tables import markdown_table

DEFAULTS = {
    "seconds": 10.0,     # clip length at 25 fps
    "repeats": 3,        # runs per setting; the median quiet run is reported
    "max_wait": 90.0,    # seconds to wait for other jobs to leave the CPU before each run
}


def run(ctx) -> dict:
    p = ctx.params
    if not (p["seconds"] > 0 and int(p["repeats"]) >= 1 and p["max_wait"] >= 0):
        raise SuiteError("speed: seconds must be > 0, repeats >= 1, max_wait >= 0")
    cells = ctx.cells({"params": p})
    done = cells.done("detect_speed")
    if done is not None:
        return done
    if ctx.device not in ("auto", "cpu"):
        ctx.notes.append(f"--device {ctx.device} ignored: detect_speed measures the CPU path")
    with ctx.stage("detect_speed"):
        results = detect_speed.run(float(p["seconds"]), ctx.work_dir / "detect_speed.json", int(p["repeats"]),
                                   float(p["max_wait"]))
    results = {k: v for k, v in results.items() if k not in ("machine", "command")}
    cells.record("detect_speed", results)
    return results


def markdown(document: dict) -> str:
    results = document["results"]
    clip = results["clip"]
    stages = sorted({s for e in results["every_frame"].values() for s in e["stages_ms_per_frame"]})
    rows = [[name, e["frames_per_s"], e["best_frames_per_s"], e["mtcnn_frames"], e["frames"],
             *(e["stages_ms_per_frame"].get(s, 0.0) for s in stages), e["median_of"]]
            for name, e in results["every_frame"].items()]
    sampled_rows = [[name, e["seconds"], e["best_seconds"], e["cli_cold_wall_s"], e["face_crops"],
                     e["stages_s"].get("classify", 0.0)] for name, e in results["sampled"].items()]
    summary = results["summary"]
    return "\n".join([
        f"Clip: {clip['width']}x{clip['height']} {clip['codec']}, {clip['frames']} frames at {clip['fps']:g} fps; "
        f"detector {results['detector']['name']} (untrained weights: same cost), "
        f"{results['detector']['torch_threads']} torch threads.", "",
        "`forensics detect --every 1` (every frame), frames/s and ms per frame by stage:", "",
        markdown_table(["setting", "frames/s (median)", "best", "MTCNN frames", "frames",
                        *(f"{s} ms" for s in stages), "median of"], rows), "",
        "Default sampling (--frames 32: 4 clips of 8 consecutive frames), time to a verdict:", "",
        markdown_table(["setting", "in process s (median)", "best s", "fresh command s", "face crops",
                        "classify s"], sampled_rows), "",
        f"Frame + clip detector over frame detector alone: x{summary.get('fused_over_frame_only')} in process.", "",
        f"Goal {summary['goal_fps']} frames/s every frame: {'met' if summary['goal_met'] else 'not met'} "
        f"({summary['every_frame_fps']} frames/s; dominant stage {summary['dominant_stage']})."])


def metrics(results: dict) -> dict:
    summary = results.get("summary", {})
    keys = ("every_frame_fps", "every_frame_fps_best", "verdict_s_frames_32", "verdict_cli_cold_s_frames_32",
            "verdict_s_frames_32_fused", "verdict_cli_cold_s_frames_32_fused", "fused_over_frame_only")
    return {k: float(summary[k]) for k in keys if isinstance(summary.get(k), (int, float))}


KIND = register_kind(SuiteKind("speed", DEFAULTS, run, markdown, metrics, inputs=()))
