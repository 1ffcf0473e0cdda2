"""Cross-generator generalisation: train a detector on each fake family (and on self-blended pseudo-fakes
only), test it on every family. The matrix's off-diagonal cells are the question deepfake detection
lives by: does a detector trained on one manipulation catch another it never saw?

Data: benchmarks.fakes makes whole fake videos of the synthetic world on each family's product path and
lists them with real videos in a manifest; the face-crop cache reads it like any dataset. Any registered
generator family can be a row and a column: name its checkpoint under `generators:`. Rows (trained on): each family's train fakes + the train reals (sbi: train reals and
their self-blended copies). Columns (tested on): the test reals against one family's test fakes (sbi:
against self-blended copies of the test reals). AUC at frame and video level, with bootstrap CIs.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from benchmarks.fakes import family_options, suite_fakes
from benchmarks.suites import SuiteError, SuiteKind, register_kind
from benchmarks.tables import UNDER_POWERED, format_auc, markdown_table, shortfall_note
from detectors.batches import evaluation_samples
from detectors.clips import ClipSet
from detectors.checkpoint import load_detector
from detectors.evaluate import score_report
from detectors.predict import predict_logits
from detectors.registry import detector_kind
from detectors.task import DetectorTrainConfig
from detectors.train import train_detector
from forensics.data.cache import CacheConfig, FaceCache
from forensics.data.crops import CropSet, Sample
from forensics.data.registry import create_dataset
from forensics.device import resolve_device
from forensics.io import atomic_write_json
from forensics.tracking import start_run
from generators.registry import get_generator

SBI = "sbi"                               # the self-blended pseudo-fakes: a row and a column like a family
LEVELS = ("video", "frame")

DEFAULTS = {
    "generators": {"faceswap": "runs/faceswap", "animation": "runs/animation"},   # family -> checkpoint
    "reals": {"train": 16, "val": 6, "test": 12},             # real videos per split
    "fakes": {},                         # family -> its benchmark options (e.g. animation: {train: 16, ...})
    "preset": "cpu-small",               # DetectorTrainConfig preset
    "epochs": None,                      # None: the preset's
    "detector_config": {},               # any other DetectorTrainConfig key
    "train_on": ["faceswap", "animation", SBI],
    "test_on": ["faceswap", "animation", SBI],
    "balance_fakes": True,               # repeat a family's few train fakes to match the real crops
    "bootstrap": True,                   # 95% CIs (videos resampled whole)
    "seed": 0,
}


class FamilyCache(FaceCache):
    """The cache as one training row sees it: the reals plus one family's fakes (no fakes for sbi).

    With `balance`, the train split lists each fake video several times so that fake crops about match
    real crops: the training batches pair every real crop with one dataset fake while they last, and a
    family with four fake videos would otherwise leave most batches without a single fake.
    """

    def __init__(self, base: FaceCache, family: str | None, balance: bool = True):
        super().__init__(base.root, base.config)
        self.family, self.balance = family, balance

    def entries(self, split=None, label=None, status="ok"):
        chosen = [e for e in super().entries(split, label, status) if e.label != "fake" or e.method == self.family]
        if not (self.balance and split == "train"):
            return chosen
        reals = [e for e in chosen if e.label != "fake"]
        fakes = [e for e in chosen if e.label == "fake"]
        real_crops, fake_crops = sum(len(e.faces) for e in reals), sum(len(e.faces) for e in fakes)
        repeat = max(1, int(round(real_crops / fake_crops))) if fake_crops else 1
        return reals + fakes * repeat


def run(ctx) -> dict:
    p = ctx.params
    named = sorted({f for f, path in (p["generators"] or {}).items() if path})
    for key in ("train_on", "test_on"):
        bad = [f for f in p[key] if f != SBI and f not in named]
        if bad or not p[key]:
            raise SuiteError(f"{key}: {bad or 'empty'}; rows and columns are {SBI} and the families under "
                             f"generators ({', '.join(named) or 'none'})")
    needed = {f for f in p["train_on"] + p["test_on"] if f != SBI}
    generators = {f: path for f, path in (p["generators"] or {}).items() if f in needed}
    try:
        options = {f: family_options(f, (p["fakes"] or {}).get(f)) for f in generators}
    except ValueError as exc:
        raise SuiteError(str(exc)) from None
    try:
        config = DetectorTrainConfig.from_preset(p["preset"], epochs=p["epochs"], seed=p["seed"], device=ctx.device,
                                                 **(p["detector_config"] or {}))
    except (TypeError, ValueError, OSError) as exc:
        raise SuiteError(f"detector settings: {' '.join(str(exc).split())}") from None

    data = suite_fakes(ctx, generators, {**p, "fakes": options})
    with ctx.stage("preprocess"):
        rows = create_dataset("auto", data.root).rows()
        clips = config.clip_len if detector_kind(config.detector) == "clip" else None
        cache = FaceCache(data.root / ("face_cache_clips" if clips else "face_cache"),
                          CacheConfig(frames=config.frames_per_video, crop_size=config.crop_size,
                                      margin=config.margin, device=ctx.device, clip_len=clips))
        report = cache.build(rows, progress=ctx.progress)
    for path, reason in report.errors:
        ctx.fail(f"preprocess {Path(path).name}", reason)

    fingerprint = {"params": p, "world": ctx.suite.world, "checkpoints": data.checkpoints,
                   "detector": config.to_dict(), "videos": sorted(Path(r.path).name for r in rows)}
    cells = ctx.cells(fingerprint)
    with ctx.stage("test set"):
        test = TestSet(cache, p["test_on"], seed=config.seed + 2, clip_len=clips)
    matrix_rows: dict[str, dict] = {}
    for family in p["train_on"]:
        cell = f"train={family}"
        done = cells.done(cell)
        if done is not None:
            ctx.say(f"{cell}: finished earlier, reused")
            matrix_rows[family] = done
            continue
        try:
            with ctx.stage(f"train {family}"):
                model_dir, training = train_row(ctx, cache, family, config, cells.fingerprint)
            with ctx.stage(f"score {family}"):
                scores = test.score(model_dir, config, ctx.device, ci=p["bootstrap"])
        except (ValueError, RuntimeError, OSError) as exc:
            cells.record(cell, None, status="error", error=str(exc))
            ctx.fail(cell, str(exc))
            continue
        matrix_rows[family] = {"training": training, "test": scores}
        cells.record(cell, matrix_rows[family])
        ctx.say(f"{cell}: video AUC " + ", ".join(f"{k} {v['video']['auc']:.3f}" for k, v in scores.items()))

    results = {"train_on": p["train_on"], "test_on": p["test_on"], "rows": matrix_rows,
               "under_powered": {"shortfalls": [short.to_dict() for short in data.shortfalls],
                                 "cells": under_powered_cells(data.shortfalls, p["train_on"], p["test_on"])},
               "matrix": {level: {t: {c: _auc(matrix_rows, t, c, level) for c in p["test_on"]}
                                  for t in p["train_on"]} for level in LEVELS},
               "data": {"root": str(data.root), "videos": data.counts(), "test_crops": test.counts(),
                        "fakes_made": data.made, "fakes_reused": data.reused, "generator_sha256": data.checkpoints,
                        "cache": {"processed": report.processed, "skipped": report.skipped,
                                  "no_face": report.no_face}},
               "detector": config.to_dict(), "cells_reused": cells.reused}
    ctx.notes.extend(notes(data, matrix_rows, p, options))
    if matrix_rows:
        ctx.save_figure(heatmap_figure(results["matrix"], p["train_on"], p["test_on"],
                                       results["under_powered"]["cells"]), "heatmap")
    return results


def under_powered_cells(shortfalls, train_on: list[str], test_on: list[str]) -> list[list[str]]:
    """[row, column] cells resting on a split that got fewer videos than asked for: a row trains and validates
    on the reals and its family's fakes (sbi: the reals alone), a column tests on the reals and its family's."""
    def short(splits: tuple[str, ...], family: str) -> bool:
        return any(s.split in splits and s.what in ("real", family) for s in shortfalls)
    return [[t, c] for t in train_on for c in test_on if short(("train", "val"), t) or short(("test",), c)]


def train_row(ctx, cache: FaceCache, family: str, config, fingerprint: str) -> tuple[Path, dict]:
    """Train one row's detector (resuming an interrupted one of the same fingerprint); (model dir, summary)."""
    view = FamilyCache(cache, None if family == SBI else family, balance=ctx.params["balance_fakes"])
    val_has_family = family == SBI or any(e.label == "fake" for e in view.entries(split="val"))
    # Without the family's fakes in validation the loop would stop early on how well it spots self-blended
    # fakes, a different question: such rows train their full epochs.
    config = dataclasses.replace(config, sbi=family == SBI,
                                 patience=config.patience if val_has_family else None)
    out_dir = ctx.work_dir / "detectors" / family
    marker = out_dir / "fingerprint.json"
    resume = marker.is_file() and json.loads(marker.read_text()).get("fingerprint") == fingerprint
    atomic_write_json(marker, {"fingerprint": fingerprint})
    ctx.say(f"training the {family} row ({'resuming' if resume else 'from scratch'}) -> {out_dir}")
    params = {**{k: v for k, v in config.to_dict().items() if k != "extra"}, "trained_on": family}
    with start_run("benchmarks", run_name=f"{ctx.suite.name}/train-{family}", params=params,
                   tags={"kind": "benchmark-row", "suite": ctx.suite.name}, parent=ctx.run) as run:
        result = train_detector(config, view, out_dir, run=run, resume=resume, register_as=None,
                                progress=ctx.progress, keep_refused=True)
    train = [e for e in view.entries(split="train")]
    summary = {"best_epoch": result.best_epoch, "epochs_run": result.epochs_run,
               "stopped_early": result.stopped_early, "model_dir": str(result.model_dir),
               "train_videos": {"real": len({e.source for e in train if e.label != "fake"}),
                                "fake": len({e.source for e in train if e.label == "fake"})},
               "validation_fakes": family if val_has_family else "sbi (no validation fakes of this family)",
               "validation_video_auc": (result.validation or {}).get("video", {}).get("auc"),
               "calibration_refused": result.calibration_refused}
    return Path(result.model_dir), summary


