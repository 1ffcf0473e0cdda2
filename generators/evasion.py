"""A generator learning to get past a frozen detector, for any family: the family's own reconstruction
task (what keeps a generator a generator) plus a hinge on the detector's verdict about the family's fakes:

    evasion_weight * relu(detector_logit(fake) - threshold_logit).mean()

A fake the detector already calls real (its logit below the detector's decision threshold) contributes
nothing, so nothing pushes a fake past the threshold: the move is bounded to "just get called real",
not "be as unlike a fake as possible" (that direction makes fakes separable on the other side, an
adversarial perturbation rather than a better generator). The fakes are selected the way the game selects
them (family.select_fakes on the fit portion) and drawn differentiably (family.draw_tensor); the detector
sees them as it sees crops (resized to its input and normalised by its preprocess_tensor), is in eval mode,
never stepped, and receives no gradients of its own. It is handed in as a module: generators never import
detectors.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from forensics.synthetic.faceset import FaceSet
from generators.family import GeneratorFamily
from generators.images import to_tensor


def freeze(detector: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    detector = detector.to(device).eval()
    for p in detector.parameters():
        p.requires_grad_(False)
    return detector


def hinge(logits: torch.Tensor, threshold_logit: float) -> torch.Tensor:
    """Per fake: how far its logit is above the threshold (zero, and no gradient, once it is below)."""
    return F.relu(logits.float() - float(threshold_logit))


def evasion_terms(detector, fakes: torch.Tensor, weight: float, threshold_logit: float
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(weighted hinge loss, mean logit, share of fakes called real) of float fakes [B, 3, S, S] in [0, 1]."""
    logits = detector(detector.preprocess_tensor(fakes)).float()
    passed = (logits.detach() < threshold_logit).float().mean()
    return weight * hinge(logits, threshold_logit).mean(), logits.mean().detach(), passed


class EvasionTask:
    """TrainTask: family.evasion_base(...) plus the hinge on the family's own game fakes.

    faces: the crops the generator may train on; identities: whose faces its fakes show; threshold_logit: the
    detector's decision threshold in logit space. Each step draws `fakes_per_step` fakes with
    select_fakes(rng) from (seed, epoch, rank).
    """

    def __init__(self, family: GeneratorFamily, base, loaded, faces: FaceSet, identities: list[int],
                 detector: torch.nn.Module, threshold_logit: float, weight: float, fakes_per_step: int,
                 clip_frames: int, seed: int):
        self.family, self.base, self.loaded, self.faces = family, base, loaded, faces
        self.identities, self.detector, self.weight = list(identities), detector, float(weight)
        self.threshold_logit = float(threshold_logit)
        self.fakes_per_step, self.clip_frames, self.seed = fakes_per_step, clip_frames, seed
        self.device = torch.device("cpu")

    def build(self, device: torch.device) -> dict[str, torch.nn.Module]:
        self.device = device
        modules = self.base.build(device)
        self.detector = freeze(self.detector, device)
        return modules

    def configure_optimizers(self, modules):
        return self.base.configure_optimizers(modules)

    def train_batches(self, epoch: int, rank: int, world_size: int) -> list:
        rng = np.random.default_rng([self.seed, epoch, rank, 0xE7A])
        batches = list(self.base.train_batches(epoch, rank, world_size))
        return [(batch, self.family.select_fakes("evasion", self.loaded, self.faces, self.identities, "fit",
                                                 self.fakes_per_step, self.clip_frames, rng)) for batch in batches]

    def training_step(self, batch, ctx) -> dict:
        base_batch, selection = batch
        values = self.base.training_step(base_batch, ctx)     # reconstruction (its own backward into "G")
        images = lambda rows: to_tensor(self.faces.images[np.asarray(rows)], ctx.device)  # noqa: E731
        fakes = self.family.draw_tensor(ctx.raw_modules, selection, images)
        loss, mean_logit, passed = evasion_terms(self.detector, fakes, self.weight, self.threshold_logit)
        if self.weight > 0 and loss.requires_grad:
            ctx.backward(loss, "G")                             # gradients add up before the window's step
        values.update(evasion=loss.detach(), fake_logit=mean_logit, called_real=passed)
        return values

    def evaluate(self, epoch: int, ctx) -> dict:
        return {}      # quality is measured before and after the whole fine-tune, not per epoch

    def quality(self, device: torch.device) -> dict:
        return self.family.quality(self.base, device)

    def export_to(self, directory: Path, meta: dict) -> Path:
        return self.family.export(self.base, self.loaded, Path(directory), meta)
