"""Steps (b) and (e): how well a detector holds up against each generator's fakes on the eval portion.

Per generator: its fakes against the real crops of the same identities and portion (frame level: AUC,
EER, AP; per video too when there are at least two videos of each class), and the evasion rate: the share
of fakes whose calibrated probability is below the detector's own threshold, i.e. that would pass as real.
Self-blended pseudo-fakes of the held-out eval reals are scored as family "sbi": a drop there means the
detector forgot the generic blending cue while chasing the generators.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from forensics.figures import roc_figure, sample_grid
from forensics.harness.fakes import sbi_fakes
from forensics.io import atomic_path
from forensics.metrics import summarize_scores, video_scores
from forensics.synthetic.faceset import FaceSet
from generators.family import FakeBatch

SBI = "sbi"
METRICS = ("auc", "eer", "ap", "evasion_rate")


def score_detector(detector, faces: FaceSet, batches: dict[str, FakeBatch], identities: dict[str, list[int]],
                   held_out: list[int], seed: int, include_sbi: bool = True) -> dict:
    """{"summary": {name: {auc, eer, ap, evasion_rate, video_auc, n_real, n_fake, mean_fake_prob}},
    "scores": {name: {"labels", "probs", "fake_probs"}}} for one detector (a LoadedDetector)."""
    wanted = {name: faces.portion_rows(identities[name], "eval") for name in batches}
    sbi_rows = faces.portion_rows(held_out, "eval")
    if include_sbi:
        wanted[SBI] = sbi_rows
    rows = np.unique(np.concatenate(list(wanted.values())))
    real_logits = dict(zip(rows.tolist(), detector.logits(faces.images[rows])))
    fakes = {name: (batch.images, batch.group) for name, batch in batches.items()}
    if include_sbi:
        fakes[SBI] = (sbi_fakes(faces, sbi_rows, seed), np.array([f"sbi:{g}" for g in faces.video_names(sbi_rows)]))
    summary, scores = {}, {}
    for name, (images, groups) in fakes.items():
        real = np.array([real_logits[r] for r in wanted[name].tolist()])
        fake = detector.logits(images)
        summary[name], scores[name] = summarise(detector, real, fake, faces.video_names(wanted[name]), groups)
    return {"summary": summary, "scores": scores}


def summarise(detector, real_logits: np.ndarray, fake_logits: np.ndarray, real_video: np.ndarray,
              fake_video: np.ndarray) -> tuple[dict, dict]:
    logits = np.concatenate([real_logits, fake_logits])
    labels = np.r_[np.zeros(len(real_logits), np.int64), np.ones(len(fake_logits), np.int64)]
    probs = detector.probability(logits)
    threshold = detector.threshold
    frame = summarize_scores(labels, logits)      # ranking metrics on the model's own scores (threshold-free)
    fake_probs = probs[len(real_logits):]
    out = {"auc": frame["auc"], "eer": frame["eer"], "ap": frame["ap"],
           "evasion_rate": float(np.mean(fake_probs < threshold)) if len(fake_probs) else float("nan"),
           "mean_fake_prob": float(np.mean(fake_probs)) if len(fake_probs) else float("nan"),
           "n_real": int(len(real_logits)), "n_fake": int(len(fake_logits))}
    groups = np.concatenate([real_video, fake_video]).astype(str)
    _, video_labels, video_logits = video_scores(groups, logits, labels)
    if min(int(video_labels.sum()), int((1 - video_labels).sum())) >= 2:
        out["video_auc"] = summarize_scores(video_labels, video_logits)["auc"]
    return out, {"labels": labels, "probs": probs, "fake_probs": fake_probs}


def flat_metrics(summary: dict, suffix: str = "") -> dict[str, float]:
    """{"auc<suffix>/<name>": ...} for MLflow: the four headline metrics (+ video_auc), finite values only."""
    out = {}
    for name, values in summary.items():
        for key in (*METRICS, "video_auc"):
            value = values.get(key)
            if value is not None and np.isfinite(value):
                out[f"{key}{suffix}/{name}"] = float(value)
    return out


def save_scores(path: Path, scores: dict) -> Path:
    arrays = {f"{name}__{key}": np.asarray(value) for name, parts in scores.items() for key, value in parts.items()}
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
    return path


def load_scores(path: Path) -> dict:
    out: dict = {}
    if not Path(path).is_file():
        return out
    with np.load(path, allow_pickle=False) as data:
        for key in data.files:
            name, _, part = key.partition("__")
            out.setdefault(name, {})[part] = data[key]
    return out


def roc_of_round(name: str, scores_by_step: dict[str, dict], round_index: int):
    """One ROC figure per generator: the detector before, after retraining, and after the generator evaded."""
    curves = {label: (scores[name]["labels"], scores[name]["probs"])
              for label, scores in scores_by_step.items() if name in scores}
    return roc_figure(curves, title=f"round {round_index}: {name}") if curves else None


def sample_grid_of_round(faces: FaceSet, before: FakeBatch, after: FakeBatch | None, probs_before=None, probs_after=None,
                         columns: int = 6) -> np.ndarray:
    """Rows: real target crop | fake before the evasion fine-tune | the same fake after it (captions: the
    retrained detector's probability)."""
    picks = np.unique(np.linspace(0, len(before) - 1, min(columns, len(before))).round().astype(int))
    rows = [(faces.images[before.target[picks]], ["real"] * len(picks)),
            (before.images[picks], _captions("before", probs_before, picks))]
    if after is not None:
        rows.append((after.images[picks], _captions("after", probs_after, picks)))
    images = [im for ims, _ in rows for im in ims]
    captions = [c for _, caps in rows for c in caps]
    return sample_grid(images, captions, ncols=len(picks), cell=max(96, faces.size))


def _captions(what: str, probs, picks) -> list[str]:
    if probs is None or len(probs) == 0:
        return [what] * len(picks)
    return [f"{what} p={float(probs[i]):.2f}" for i in picks]