class TestSet:
    """Every test crop once (reals and each family's fakes) plus self-blended copies of the real crops; a
    model is run over all of it once and each column is a slice. For a clip detector (clip_len) the samples
    are clips of consecutive crops, and the sbi column is the same self-blends, every frame of a clip blended."""

    def __init__(self, cache: FaceCache, columns: list[str], seed: int, clip_len: int | None = None):
        if clip_len:
            self.samples = clip_samples(cache, columns, seed, clip_len)
        else:
            self.samples = crop_samples(cache, columns, seed)
        methods = np.array([s.method for s in self.samples])
        self.columns = {c: np.flatnonzero((methods == "real") | (methods == c)) for c in columns}

    def counts(self) -> dict:
        methods = [s.method for s in self.samples]
        return {m: methods.count(m) for m in sorted(set(methods))}

    def score(self, model_dir: Path, config, device: str, ci: bool) -> dict:
        target = resolve_device(device)
        model = load_detector(model_dir, device=target).model
        logits = predict_logits(model, [s.image for s in self.samples], target, config.eval_batch_size)
        out = {}
        for column, index in self.columns.items():
            chosen = [self.samples[i] for i in index]
            report = score_report(chosen, logits[index], config.aggregate, ci=ci)
            out[column] = {level: _brief(report[level]) for level in LEVELS}
        return out


