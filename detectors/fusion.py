"""Making a bundle: score validation videos with each member, fit the fused verdict on them, save.

The validation videos are a clip cache's val split (identities neither member trained on): every real
video, and from each of them pseudo-fake videos of two families, because the bundle must say "fake" for
either: a self-blended video (every frame blended, what the frame detector learned) and a temporal
pseudo-fake video (clips changed over time, one kind per video, cycling through the kinds the clip
detector trained on; its held-out kinds stay unseen). Each member scores each video as `forensics detect`
does: the robust aggregate of its crop logits (frame detector) or clip logits (clip detector).
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from detectors.aggregate import aggregate_scores
from detectors.bundle import FRAME, FUSION_RULES, TEMPORAL, Bundle, save_bundle
from detectors.checkpoint import LoadedDetector, load_detector
from detectors.clips import ClipRef, ClipSet
from detectors.predict import predict_clip_logits, predict_logits
from forensics.data.cache import FaceCache
from forensics.data.crops import FAKE, REAL
from forensics.metrics import apply_platt, calibrate_threshold, fit_platt, roc_auc
from generators.blending.temporal import TEMPORAL_KINDS, apply_recipe, draw_recipe


@dataclass
class VideoCase:
    """One validation video as both members see it: its crops in time order, cut into clips."""
    name: str
    label: int
    kind: str                     # "real", "sbi" or a temporal pseudo-fake kind
    clips: list[np.ndarray] = field(default_factory=list)    # uint8 [T, H, W, 3] each

    @property
    def crops(self) -> np.ndarray:
        return np.concatenate(self.clips)


def validation_cases(cache: FaceCache, clip_len: int, kinds: Sequence[str], seed: int = 0,
                     split: str = "val") -> list[VideoCase]:
    """Real videos of `split` and, from each, a self-blended and a temporal pseudo-fake video (module docstring)."""
    clips = ClipSet(cache, split, clip_len)
    by_video: dict[str, list[ClipRef]] = {}
    for ref in clips.reals:
        by_video.setdefault(ref.video, []).append(ref)
    cases = []
    for number, (video, refs) in enumerate(sorted(by_video.items())):
        rng = np.random.default_rng([seed, int(hashlib.sha256(video.encode()).hexdigest()[:8], 16)])
        kind = kinds[number % len(kinds)]
        real = VideoCase(video, REAL, "real", [clips.clip(r) for r in refs])
        blended = VideoCase(f"{video}#sbi", FAKE, "sbi")
        temporal = VideoCase(f"{video}#{kind}", FAKE, kind)
        for ref, clip in zip(refs, real.clips):
            blended.clips.append(clips.self_blended(ref, rng))
            temporal.clips.append(apply_recipe(clip, clips.landmarks(ref), draw_recipe(kind, len(clip), rng)))
        cases += [real, blended, temporal]
    return cases


def member_video_logits(loaded: LoadedDetector, cases: Sequence[VideoCase], device, aggregate: str = "robust"
                        ) -> np.ndarray:
    """One logit per video: the robust aggregate of the member's crop (or clip) logits."""
    out = []
    for case in cases:
        if getattr(loaded.model, "kind", "frame") == "clip":
            logits, _ = predict_clip_logits(loaded.model, case.clips, device)
        else:
            logits = predict_logits(loaded.model, case.crops, device)
        out.append(aggregate_scores(logits, method=aggregate))
    return np.asarray(out, np.float64)


def fused_logits(members: Mapping[str, LoadedDetector], video_logits: Mapping[str, np.ndarray],
                 rule: str) -> np.ndarray:
    """The fused logit of every video under `rule` (before the fusion's own Platt scale)."""
    bundle = Bundle(dict(members), {"a": 1.0, "b": 0.0, "threshold": 0.5, "rule": rule}, "fitting", "", {})
    rows = len(next(iter(video_logits.values())))
    return np.array([bundle.fuse({role: float(video_logits[role][i]) for role in members}) for i in range(rows)])


