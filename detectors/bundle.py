"""A model bundle: the detectors that judge a video together (a frame and a clip detector), and how their
verdicts are fused, in one folder that `forensics detect --model` takes like a single detector.

    BUNDLE/bundle.json      {"format": "forensics-bundle/1", "members": {"frame": "frame", "temporal": "temporal"},
                             "fusion": {"rule", "a", "b", "threshold", "validation": {...}}, "trained_on": {...}}
    BUNDLE/frame/           a detector checkpoint (detectors.checkpoint)
    BUNDLE/temporal/        a clip detector checkpoint

How the members are fused: each member's own Platt scale first puts both on one footing (calibrated logits),
then one of two rules combines them, chosen on the validation videos: "max" (a video is fake if either
detector sees it: right when they catch disjoint manipulations, the frame detector blending seams, the clip
detector inconsistency over time) or "mean" (the evidence of both adds up: right when both see most fakes
and their mistakes differ, where max would add up their false alarms). The fused logit then gets its own
Platt scale and threshold, fitted on the same validation videos (reals against pseudo-fakes of both kinds),
so that the fused probability means what a single detector's does. A track with no clip (too few
consecutive frames, a still image) is judged by the members that could see it.

A plain detector checkpoint is a bundle of one (`Bundle.single`), scored exactly as before. Fitting the
fusion is detectors.fusion's job: this module is what `forensics detect` imports, and stays light.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from detectors.meta import CLIP_KIND, WEIGHTS_FILE, CheckpointInfo, DetectorLoadError, checkpoint_dir, read_config
from detectors.mlmodel import write_mlmodel
from detectors.runtime import AUTO, RUNTIMES, TORCH, choose
from forensics.faces.crops import CropSpec
from forensics.io import atomic_write_json, read_json_object, sha256_file
from forensics.model_lookup import BUNDLE_FILE

BUNDLE_FORMAT = "forensics-bundle/1"
FRAME, TEMPORAL = "frame", "temporal"
ROLES = (FRAME, TEMPORAL)


FUSION_RULES = {"max": max, "mean": lambda values: float(np.mean(values))}


def role_of(loaded: CheckpointInfo) -> str:
    return TEMPORAL if loaded.kind == CLIP_KIND else FRAME


@dataclass
class Bundle:
    """Members by role, and the fusion that turns their track logits into one score."""
    members: dict[str, CheckpointInfo]
    fusion: dict[str, Any] | None          # None: a single detector, scored by its own calibration
    name: str
    sha256: str
    meta: dict
    path: Path | None = None
    runtime: str = TORCH          # detectors.runtime: what scores the crops

    @classmethod
    def single(cls, loaded: CheckpointInfo) -> "Bundle":
        return cls({role_of(loaded): loaded}, None, loaded.name, loaded.sha256, loaded.meta, loaded.path)

    @property
    def frame(self) -> CheckpointInfo | None:
        return self.members.get(FRAME)

    @property
    def temporal(self) -> CheckpointInfo | None:
        return self.members.get(TEMPORAL)

    @property
    def fused(self) -> bool:
        return self.fusion is not None

    @property
    def threshold(self) -> float:
        if self.fusion is None:
            return next(iter(self.members.values())).threshold
        return float(self.fusion["threshold"])

    @property
    def crop_spec(self) -> CropSpec:
        return next(iter(self.members.values())).crop_spec

    @property
    def crop(self) -> dict[str, Any]:
        return next(iter(self.members.values())).crop

    def member_logit(self, role: str, logit: float) -> float:
        """A member's track logit on its own calibrated scale (its Platt logit)."""
        calibration = self.members[role].meta.get("calibration") or {}
        return float(calibration.get("a", 1.0)) * float(logit) + float(calibration.get("b", 0.0))

    def fuse(self, logits: Mapping[str, float | None]) -> float:
        """One track logit from the members' track logits (None: that member could not score the track)."""
        present = {role: z for role, z in logits.items() if z is not None and role in self.members}
        if not present:
            raise ValueError("Bundle.fuse: no member scored this track")
        if self.fusion is None:
            return float(next(iter(present.values())))
        calibrated = [self.member_logit(role, z) for role, z in present.items()]
        return FUSION_RULES[self.fusion.get("rule", "max")](calibrated)

    def probability(self, logits) -> np.ndarray:
        """Calibrated probability of a fused logit (of the single member's logit for a bundle of one)."""
        if self.fusion is None:
            return next(iter(self.members.values())).probability(logits)
        z = float(self.fusion["a"]) * np.asarray(logits, dtype=np.float64) + float(self.fusion["b"])
        return 0.5 * (1.0 + np.tanh(0.5 * z))   # the logistic function without overflow (as CheckpointInfo's)

    def member_probability(self, role: str, logits) -> np.ndarray:
        return self.members[role].probability(logits)