def crop_samples(cache: FaceCache, columns: list[str], seed: int) -> list[Sample]:
    crops = CropSet(cache, "test")
    if not crops.reals:
        raise ValueError(f"{cache.root}: no real test crops (is the test split empty?)")
    real_videos = {r.video for r in crops.reals}
    samples = [crops.real_sample(r) for r in crops.refs]
    if SBI in columns:
        reals_only = crops.subset(lambda v: v in real_videos)
        samples += [s for s in evaluation_samples(reals_only, seed=seed, pseudo_fakes=True) if s.method == SBI]
    return samples


def clip_samples(cache: FaceCache, columns: list[str], seed: int, clip_len: int) -> list[Sample]:
    clips = ClipSet(cache, "test", clip_len)
    if not clips.reals:
        raise ValueError(f"{cache.root}: no real test clip of {clip_len} consecutive faces (is the test split empty?)")
    samples = [clips.sample(r) for r in clips.refs]
    if SBI in columns:
        for ref in clips.reals:
            rng = np.random.default_rng([seed, ref.first_frame, len(samples)])
            samples.append(Sample(clips.self_blended(ref, rng), 1, ref.video + "#sbi", ref.first_frame, SBI))
    return samples


def _brief(summary: dict) -> dict:
    keys = ("auc", "auc_ci", "eer", "ap", "tpr@fpr=1%", "n_real", "n_fake")
    return {k: summary[k] for k in keys if k in summary}


def _auc(rows: dict, train: str, test: str, level: str) -> float | None:
    try:
        return rows[train]["test"][test][level]["auc"]
    except KeyError:
        return None


def notes(data, rows: dict, p: dict, options: dict) -> list[str]:
    out = []
    for family in data.checkpoints:
        out += get_generator(family).benchmark_notes(options.get(family, {}))
    if SBI in p["test_on"]:
        out.append("sbi column: self-blended copies of the test reals (made on the crops, not videos).")
    for family, row in rows.items():
        validation = row.get("training", {}).get("validation_fakes", "")
        if validation.startswith("sbi (no"):
            out.append(f"{family} row: no {family} fakes in the validation split; it trained all its epochs and "
                       f"its best epoch and threshold were picked on self-blended validation fakes.")
    for family, row in rows.items():
        refused = row.get("training", {}).get("calibration_refused")
        if refused:
            out.append(f"{family} row: {refused} (AUC is threshold-free; its threshold is not meaningful).")
    if p["balance_fakes"]:
        out.append("A family's train fake videos are repeated to match the real train crops (augmentation "
                   "differs per repeat).")
    return out


