"""Step (d): each generator learns to get past the frozen detector without losing its own quality.

The family's own training task is reused (its reconstruction losses keep the generator a generator)
with the GAN term off (a generator checkpoint carries no discriminator) plus
    evasion_weight * softplus(detector_logit(fake)).mean(),
i.e. the detector's BCE toward "real", on the same kind of fakes step (a) makes: cross-identity swaps
composited through the learned mask, cross-identity relative-motion reenactment. The detector sees them
exactly as it sees scored fakes (resized to its input size and normalised by detectors.preprocess_tensor);
it is in eval mode, never stepped, and receives no gradients of its own.

Quality guard: the family's own quality metric is measured on the fit portion before and after (face
swap: unwarped reconstruction L1 of both identities; animation: self-reenactment L1 / copy-the-source L1).
A relative worsening beyond `quality_tolerance` halves the evasion weight and redoes the fine-tune from
the round's starting weights; after `max_quality_retries` the previous generator is kept ("reverted").
"""
from __future__ import annotations

import dataclasses
import math
from itertools import islice
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from forensics.harness.fakes import reenact_tensor, swap_tensor
from generators.animation.task import AnimationTask, to_tensor
from generators.faceswap.task import FaceswapTask


def freeze(detector: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    detector = detector.to(device).eval()
    for p in detector.parameters():
        p.requires_grad_(False)
    return detector


def evasion_terms(detector, fakes: torch.Tensor, weight: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(weighted loss, mean logit) of float fakes [B, 3, S, S] in [0, 1] under the frozen detector."""
    logits = detector(detector.preprocess_tensor(fakes)).float()
    return weight * F.softplus(logits).mean(), logits.mean().detach()


class FaceswapEvasionTask(FaceswapTask):
    """FaceswapTask from given weights, adversary off, plus the evasion term on the batch's cross swaps."""

    def __init__(self, config, faces, start_state: dict, detector: torch.nn.Module, evasion_weight: float):
        super().__init__(config, faces)
        self.start_state, self.detector, self.evasion_weight = start_state, detector, float(evasion_weight)

    def build(self, device: torch.device) -> dict[str, torch.nn.Module]:
        modules = super().build(device)
        self.generator.load_state_dict(self.start_state)
        self.generator.to(device)          # the loop moves it too; quality() may run before the loop
        self.detector = freeze(self.detector, device)
        return modules

    def training_step(self, batch, ctx) -> dict:
        values = super().training_step(batch, ctx)      # reconstruction (its own backward into "G")
        picks, _ = batch
        net = ctx.raw_modules["generator"]
        fakes = torch.cat([swap_tensor(net, self._format(self.images[other][picks[other].to(self.device)]), decoder)
                           for decoder, other in (("a", "b"), ("b", "a"))])
        loss, mean_logit = evasion_terms(self.detector, fakes, self.evasion_weight)
        if self.evasion_weight > 0:
            ctx.backward(loss, "G")                     # gradients add up before the window's step
        values.update(evasion=loss.detach(), fake_logit=mean_logit)
        return values

    def evaluate(self, epoch: int, ctx) -> dict:
        return {}      # quality is measured before and after the whole fine-tune, not per epoch

    def quality(self, device: torch.device) -> dict[str, float]:
        """Unwarped reconstruction L1 of both identities (lower is better) with the current weights."""
        from forensics.training import StepContext

        modules = {"generator": self.generator.eval()}
        with torch.no_grad():
            m = FaceswapTask.evaluate(self, 0, StepContext(device=device, modules=modules, raw_modules=modules))
        return {"metric": "reconstruction_l1", "value": (m["val/l1_a"] + m["val/l1_b"]) / 2, **m}

    def export_to(self, directory: Path, meta: dict) -> Path:
        from generators.faceswap.checkpoint import save_generator

        return save_generator(directory, {"generator": self.generator}, {**self.checkpoint_config(), **meta})


class AnimationEvasionTask(AnimationTask):
    """AnimationTask (self-reconstruction) from given weights, adversary off, plus the evasion term on
    cross-identity reenactments drawn from the fit portion."""

    def __init__(self, config, faces, start_states: dict, detector: torch.nn.Module, evasion_weight: float,
                 steps: int, frames_per_pair: int):
        super().__init__(config, faces)
        self.start_states, self.detector, self.evasion_weight = start_states, detector, float(evasion_weight)
        self.steps, self.frames_per_pair = steps, frames_per_pair
        ids = sorted(int(i) for i in np.unique(faces.identity))
        if len(ids) < 2:
            raise ValueError("coevolve: animation evasion needs at least 2 identities (source != driver)")
        self.rows = {i: np.flatnonzero(faces.identity == i) for i in ids}
        self.clips = {i: self._first_clip(faces, rows) for i, rows in self.rows.items()}
        self.modules: dict = {}

    @staticmethod
    def _first_clip(faces, rows: np.ndarray) -> np.ndarray:
        clip = rows[faces.video[rows] == faces.video[rows].min()]
        return clip[np.argsort(faces.frame[clip], kind="stable")]

    def build(self, device: torch.device) -> dict[str, torch.nn.Module]:
        self.modules = super().build(device)
        for name, state in self.start_states.items():
            self.modules[name].load_state_dict(state)
        self.modules = {name: module.to(device) for name, module in self.modules.items()}
        self.detector = freeze(self.detector, device)
        return self.modules

    def train_batches(self, epoch: int, rank: int, world_size: int) -> list:
        pairs = super().train_batches(epoch, rank, world_size)
        rng = np.random.default_rng([self.config.seed, epoch, rank, 0xE7A])
        return list(zip(islice(iter(pairs), self.steps), (self._triples(rng) for _ in range(self.steps))))

    def _triples(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(source, driving, reference) rows: a still of i moved like frame k of a run of j's clip."""
        ids = list(self.rows)
        out = np.zeros((3, self.config.batch_size), np.int64)
        for b in range(self.config.batch_size):
            i, j = rng.choice(ids, size=2, replace=False)
            clip = self.clips[int(j)]
            length = min(self.frames_per_pair, len(clip))
            start = int(rng.integers(0, len(clip) - length + 1))
            out[:, b] = (rng.choice(self.rows[int(i)]), clip[start + int(rng.integers(length))], clip[start])
        return out[0], out[1], out[2]

    def training_step(self, batch, ctx) -> dict:
        pair_batch, (source, driving, initial) = batch
        values = super().training_step(pair_batch, ctx)
        images = [to_tensor(self.train_images[torch.from_numpy(rows)], ctx.device)
                  for rows in (source, driving, initial)]
        fakes = reenact_tensor(ctx.raw_modules["kp_detector"], ctx.raw_modules["generator"], *images)
        loss, mean_logit = evasion_terms(self.detector, fakes, self.evasion_weight)
        if self.evasion_weight > 0:
            ctx.backward(loss, "G")
        values.update(evasion=loss.detach(), fake_logit=mean_logit)
        return values

    def evaluate(self, epoch: int, ctx) -> dict:
        return {}

    def quality(self, device: torch.device) -> dict[str, float]:
        """Self-reenactment L1 relative to copying the source (lower is better), as AnimationTask.evaluate."""
        from forensics.training import StepContext

        modules = {k: m.eval() for k, m in self.modules.items()}
        with torch.no_grad():
            m = AnimationTask.evaluate(self, 0, StepContext(device=device, modules=modules, raw_modules=modules))
        self.last_eval = None
        return {"metric": "self_reenactment_l1_ratio", "value": m["val/l1_ratio"], **m}

    def export_to(self, directory: Path, meta: dict) -> Path:
        from generators.animation import save_animation

        return save_animation(directory, self.modules, self.export_config, meta)


# ---------------------------------------------------------------------- building the tasks

def _faceswap_task(loaded, faces, detector, weight: float, config, seed: int, device: str) -> FaceswapEvasionTask:
    from generators.faceswap import FaceswapConfig

    names = {f.name for f in dataclasses.fields(FaceswapConfig)}
    base = {k: v for k, v in ((loaded.config.get("training") or {}).get("config") or {}).items() if k in names}
    base.update(loaded.model.config.to_dict())
    ids = loaded.meta["identities"]
    base.update(identity_a=int(ids["a"]), identity_b=int(ids["b"]), epochs=1, steps_per_epoch=config.generator_steps,
                batch_size=config.generator_batch, grad_accum=1, adv_weight=0.0, seed=seed, device=device,
                world=str(config.world))
    if config.generator_lr:
        base["lr"] = config.generator_lr
    pair = faces.select(np.isin(faces.identity, [int(ids["a"]), int(ids["b"])]))
    state = {k: v.clone() for k, v in loaded.model.state_dict().items()}
    return FaceswapEvasionTask(FaceswapConfig(**base), pair, state, detector, weight)


def _animation_task(model, faces, detector, weight: float, config, seed: int, device: str) -> AnimationEvasionTask:
    fit = dataclasses.replace(faces, split=np.full(len(faces), "train", "<U5"))
    videos = max(1, len(np.unique(fit.video)))
    overrides = dict(epochs=1, batch_size=config.generator_batch, adversarial_weight=0.0, feature_matching_weight=0.0,
                     train_split="train", eval_split="train", seed=seed, device=device,
                     pairs_per_video=math.ceil(config.generator_steps * config.generator_batch / videos) + 1)
    if config.generator_lr:
        overrides["lr_generator"] = config.generator_lr
    states = {"kp_detector": model.kp_detector.state_dict(), "generator": model.generator.state_dict()}
    states = {n: {k: v.clone() for k, v in s.items()} for n, s in states.items()}
    task = AnimationEvasionTask(dataclasses.replace(model.config, **overrides), fit, states, detector, weight,
                                config.generator_steps, config.frames_per_pair)
    task.export_config = model.config
    return task


def make_evasion_task(family: str, loaded, faces, detector, weight: float, config, seed: int, device: str):
    """faces: the fit portion (the face-swap pair's, or the held-out identities')."""
    if family == "faceswap":
        return _faceswap_task(loaded, faces, detector, weight, config, seed, device)
    return _animation_task(loaded, faces, detector, weight, config, seed, device)


def evade(family: str, start_checkpoint: str | Path, faces, detector_dir: str | Path, config, out_dir: str | Path,
          work_dir: str | Path, seed: int, device: str = "cpu", progress: bool = True, run=None,
          meta: dict | None = None) -> dict:
    """Fine-tune one generator against the frozen detector under the quality guard (module docstring).

    Exports the accepted generator to out_dir; returns a JSON-safe record: "checkpoint" (out_dir, or the
    starting checkpoint when reverted), "quality_guard" (passed | halved | reverted), "evasion_weight"
    (the one kept, 0 when reverted), "quality_before"/"quality_after", and every attempt.
    """
    from detectors import load_detector
    from forensics.device import resolve_device
    from forensics.harness.fakes import load_generator
    from forensics.training import TrainConfig, Trainer

    target = resolve_device(device)
    loaded = load_generator(family, start_checkpoint, device="cpu")
    detector = load_detector(detector_dir, device="cpu").model
    probe = make_evasion_task(family, loaded, faces, detector, 0.0, config, seed, device)
    probe.build(target)
    before = probe.quality(target)
    weight, attempts = float(config.evasion_weight), []
    for attempt in range(int(config.max_quality_retries) + 1):
        task = make_evasion_task(family, loaded, faces, detector, weight, config, seed, device)
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
