"""A generator learning to get past a frozen detector, for any family: the family's own reconstruction
task (what keeps a generator a generator) plus the detector's verdict on the family's game fakes.

    evasion_weight * softplus(detector_logit(fake)).mean()

is the detector's BCE toward "real", on fakes selected the way the game selects them (family.select_fakes
on the fit portion) and drawn differentiably (family.draw_tensor). The detector sees them exactly as it sees
scored fakes (resized to its input and normalised by its preprocess_tensor); it is in eval mode, never
stepped, and receives no gradients of its own. A detector is handed in as a module: generators never
import detectors.
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


def evasion_terms(detector, fakes: torch.Tensor, weight: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(weighted loss, mean logit) of float fakes [B, 3, S, S] in [0, 1] under the frozen detector."""
    logits = detector(detector.preprocess_tensor(fakes)).float()
    return weight * F.softplus(logits).mean(), logits.mean().detach()


class EvasionTask:
    """TrainTask: family.evasion_base(...) plus the evasion term on the family's own game fakes.

    faces: the fit portion the generator may train on; identities: whose faces its fakes show (the game's).
    Each step draws `fakes_per_step` fakes with select_fakes(rng) from (seed, epoch, rank).
    """

    def __init__(self, family: GeneratorFamily, base, loaded, faces: FaceSet, identities: list[int],
                 detector: torch.nn.Module, weight: float, fakes_per_step: int, clip_frames: int, seed: int):
        self.family, self.base, self.loaded, self.faces = family, base, loaded, faces
        self.identities, self.detector, self.weight = list(identities), detector, float(weight)
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
        loss, mean_logit = evasion_terms(self.detector, fakes, self.weight)
        if self.weight > 0:
            ctx.backward(loss, "G")                             # gradients add up before the window's step
        values.update(evasion=loss.detach(), fake_logit=mean_logit)
        return values

    def evaluate(self, epoch: int, ctx) -> dict:
        return {}      # quality is measured before and after the whole fine-tune, not per epoch

    def quality(self, device: torch.device) -> dict:
        return self.family.quality(self.base, device)

    def export_to(self, directory: Path, meta: dict) -> Path:
        return self.family.export(self.base, self.loaded, Path(directory), meta)