def save_bundle(directory: str | os.PathLike, members: Mapping[str, str | os.PathLike], fusion: dict,
                meta: dict | None = None) -> Path:
    """Copy the member checkpoints into directory/<role>/ and write bundle.json (atomically, last), and an MLmodel
    so the bundle is an MLflow pyfunc model like a single checkpoint (detectors.mlmodel)."""
    directory = Path(directory)
    unknown = sorted(set(members) - set(ROLES))
    if unknown:
        raise ValueError(f"save_bundle: unknown role(s) {unknown} (roles: {', '.join(ROLES)})")
    directory.mkdir(parents=True, exist_ok=True)
    for role, source in members.items():
        target = directory / role
        if Path(source).resolve() != target.resolve():
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(source, target)
    write_mlmodel(directory)
    atomic_write_json(directory / BUNDLE_FILE, {"format": BUNDLE_FORMAT, "members": {r: r for r in members},
                                                "fusion": fusion, **(meta or {})})
    return directory


def is_bundle(path: str | os.PathLike) -> bool:
    return (Path(path) / BUNDLE_FILE).is_file()


def load_bundle(path: str | os.PathLike, device: str = "cpu", runtime: str = TORCH) -> Bundle:
    """A bundle folder, or a single detector checkpoint as a bundle of one, its members loaded by `runtime`
    (detectors.runtime: torch, onnx, or auto to pick); errors are one line. The bundle's `runtime` says which
    ran."""
    path = Path(path)
    if runtime == AUTO:
        runtime = choose(AUTO, device, member_weights(path))
        if runtime != TORCH:
            try:
                return load_bundle(path, device, runtime)
            except DetectorLoadError:     # e.g. a damaged cached export: torch still runs the checkpoint
                runtime = TORCH
    load = RUNTIMES.get(runtime)
    if not is_bundle(path):
        bundle = Bundle.single(load(path, device=device))
        bundle.runtime = runtime
        return bundle
    config = read_json_object(path / BUNDLE_FILE, DetectorLoadError)
    if config.get("format") != BUNDLE_FORMAT:
        raise DetectorLoadError(f"{path / BUNDLE_FILE}: unsupported format {config.get('format')!r} "
                                f"(expected {BUNDLE_FORMAT!r})")
    listed = config.get("members")
    if not isinstance(listed, dict) or not listed or set(listed) - set(ROLES):
        raise DetectorLoadError(f"{path / BUNDLE_FILE}: 'members' must map roles ({', '.join(ROLES)}) to folders")
    fusion = config.get("fusion")
    if len(listed) > 1 and not (isinstance(fusion, dict) and {"a", "b", "threshold"} <= set(fusion)):
        raise DetectorLoadError(f"{path / BUNDLE_FILE}: a bundle of several detectors needs 'fusion' with a, b and "
                                "threshold")
    if isinstance(fusion, dict) and fusion.get("rule", "max") not in FUSION_RULES:
        raise DetectorLoadError(f"{path / BUNDLE_FILE}: unknown fusion rule {fusion.get('rule')!r} "
                                f"(known: {', '.join(FUSION_RULES)})")
    members = {role: load(path / folder, device=device) for role, folder in listed.items()}
    for role, loaded in members.items():
        if role_of(loaded) != role:
            raise DetectorLoadError(f"{path / listed[role]}: a {role_of(loaded)} detector listed as {role!r}")
    specs = {role: loaded.crop_spec for role, loaded in members.items()}
    if len({(s.size, s.margin) for s in specs.values()}) > 1:
        raise DetectorLoadError(f"{path}: the members were trained on different crops "
                                f"({', '.join(f'{r}: {s.size} px, margin {s.margin}' for r, s in specs.items())})")
    digest = hashlib.sha256(json.dumps({"bundle": config, "members": {r: m.sha256 for r, m in members.items()}},
                                       sort_keys=True).encode()).hexdigest()
    name = config.get("name") or "+".join(m.name for m in members.values())
    return Bundle(members, fusion if len(members) > 1 else None, name, digest, config, path, runtime)


def member_weights(path: str | os.PathLike) -> list[str]:
    """The weights' sha256 of each member of the bundle (or single checkpoint) at `path`, as its config.json
    records it; empty when the folder is not readable as one (the loader then says why)."""
    path = Path(path)
    try:
        if is_bundle(path):
            listed = read_json_object(path / BUNDLE_FILE, DetectorLoadError).get("members") or {}
            folders = [path / str(folder) for folder in (listed.values() if isinstance(listed, dict) else [])]
        else:
            folders = [checkpoint_dir(path)]
        return [str(read_config(folder).get("weights_sha256") or sha256_file(folder / WEIGHTS_FILE))
                for folder in folders]
    except (DetectorLoadError, OSError):
        return []
