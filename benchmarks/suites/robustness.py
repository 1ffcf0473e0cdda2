"""Robustness: one detector's AUC on the same test videos under the degradations uploads go through
(JPEG, H.264 re-encoding at the FaceForensics++ c23/c40 rates, downscaling, blur, noise).

The test set is the test split's real videos plus fake videos made by benchmarks.fakes (face swap and
face animation). Each condition is applied to whole videos (benchmarks.perturb) and every video is scored
by the product's own path, `forensics detect`'s DetectPipeline (decode -> MTCNN -> align -> detector ->
video verdict), so a degradation that makes faces hard to find counts as it would for a user. Every
video's score is appended to the cell log as it finishes: an interrupted run loses at most one video.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from benchmarks.fakes import family_options, suite_fakes
from benchmarks.perturb import parse_condition, perturb_video
from benchmarks.suites import SuiteError, SuiteKind, register_kind
from benchmarks.tables import UNDER_POWERED, format_auc, markdown_table, shortfall_note
from detectors.bundle import load_bundle
from detectors.promote import CHAMPION, MODEL_NAME, alias_of, resolve
from detectors.promote import resolve_detector as resolve_registered
from forensics.data.registry import create_dataset
from forensics.device import resolve_device
from forensics.media import MediaError
from forensics.metrics import summarize_scores
from forensics.pipelines import DetectConfig, DetectPipeline
from generators.registry import get_generator

DEFAULT_DETECTOR = "runs/detector_sbi/model"
CONDITIONS = ["clean", "jpeg90", "jpeg70", "jpeg50", "h264_crf23", "h264_crf40", "downscale0.5", "blur1.5", "noise8"]

DEFAULTS = {
    "detector": None,        # a model dir or bundle; None: runs/detector_sbi/model if present, else the champion
    "generators": {"faceswap": "runs/faceswap", "animation": "runs/animation"},   # family -> checkpoint
    "reals": {"test": 12},   # real videos per split (fakes are made for the same splits)
    "fakes": {},             # family -> its benchmark options (e.g. animation: {test: 12})
    "conditions": list(CONDITIONS),
    "frames": 16,            # frames sampled per video by the detect pipeline
    "carrier_crf": 0,        # H.264 CRF that carries the per-frame conditions (0: x264 lossless mode)
    "keep_videos": True,     # keep the degraded videos under <work>/perturbed for inspection
    "bootstrap": True,
}


def resolve_detector(given: str | None) -> tuple[Path, str]:
    """(model path, where it came from): the one given, else runs/detector_sbi/model, else the champion
    (`make demo` registers one); a SuiteError naming the fix when there is none."""
    if given:
        if alias_of(given) is not None:
            try:
                return Path(resolve_registered(given)), f"the registered {MODEL_NAME}@{alias_of(given)}"
            except ValueError as exc:
                raise SuiteError(str(exc)) from None
        if not Path(given).exists():
            raise SuiteError(f"{given}: no such detector model (train one: forensics train detector --out DIR)")
        return Path(given), "given"
    if (Path(DEFAULT_DETECTOR) / "config.json").is_file():
        return Path(DEFAULT_DETECTOR), "the suite's default"
    champion = resolve(CHAMPION)
    if champion is None:
        raise SuiteError(f"no detector: {DEFAULT_DETECTOR} is absent and no {MODEL_NAME}@{CHAMPION} is "
                         "registered; run make demo, or train one with: forensics train detector (or pass --model)")
    return champion, f"the registered {MODEL_NAME}@{CHAMPION} ({DEFAULT_DETECTOR} does not exist)"


def run(ctx) -> dict:
    p = ctx.params
    try:
        conditions = [parse_condition(c) for c in p["conditions"]]
    except ValueError as exc:
        raise SuiteError(f"conditions: {exc}") from None
    if not conditions or len({c.name for c in conditions}) != len(conditions):
        raise SuiteError("conditions: list each condition once (at least one)")
    model_path, source = resolve_detector(p["detector"])
    chosen = ctx.suite.inputs.get("detector", {})
    ctx.suite.inputs["detector"] = {"path": str(model_path), "from": chosen.get("from", source)
                                    + (f", {source}" if chosen and source != "given" else "")}
    ctx.say(f"  detector  {model_path}  ({ctx.suite.inputs['detector']['from']})")
    try:
        loaded = load_bundle(model_path, device=resolve_device(ctx.device))   # a detector, or a frame + clip bundle
    except ValueError as exc:
        raise SuiteError(str(exc)) from None
    generators = {f: path for f, path in (p["generators"] or {}).items() if path}
    try:
        options = {f: family_options(f, (p["fakes"] or {}).get(f)) for f in generators}
    except ValueError as exc:
        raise SuiteError(str(exc)) from None
    data = suite_fakes(ctx, generators, {**p, "fakes": options})
    rows = [r for r in create_dataset("auto", data.root).rows() if r.split == "test"]
    if not any(r.label == "real" for r in rows) or not any(r.label == "fake" for r in rows):
        raise SuiteError(f"{data.root}: the test set needs real and fake videos (reals.test, generators)")

    fingerprint = {"params": {k: v for k, v in p.items() if k != "keep_videos"}, "world": ctx.suite.world,
                   "detector_sha256": loaded.sha256, "checkpoints": data.checkpoints,
                   "videos": sorted(Path(r.path).name for r in rows)}
    cells = ctx.cells(fingerprint)
    pipeline = DetectPipeline(loaded, DetectConfig(frames=p["frames"], device=ctx.device, thumbnails=0))
    records: dict[str, list[dict]] = {}
    for condition in conditions:
        with ctx.stage(condition.name):
            records[condition.name] = [score_video(ctx, cells, pipeline, condition, row, data.root)
                                       for row in rows]
        ctx.say(f"{condition.name}: done")
    families = sorted({r.method for r in rows if r.label == "fake"})
    summaries = {c.name: summarise(records[c.name], families, loaded.threshold, p["bootstrap"]) for c in conditions}
    results = {"detector": {"path": str(model_path), "name": loaded.name, "sha256": loaded.sha256,
                            "threshold": loaded.threshold, "crop": loaded.crop},
               "conditions": {c.name: {"what": c.describe(), **summaries[c.name]} for c in conditions},
               "families": families, "frames_per_video": p["frames"], "carrier_crf": p["carrier_crf"],
               "under_powered": {"shortfalls": [short.to_dict() for short in data.shortfalls],
                                 "columns": under_powered_columns(data.shortfalls, families)},
               "data": {"root": str(data.root), "videos": data.counts(), "generator_sha256": data.checkpoints,
                        "fakes_made": data.made, "fakes_reused": data.reused},
               "videos": {name: [_without_frames(r) for r in rs] for name, rs in records.items()},
               "cells_reused": cells.reused}
    ctx.notes.extend([
        f"Per-frame conditions are written back with H.264 at CRF {p['carrier_crf']}"
        + (" (x264's lossless mode; only the RGB -> YUV 4:2:0 conversion is lost)" if p["carrier_crf"] == 0 else "")
        + "; h264_crfN re-encodes the source at CRF N (a second-generation encode, like FF++ c23/c40).",
        f"Scores are `forensics detect` verdicts ({p['frames']} sampled frames per video); a video with no face "
        "found gets no verdict and is left out of that condition's AUC (counted under 'no face').",
        f"Detector: {model_path} ({loaded.name}); it never saw these generators' fakes unless it was trained on them.",
    ])
    for family in data.checkpoints:
        ctx.notes.extend(get_generator(family).benchmark_notes(options.get(family, {})))
    ctx.save_figure(auc_figure(results["conditions"], [c.name for c in conditions], families,
                               results["under_powered"]["columns"]), "auc")
    return results


def under_powered_columns(shortfalls, families: list[str]) -> list[str]:
    """The fake families (and "all") whose AUCs rest on fewer test videos than the suite asked for."""
    weak = [f for f in families if any(s.split == "test" and s.what in ("real", f) for s in shortfalls)]
    return (["all"] if any(s.split == "test" for s in shortfalls) else []) + weak


def score_video(ctx, cells, pipeline, condition, row, root: Path) -> dict:
    """One video under one condition: degrade (unless clean), run the detect pipeline, log the cell."""
    name = Path(row.path).name if row.label == "real" else f"{row.method}/{Path(row.path).name}"
    cell = f"{condition.name}|{name}"
    done = cells.done(cell)
    if done is not None:
        return done
    entry = {"video": name, "label": row.label, "method": row.method, "condition": condition.name}
    try:
        path = Path(row.path)
        if condition.kind != "clean":
            target = ctx.work_dir / "perturbed" / condition.name / name
            made = perturb_video(row.path, target, condition, carrier_crf=ctx.params["carrier_crf"])
            entry["bytes"] = made["bytes"]
            path = target
        record = pipeline.analyse(path).record.to_json()
        if condition.kind != "clean" and not ctx.params["keep_videos"]:
            path.unlink(missing_ok=True)
    except (ValueError, OSError, MediaError) as exc:
        entry.update(status="error", error=" ".join(str(exc).split()))
    else:
        entry.update(status=record["status"], error=record["error"], score=record["score"],
                     frame_scores=[round(float(f["score"]), 5) for f in record["frame_scores"]])
    if entry["status"] == "error":
        cells.record(cell, entry, status="error", error=entry["error"])
        ctx.fail(cell, entry["error"])
    else:
        cells.record(cell, entry)
    return entry


def _without_frames(record: dict) -> dict:
    """A video's record for the results file: its frame scores are counted, not listed (they stay in the
    cell log), which keeps the committed JSON readable."""
    out = {k: v for k, v in record.items() if k != "frame_scores"}
    out["frames_scored"] = len(record.get("frame_scores") or [])
    return out


def summarise(records: list[dict], families: list[str], threshold: float, ci: bool) -> dict:
    """Video- and frame-level metrics, all fakes and per family, over the videos that got a verdict."""
    scored = [r for r in records if r.get("status") == "ok" and r.get("score") is not None]
    out = {"videos": len(records), "no_face": sum(r.get("status") == "no_face" for r in records),
           "errors": sum(r.get("status") == "error" for r in records), "by": {}}
    for family in ["all", *families]:
        chosen = [r for r in scored if r["label"] == "real" or family in ("all", r["method"])]
        labels = np.array([int(r["label"] == "fake") for r in chosen])
        video = summarize_scores(labels, np.array([r["score"] for r in chosen], float), threshold=threshold, ci=ci)
        frame_labels = [int(r["label"] == "fake") for r in chosen for _ in r["frame_scores"]]
        groups = [r["video"] for r in chosen for _ in r["frame_scores"]]
        frame = summarize_scores(np.array(frame_labels), np.array([s for r in chosen for s in r["frame_scores"]], float),
                                 threshold=threshold, ci=ci, groups=groups)
        keys = ("auc", "auc_ci", "eer", "ap", "acc", "n_real", "n_fake")
        out["by"][family] = {"video": {k: video[k] for k in keys if k in video},
                             "frame": {k: frame[k] for k in keys if k in frame}}
    return out


def auc_figure(conditions: dict, order: list[str], families: list[str], under_powered: list[str] | None = None):
    """Video-level (solid) and frame-level (dashed) AUC per condition, one colour per fake family; a dagger
    in the legend marks an under-powered family."""
    fig = Figure(figsize=(max(6.5, 1.5 + 0.8 * len(order)), 4.2), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    x = np.arange(len(order))
    for i, family in enumerate(["all", *families]):
        colour = f"C{i}"
        weak = f" {UNDER_POWERED} under-powered" if family in (under_powered or []) else ""
        for level, style in (("video", "-"), ("frame", "--")):
            y = [conditions[c]["by"][family][level].get("auc", np.nan) for c in order]
            ax.plot(x, np.asarray(y, float), style, marker="o" if level == "video" else ".", color=colour,
                    label=f"{family} ({level}){weak}")
    ax.axhline(0.5, color="grey", linestyle=":", linewidth=1)
    ax.set_xticks(x, order, rotation=30, ha="right")
    ax.set_ylim(0.0, 1.02)
    ax.set_ylabel("ROC AUC (0.5 = chance)")
    ax.set_title("AUC per condition (solid: video level, dashed: frame level)")
    ax.legend(fontsize=8, loc="lower left")
    ax.grid(alpha=0.3)
    return fig


def markdown(document: dict) -> str:
    results = document["results"]
    families = results["families"]
    header = ["condition", "what", "video AUC, all fakes [95% CI]", *(f"video AUC, {f}" for f in families),
              "frame AUC, all", "video EER, all", "video AP, all", "acc @ thr", "no face"]
    weak = set(results.get("under_powered", {}).get("columns", []))
    mark = {f: f" {UNDER_POWERED}" if f in weak else "" for f in ["all", *families]}
    table = []
    for name, c in results["conditions"].items():
        all_video = c["by"]["all"]["video"]
        table.append([name, c["what"], format_auc(all_video) + mark["all"],
                      *(format_auc(c["by"][f]["video"], ci=False) + mark[f] for f in families),
                      format_auc(c["by"]["all"]["frame"], ci=False), _num(all_video.get("eer")),
                      _num(all_video.get("ap")), _num(all_video.get("acc")), f"{c['no_face']}/{c['videos']}"])
    counts = results["data"]["videos"].get("test", {})
    detector = results["detector"]
    return "\n".join([
        f"Detector `{detector['path']}` ({detector['name']}, sha256 {detector['sha256'][:12]}, threshold "
        f"{detector['threshold']:.3f}); test videos: " + ", ".join(f"{m} {n}" for m, n in counts.items()) + ".", "",
        markdown_table(header, table)] + ([
        "", shortfall_note(results["under_powered"]["shortfalls"])] if weak else []))


def _num(value) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.3f}"


def metrics(results: dict) -> dict:
    out = {}
    for name, c in results["conditions"].items():
        for family, levels in c["by"].items():
            for level, summary in levels.items():
                value = summary.get("auc")
                if value is not None and np.isfinite(value):
                    out[f"{level}_auc/{name}/{family}"] = float(value)
    return out


KIND = register_kind(SuiteKind("robustness", DEFAULTS, run, markdown, metrics,
                               inputs=("world", "generators", "detector")))
