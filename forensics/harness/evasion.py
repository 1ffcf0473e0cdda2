"""Step (d): each generator learns to get past the frozen detector without losing its own quality.

The family's own reconstruction task (a generator checkpoint carries no discriminator, so the GAN term is
off) plus the detector's verdict on the family's game fakes: generators.evasion.EvasionTask, for any
registered family.

Quality guard: the family's own quality metric (family.quality: a face swap's reconstruction L1, an
animation's self-reenactment L1 against copying the source) is measured on the fit portion before and
after. A relative worsening beyond `quality_tolerance` halves the evasion weight and redoes the fine-tune
from the round's starting weights; after `max_quality_retries` the previous generator is kept ("reverted").
"""
from __future__ import annotations

from pathlib import Path

from detectors.checkpoint import load_detector
from forensics.device import resolve_device
from forensics.synthetic.faceset import FaceSet
from forensics.training import TrainConfig, Trainer
from generators.evasion import EvasionTask
from generators.registry import get_generator


def make_evasion_task(family_name: str, loaded, faces: FaceSet, identities: list[int], detector, weight: float,
                      config, seed: int, device: str) -> EvasionTask:
    """faces: the fit portion of the generator's game identities."""
    family = get_generator(family_name)
    base = family.evasion_base(loaded, faces, config.generator_steps, config.generator_batch, config.generator_lr,
                               seed, device, config.world)
    return EvasionTask(family, base, loaded, faces, identities, detector, weight,
                       fakes_per_step=2 * config.generator_batch, clip_frames=config.frames_per_pair, seed=seed)


def evade(family_name: str, start_checkpoint: str | Path, faces: FaceSet, identities: list[int],
          detector_dir: str | Path, config, out_dir: str | Path, work_dir: str | Path, seed: int,
          device: str = "cpu", progress: bool = True, run=None, meta: dict | None = None) -> dict:
    """Fine-tune one generator against the frozen detector under the quality guard (module docstring).

    Exports the accepted generator to out_dir; returns a JSON-safe record: "checkpoint" (out_dir, or the
    starting checkpoint when reverted), "quality_guard" (passed | halved | reverted), "evasion_weight"
    (the one kept, 0 when reverted), "quality_before"/"quality_after", and every attempt.
    """
    target = resolve_device(device)
    loaded = get_generator(family_name).load(start_checkpoint, device="cpu")
    detector = load_detector(detector_dir, device="cpu").model
    probe = make_evasion_task(family_name, loaded, faces, identities, detector, 0.0, config, seed, device)
    probe.build(target)
    before = probe.quality(target)
    weight, attempts = float(config.evasion_weight), []
    for attempt in range(int(config.max_quality_retries) + 1):
        task = make_evasion_task(family_name, loaded, faces, identities, detector, weight, config, seed, device)
        train = TrainConfig(epochs=1, device=device, seed=seed, patience=None, monitor=None, amp=True,
                            checkpoint_dir=str(Path(work_dir) / f"attempt_{attempt}"), progress=progress, log_every=5)
        attempt_run = run.prefixed(f"attempt_{attempt}") if run is not None and hasattr(run, "prefixed") else run
        fit = Trainer(task, train, run=attempt_run).fit()
        after = task.quality(target)
        change = (after["value"] - before["value"]) / max(abs(before["value"]), 1e-8)
        last = fit.history[-1] if fit.history else {}
        attempts.append({"evasion_weight": weight, "quality_after": after["value"], "quality_change": change,
                         "fake_logit": last.get("train/fake_logit"), "reconstruction": last.get("train/rec")})
        if change <= config.quality_tolerance:
            record = {"quality_guard": "passed" if attempt == 0 else "halved", "evasion_weight": weight,
                      "quality_after": after["value"]}
            info = {"coevolve": {**(meta or {}), "evasion_weight": weight, "quality": after,
                                 "started_from": str(start_checkpoint)}}
            record["checkpoint"] = str(task.export_to(Path(out_dir), info))
            break
        weight /= 2.0
    else:
        record = {"quality_guard": "reverted", "evasion_weight": 0.0, "quality_after": before["value"],
                  "checkpoint": str(start_checkpoint)}
    return {**record, "quality_metric": before["metric"], "quality_before": before["value"], "attempts": attempts}