def heatmap_figure(matrix: dict, train_on: list[str], test_on: list[str], under_powered: list | None = None):
    """AUC matrices (one panel per level) with the values written in the cells: rows trained on, columns
    tested on; 0.5 (chance) is the neutral colour; under-powered cells are hatched and marked with a dagger."""
    weak = {tuple(cell) for cell in under_powered or []}
    levels = [level for level in LEVELS if level in matrix]
    fig = Figure(figsize=(1.6 + 2.3 * len(levels) * max(1, len(test_on)) / 2.4, 1.2 + 0.75 * len(train_on)),
                 dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(levels), squeeze=False)[0]
    image = None
    for ax, level in zip(axes, levels):
        values = np.array([[np.nan if matrix[level][t][c] is None else matrix[level][t][c] for c in test_on]
                           for t in train_on], dtype=float)
        image = ax.imshow(values, cmap="RdYlGn", vmin=0.0, vmax=1.0)
        for i in range(len(train_on)):
            for j in range(len(test_on)):
                text = "n/a" if np.isnan(values[i, j]) else f"{values[i, j]:.3f}"
                if (train_on[i], test_on[j]) in weak:
                    text += f" {UNDER_POWERED}"
                    ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="//", linewidth=0,
                                           edgecolor="grey"))
                ax.text(j, i, text, ha="center", va="center", fontsize=10)
                if train_on[i] == test_on[j]:      # the diagonal: tested on what it was trained on
                    ax.add_patch(Rectangle((j - 0.46, i - 0.46), 0.92, 0.92, fill=False, linewidth=2, color="black"))
        ax.set_xticks(range(len(test_on)), test_on)
        ax.set_yticks(range(len(train_on)), train_on)
        ax.set_xlabel("tested on")
        ax.set_ylabel("trained on")
        ax.set_title(f"{level}-level AUC")
    fig.colorbar(image, ax=list(axes), shrink=0.8, label="ROC AUC (0.5 = chance)")
    if weak:
        fig.suptitle(f"{UNDER_POWERED} hatched: under-powered (fewer videos than the suite asked for)", fontsize=9)
    return fig


def markdown(document: dict) -> str:
    results = document["results"]
    train_on, test_on, rows = results["train_on"], results["test_on"], results["rows"]
    weak = {tuple(cell) for cell in results.get("under_powered", {}).get("cells", [])}
    parts = []
    for level in LEVELS:
        table = []
        for t in train_on:
            cells = [format_auc(rows.get(t, {}).get("test", {}).get(c, {}).get(level)) for c in test_on]
            cells = [f"**{v}**" if t == c and v != "n/a" else v for v, c in zip(cells, test_on)]
            cells = [f"{v} {UNDER_POWERED}" if (t, c) in weak else v for v, c in zip(cells, test_on)]
            table.append([t, *cells])
        parts += [f"{level.capitalize()}-level ROC AUC [95% bootstrap CI], rows: trained on, columns: tested on "
                  f"(diagonal in bold):", "", markdown_table(["trained on \\ tested on", *test_on], table), ""]
    if weak:
        shortfalls = results["under_powered"]["shortfalls"]
        parts += [shortfall_note(shortfalls), ""]
    counts = results["data"]["videos"]
    methods = sorted({m for split in counts.values() for m in split}, key=lambda m: (m != "real", m))
    parts += ["Videos per split:", "",
              markdown_table(["split", *methods], [[s, *(counts[s].get(m, 0) for m in methods)] for s in counts]),
              "", "Test crops: " + ", ".join(f"{k} {v}" for k, v in results["data"]["test_crops"].items()), ""]
    training = [[t, r["training"]["train_videos"]["real"], r["training"]["train_videos"]["fake"],
                 f"{r['training']['epochs_run']} (best {r['training']['best_epoch']})",
                 r["training"]["validation_fakes"]] for t, r in rows.items()]
    if training:
        detector = results["detector"]
        parts += [f"Detectors: {detector['detector']}, {detector['crop_size']}-px crops, {detector['frames_per_video']} "
                  f"frames per video, batch {detector['batch_size']}, lr {detector['lr']}:", "",
                  markdown_table(["row", "train real videos", "train fake videos", "epochs", "validated on"], training)]
    return "\n".join(parts)


def metrics(results: dict) -> dict:
    out = {}
    for level, matrix in results["matrix"].items():
        for t, row in matrix.items():
            for c, value in row.items():
                if value is not None and np.isfinite(value):
                    out[f"{level}_auc/train_{t}/test_{c}"] = float(value)
    return out


KIND = register_kind(SuiteKind("cross_generator", DEFAULTS, run, markdown, metrics))