def fit_fusion(members: Mapping[str, LoadedDetector], video_logits: Mapping[str, np.ndarray],
               labels: np.ndarray) -> dict[str, Any]:
    """The fusion rule with the higher validation AUC (ties: mean), then its Platt scale and EER threshold
    over the validation videos (one row per video)."""
    fused = {rule: fused_logits(members, video_logits, rule) for rule in FUSION_RULES}
    auc = {rule: float(roc_auc(labels, z)) for rule, z in fused.items()}
    rule = max(FUSION_RULES, key=lambda r: (auc[r], r == "mean"))
    platt = fit_platt(labels, fused[rule])
    if not platt["a"] > 0:
        raise ValueError(f"fusion refused: Platt slope {platt['a']:.4g} <= 0 on the validation videos")
    threshold = calibrate_threshold(labels, apply_platt(platt, fused[rule]), method="eer")
    return {**platt, "threshold": float(threshold), "rule": rule, "validation_auc_by_rule": auc}


def make_bundle(frame_dir: str | Path, temporal_dir: str | Path, cache: FaceCache, out: str | Path,
                seed: int = 0, device: str = "cpu") -> dict:
    """Fit the fusion of a frame and a clip detector on the cache's validation videos and save the bundle.
    Returns what was measured: per-member and fused validation AUC, the fusion, the case counts."""
    started = time.perf_counter()
    members = {FRAME: load_detector(frame_dir, device=device), TEMPORAL: load_detector(temporal_dir, device=device)}
    for role, loaded in members.items():
        if (loaded.crop_spec.size, loaded.crop_spec.margin) != (cache.config.crop_size, cache.config.margin):
            raise ValueError(f"{loaded.path}: the {role} detector was trained on {loaded.crop_spec.size}-px crops "
                             f"(margin {loaded.crop_spec.margin}), the cache holds {cache.config.crop_size}-px "
                             f"(margin {cache.config.margin})")
    trained = members[TEMPORAL].meta.get("trained") or {}
    kinds = list(trained.get("kinds") or TEMPORAL_KINDS)
    clip_len = int(members[TEMPORAL].model.config.clip_len)
    cases = validation_cases(cache, clip_len, kinds, seed)
    labels = np.array([c.label for c in cases])
    if len(set(labels.tolist())) < 2:
        raise ValueError(f"{cache.root}: no validation video with a clip of {clip_len} consecutive faces")
    logits = {role: member_video_logits(loaded, cases, loaded.device) for role, loaded in members.items()}
    fusion = fit_fusion(members, logits, labels)
    validation = {"videos": {"real": int((labels == REAL).sum()), "sbi": sum(c.kind == "sbi" for c in cases),
                             "temporal": sum(c.kind not in ("real", "sbi") for c in cases)},
                  "kinds": kinds, "seed": seed, "cache": str(cache.root)}
    save_bundle(out, {FRAME: frame_dir, TEMPORAL: temporal_dir}, {**fusion, "validation": validation},
                meta={"name": f"{members[FRAME].name}+{members[TEMPORAL].name}",
                      "trained_on": {role: _trained_on(m) for role, m in members.items()}})
    fused = fused_logits(members, logits, fusion["rule"])
    return {"bundle": str(out), "fusion": fusion, "validation": validation,
            "auc": {**{role: _auc(labels, z, cases) for role, z in logits.items()}, "fused": _auc(labels, fused, cases)},
            "seconds": round(time.perf_counter() - started, 1)}


def _auc(labels: np.ndarray, scores: np.ndarray, cases: Sequence[VideoCase]) -> dict:
    """AUC of reals against all fakes, and against each fake kind alone."""
    out = {"all": float(roc_auc(labels, scores))}
    for kind in sorted({c.kind for c in cases} - {"real"}):
        keep = np.array([c.kind in ("real", kind) for c in cases])
        out[kind] = float(roc_auc(labels[keep], scores[keep]))
    return out


def _trained_on(loaded: LoadedDetector) -> dict:
    trained = loaded.meta.get("trained") or {}
    return {"data_hash": loaded.meta.get("data_hash"), "train_videos": trained.get("train_videos"),
            "kinds": trained.get("kinds"), "held_out_kinds": trained.get("held_out_kinds"),
            "synthetic_only": loaded.meta.get("synthetic_only")}
