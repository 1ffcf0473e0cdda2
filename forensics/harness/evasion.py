"""The generator's move: learn to get past the champion, within a budget measured against G0.

The family's own reconstruction task (a generator checkpoint carries no discriminator, so the GAN term is
off) plus the hinge at the champion's decision threshold on the family's differentiable fakes
(generators.evasion.EvasionTask): a fake the champion already calls real is left alone. The differentiable
surrogate (generators.evasion.ProductSurrogate) puts each drawn fake into the sharp, detector-size crop of its
frame with a feathered seam, as the product path's crops show it; the game then makes the version's fakes on
the product path, and the round reports how far the surrogate's verdicts were from the product path's.

After each attempt the version is exported and measured (quality.py) against G0; a version over budget is
retried with half the evasion weight, at most `max_quality_retries` times, then refused: the generator stays
as it was and the refusal is recorded with its reason.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from detectors.checkpoint import load_detector
from forensics.device import resolve_device
from forensics.harness.quality import output_quality, over_budget, reconstruction
from forensics.synthetic.faceset import FaceSet
from forensics.training import TrainConfig, Trainer
from generators.evasion import EvasionTask, ProductSurrogate
from generators.family import FakeBatch
from generators.registry import get_generator


def make_evasion_task(family_name: str, loaded, faces: FaceSet, identities: list[int], detector,
                      threshold_logit: float, weight: float, config, seed: int, device: str,
                      surrogate: ProductSurrogate | None = None) -> EvasionTask:
    """faces: the crops the generator may learn from (its identities' train crops); surrogate: built on them."""
    family = get_generator(family_name)
    base = family.evasion_base(loaded, faces, config.generator_steps, config.generator_batch, config.generator_lr,
                               seed, device, config.world)
    return EvasionTask(family, base, loaded, faces, identities, detector, threshold_logit, weight,
                       fakes_per_step=2 * config.generator_batch, clip_frames=config.frames_per_pair, seed=seed,
                       surrogate=surrogate)


def evade(family_name: str, start_checkpoint: str | Path, faces: FaceSet, identities: list[int],
          detector_dir: str | Path, config, out_dir: str | Path, work_dir: str | Path, seed: int, g0: dict,
          probes, selection: FakeBatch, surrogate: ProductSurrogate | None = None, device: str = "cpu",
          progress: bool = True, run=None, meta: dict | None = None) -> dict:
    """One generator's move against the detector in detector_dir (see the module docstring).

    Returns a JSON-safe record: "status" (accepted | refused), "checkpoint" (out_dir, or the starting
    checkpoint when refused), "reason", "evasion_weight" (kept; 0 when refused), "quality" of the kept
    version, "g0" and every attempt.
    """
    family = get_generator(family_name)
    target = resolve_device(device)
    loaded = family.load(start_checkpoint, device="cpu")
    champion = load_detector(detector_dir, device="cpu")
    weight, attempts, reason = float(config.evasion_weight), [], None
    for attempt in range(int(config.max_quality_retries) + 1):
        task = make_evasion_task(family_name, loaded, faces, identities, champion.model, champion.threshold_logit,
                                 weight, config, seed, device, surrogate)
        work = Path(work_dir) / f"attempt_{attempt}"
        train = TrainConfig(epochs=1, device=device, seed=seed, patience=None, monitor=None, amp=True,
                            checkpoint_dir=str(work / "state"), progress=progress, log_every=5)
        attempt_run = run.prefixed(f"attempt_{attempt}") if run is not None and hasattr(run, "prefixed") else run
        fit = Trainer(task, train, run=attempt_run).fit()
        exported = task.export_to(work / "export", {"coevolve": {**(meta or {}), "evasion_weight": weight,
                                                                 "started_from": str(start_checkpoint)}})
        version = family.load(exported, device="cpu")
        quality = {**output_quality(family, version, faces, selection, probes),
                   "reconstruction": task.quality(target)["value"]}
        last = fit.history[-1] if fit.history else {}
        reason = over_budget(quality, g0, config.budget)
        attempts.append({"evasion_weight": weight, "quality": quality, "over_budget": reason,
                         "fake_logit": last.get("train/fake_logit"), "called_real": last.get("train/called_real")})
        if reason is None:
            if Path(out_dir).exists():
                shutil.rmtree(out_dir)
            shutil.copytree(exported, out_dir)
            return {"status": "accepted", "checkpoint": str(out_dir), "reason": None, "evasion_weight": weight,
                    "quality": quality, "g0": g0, "attempts": attempts}
        weight /= 2.0
    return {"status": "refused", "checkpoint": str(start_checkpoint),
            "reason": f"over the quality budget after {len(attempts)} attempt(s): {reason}", "evasion_weight": 0.0,
            "quality": None, "g0": g0, "attempts": attempts}


def g0_quality(family_name: str, checkpoint: str | Path, faces: FaceSet, selection: FakeBatch, probes, config,
               seed: int, device: str) -> dict:
    """The reference every later version of this generator is measured against."""
    family = get_generator(family_name)
    loaded = family.load(checkpoint, device="cpu")
    return {**output_quality(family, loaded, faces, selection, probes),
            "reconstruction": reconstruction(family, loaded, faces, config, seed, resolve_device(device))["value"]}
