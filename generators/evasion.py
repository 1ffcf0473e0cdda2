"""A generator learning to get past a frozen detector, for any family: the family's own reconstruction
task (what keeps a generator a generator) plus a hinge on the detector's verdict about the family's fakes:

    evasion_weight * relu(detector_logit(fake) - threshold_logit).mean()

A fake the detector already calls real (its logit below the detector's decision threshold) contributes
nothing, so nothing pushes a fake past the threshold: the move is bounded to "just get called real",
not "be as unlike a fake as possible" (that direction makes fakes separable on the other side, an
adversarial perturbation rather than a better generator). The fakes are selected the way the game selects
them (family.select_fakes on the fit portion) and drawn differentiably (family.draw_tensor); the detector
sees them as it sees crops (resized to its input and normalised by its preprocess_tensor), is in eval mode,
never stepped, and receives no gradients of its own. A clip detector sees each fake stretched to a run of its
clip length (FakeBatch.as_runs: consecutive frames, the same choices), so the hinge is on how the fakes move. It is handed in as a module: generators never import
detectors.

ProductSurrogate puts those fakes where `forensics detect` finds them: a fake video's face is drawn at the
generator's size and blended into a sharp frame, so the detector's crop shows an upsampled face inside sharp
surroundings with a feathered seam. Fakes drawn at the generator's size and merely upsampled are blurry
everywhere, which a detector trained on product-path fakes calls real; a hinge on them is zero and the
generator's move does nothing. The surrogate upsamples the drawn fake to the detector's crop size and
feather-blends its face hull into the real crop of the same frame at that size. What it leaves out (the
Reinhard colour match, H.264) the round measures as the surrogate gap.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from forensics.synthetic.faceset import FaceSet
from generators.blending.masks import face_polygon, fill_polygon
from generators.compositing import feather_mask
from generators.family import FakeBatch, GeneratorFamily
from generators.images import to_tensor, to_uint8

BLEND_BLUR = 0.05     # the product path's feather (compositing.rewrite_video's default), a fraction of the crop


def freeze(detector: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    detector = detector.to(device).eval()
    for p in detector.parameters():
        p.requires_grad_(False)
    return detector


def hinge(logits: torch.Tensor, threshold_logit: float) -> torch.Tensor:
    """Per fake: how far its logit is above the threshold (zero, and no gradient, once it is below)."""
    return F.relu(logits.float() - float(threshold_logit))


def clip_length(detector) -> int | None:
    """T for a clip detector (it judges T consecutive frames at once), None for a frame detector."""
    return int(detector.config.clip_len) if getattr(detector, "kind", "frame") == "clip" else None


def evasion_terms(detector, fakes: torch.Tensor, weight: float, threshold_logit: float
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(weighted hinge loss, mean logit, share of fakes called real) of float fakes [B, 3, S, S] in [0, 1]. A
    clip detector sees them as B / T clips of T consecutive frames (the rows come run after run: FakeBatch.as_runs)
    and the hinge is on its clip logits."""
    length = clip_length(detector)
    if length is not None:
        fakes = fakes.unflatten(0, (fakes.shape[0] // length, length))
    logits = detector(detector.preprocess_tensor(fakes)).float()
    passed = (logits.detach() < threshold_logit).float().mean()
    return weight * hinge(logits, threshold_logit).mean(), logits.mean().detach(), passed


class ProductSurrogate:
    """The game's crop-level fakes as the product path's crops show them (see the module docstring).

    faces: the generator-size crops the fakes are drawn from (their rows are what a FakeBatch names);
    context: crops of the same frames at the detector's crop size and the same margin (matched by video and
    frame). Each fake's surroundings are its source still's if it has one, else its target's (FakeBatch.scenes).
    """

    def __init__(self, faces: FaceSet, context: FaceSet, hull_scale: float = 1.0, blur: float = BLEND_BLUR):
        if abs(faces.margin - context.margin) > 1e-6:
            raise ValueError(f"surrogate: context crops have margin {context.margin}, the fakes {faces.margin}")
        where = {(context.videos[v], int(f)): i for i, (v, f) in enumerate(zip(context.video, context.frame))}
        keys = [(faces.videos[v], int(f)) for v, f in zip(faces.video, faces.frame)]
        missing = [k for k in keys if k not in where]
        if missing:
            raise ValueError(f"surrogate: {len(missing)} frame(s) have no context crop, e.g. {missing[0]}")
        self.faces, self.context, self.hull_scale, self.blur = faces, context, float(hull_scale), float(blur)
        self.context_row = np.array([where[k] for k in keys], np.int64)
        self.size = int(context.size)
        self._alphas: dict[int, np.ndarray] = {}     # a row's mask is drawn once, not at every evasion step

    def alpha(self, rows: np.ndarray) -> np.ndarray:
        """float [B, S, S]: the feathered face hull of each faces row, in context pixels."""
        scale = self.size / self.faces.size
        for r in set(map(int, rows)) - set(self._alphas):
            self._alphas[r] = feather_mask(fill_polygon((self.size, self.size), face_polygon(
                self.faces.landmarks[r] * scale, "face", self.hull_scale)), 0.0, self.blur)
        return np.stack([self._alphas[int(r)] for r in rows])

    def __call__(self, fakes: torch.Tensor, batch: FakeBatch) -> torch.Tensor:
        """float fakes [B, 3, s, s] at the generator's size -> [B, 3, S, S] in their sharp surroundings."""
        rows = np.where(batch.source >= 0, batch.source, batch.target)
        context = to_tensor(self.context.images[self.context_row[rows]], fakes.device)
        alpha = torch.from_numpy(self.alpha(rows))[:, None].to(fakes.device)
        up = F.interpolate(fakes.float(), size=(self.size, self.size), mode="bilinear", align_corners=False)
        return alpha * up.clamp(0, 1) + (1.0 - alpha) * context

    def draw(self, batch: FakeBatch) -> np.ndarray:
        """uint8 [B, S, S, 3]: a drawn batch's fakes (FakeBatch.images, generator size) the same way."""
        with torch.no_grad():
            return to_uint8(self(to_tensor(batch.images, "cpu"), batch))


class EvasionTask:
    """TrainTask: family.evasion_base(...) plus the hinge on the family's own game fakes.

    faces: the crops the generator may train on; identities: whose faces its fakes show; threshold_logit: the
    detector's decision threshold in logit space. Each step draws `fakes_per_step` fakes with
    select_fakes(rng) from (seed, epoch, rank); with a `surrogate` (built on the same `faces`) the detector sees
    them as the product path's crops.
    """

    def __init__(self, family: GeneratorFamily, base, loaded, faces: FaceSet, identities: list[int],
                 detector: torch.nn.Module, threshold_logit: float, weight: float, fakes_per_step: int,
                 clip_frames: int, seed: int, surrogate: ProductSurrogate | None = None):
        self.surrogate = surrogate
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
        length = clip_length(self.detector)

        def fakes():
            if length is None:
                return self.family.select_fakes("evasion", self.loaded, self.faces, self.identities, "fit",
                                                self.fakes_per_step, self.clip_frames, rng)
            return self.family.select_fakes("evasion", self.loaded, self.faces, self.identities, "fit",
                                            max(1, self.fakes_per_step // length), self.clip_frames,
                                            rng).as_runs(self.faces, length)

        return [(batch, fakes()) for batch in batches]

    def training_step(self, batch, ctx) -> dict:
        base_batch, selection = batch
        values = self.base.training_step(base_batch, ctx)     # reconstruction (its own backward into "G")
        images = lambda rows: to_tensor(self.faces.images[np.asarray(rows)], ctx.device)  # noqa: E731
        fakes = self.family.draw_tensor(ctx.raw_modules, selection, images)
        if self.surrogate is not None:
            fakes = self.surrogate(fakes, selection)
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
