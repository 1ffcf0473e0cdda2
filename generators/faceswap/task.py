"""Training the face-swap autoencoder as a task of the shared loop (forensics.training.Trainer).

Two optimizers: "G" trains the encoder and both decoders on reconstruction (L1, pyramid L1, SSIM, all
weighted toward the face), the mask heads toward the landmark-hull mask, and, from `adv_start_epoch` on,
a small hinge adversarial term; "D" trains the patch discriminator on real crops against the
reconstructions from the start, so it is already a useful critic when the adversarial term switches on
(a GAN loss in the first epoch, while the decoders still draw blobs, only slows them down).

An "epoch" is `steps_per_epoch` batches of random crops: each identity has only a few dozen frames, and
every batch draws fresh warps, so passes over the footage are not a meaningful unit.
"""
from __future__ import annotations

import hashlib
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from forensics.figures import sample_grid
from forensics.synthetic.faceset import FaceSet, load_faceset
from forensics.training import Trainer
from forensics.training import distributed as D
from generators.faceswap.augment import apply_warps, hull_masks, sample_warps
from generators.faceswap.checkpoint import save_generator
from generators.faceswap.config import FAMILY, FaceswapConfig
from generators.faceswap.convert import swap_video
from generators.faceswap.discriminator import PatchDiscriminator, d_hinge_loss, g_hinge_loss, layers_for
from generators.faceswap.losses import dssim, pyramid_l1, soft_bce, weighted_l1
from generators.faceswap.model import FaceswapAutoencoder
from generators.images import to_uint8


def load_pair(config: FaceswapConfig) -> FaceSet:
    """The two identities' aligned crops (FaceSet) from the configured synthetic world."""
    return load_faceset(config.world, size=config.size, margin=config.margin,
                        identities=[config.identity_a, config.identity_b], every=config.every)


class FaceswapTask:
    """The loop protocol for one identity pair (see module docstring). After build(), `generator` and
    `discriminator` are the live modules; export() writes a generator checkpoint from them."""

    def __init__(self, config: FaceswapConfig, faces: FaceSet):
        if faces.size != config.size:
            raise ValueError(f"faceswap: crops are {faces.size}px but the config asks for {config.size}px")
        self.config = config
        self.images: dict[str, torch.Tensor] = {}
        self.masks: dict[str, torch.Tensor] = {}
        self.videos: dict[str, list[Path]] = {}     # each identity's source videos (sample swaps)
        digest = hashlib.sha256()
        for name, identity in (("a", config.identity_a), ("b", config.identity_b)):
            subset = faces.of_identity(identity)
            if len(subset) == 0:
                raise ValueError(f"{config.world}: identity {identity} has no face crops "
                                 f"(identities present: {faces.identities()[:20]})")
            self.videos[name] = [Path(config.world) / faces.videos[v] for v in np.unique(subset.video)]
            digest.update(np.ascontiguousarray(subset.images).tobytes())
            self.images[name] = torch.from_numpy(subset.images).permute(0, 3, 1, 2).float().div_(255.0).contiguous()
            masks = hull_masks(subset.landmarks, config.size, config.mask_hull, config.mask_erode, config.mask_blur)
            self.masks[name] = torch.from_numpy(masks)[:, None].contiguous()
        self.data_sha256 = digest.hexdigest()
        self.generator: FaceswapAutoencoder | None = None
        self.discriminator: PatchDiscriminator | None = None
        self.device = torch.device("cpu")
        self.last_grid: np.ndarray | None = None

    # ---------------------------------------------------------------- loop protocol
    def build(self, device: torch.device) -> dict[str, torch.nn.Module]:
        cfg = self.config
        torch.manual_seed(cfg.seed)
        self.generator = FaceswapAutoencoder(cfg.model_config())
        layers = cfg.disc_layers or layers_for(cfg.size)
        self.discriminator = PatchDiscriminator(channels=cfg.disc_channels, layers=layers)
        self.device = device
        self.images = {k: v.to(device) for k, v in self.images.items()}
        self.masks = {k: v.to(device) for k, v in self.masks.items()}
        if self._channels_last:
            self.generator.to(memory_format=torch.channels_last)
            self.discriminator.to(memory_format=torch.channels_last)
        return {"generator": self.generator, "discriminator": self.discriminator}

    def configure_optimizers(self, modules) -> dict[str, torch.optim.Optimizer]:
        cfg = self.config
        betas = (cfg.beta1, cfg.beta2)
        return {"G": torch.optim.Adam(modules["generator"].parameters(), lr=cfg.lr, betas=betas),
                "D": torch.optim.Adam(modules["discriminator"].parameters(), lr=cfg.lr_d, betas=betas)}

    def train_batches(self, epoch: int, rank: int, world_size: int) -> list[tuple]:
        """steps_per_epoch batches of index picks and warp parameters per identity, drawn from (seed, epoch)
        alone; under torchrun each rank trains on its share of every batch (forensics.training.distributed
        .shard), so batch_size is the global batch and N processes train the weights one process trains."""
        cfg = self.config
        rng = np.random.default_rng([cfg.seed, epoch, 0])
        rows = D.shard(cfg.batch_size, rank, world_size, "faceswap batch_size")
        share = D.shard_weight(cfg.batch_size, rank, world_size)
        warp = cfg.warp_config()
        batches = []
        for _ in range(cfg.steps_per_epoch):
            picks = {k: torch.from_numpy(rng.integers(0, len(v), cfg.batch_size)) for k, v in self.images.items()}
            warps = {k: sample_warps(rng, cfg.batch_size, warp) for k in self.images}
            batches.append(({k: v[rows] for k, v in picks.items()},
                            {k: {part: t[rows] for part, t in w.items()} for k, w in warps.items()}, share))
        return batches

    def training_step(self, batch, ctx) -> dict[str, Any]:
        cfg = self.config
        picks, warps, share = batch       # share: this rank's loss weight (1.0 in one process)
        inputs, targets, masks = {}, {}, {}
        for name in ("a", "b"):
            index = picks[name].to(self.device)
            inputs[name], targets[name], masks[name] = apply_warps(self.images[name][index], self.masks[name][index],
                                                                  warps[name])
        out = ctx.modules["generator"](self._format(inputs["a"]), self._format(inputs["b"]))
        values: dict[str, Any] = {}
        rec = 0.0
        for name in ("a", "b"):
            rgb, mask = out[name][0].float(), out[name][1].float()
            weight = 1.0 + cfg.face_weight * masks[name]
            l1 = weighted_l1(rgb, targets[name], weight)
            term = (cfg.l1_weight * l1 + cfg.pyramid_weight * pyramid_l1(rgb, targets[name], cfg.pyramid_levels, weight)
                    + cfg.ssim_weight * dssim(rgb, targets[name], weight))
            mask_l1 = (mask - masks[name]).abs().mean()
            rec = rec + term + cfg.mask_weight * soft_bce(mask, masks[name])
            values[f"l1_{name}"] = l1.detach()
            values[f"mask_{name}"] = mask_l1.detach()
        fakes = torch.cat([out["a"][0], out["b"][0]])
        reals = self._format(torch.cat([targets["a"], targets["b"]]))
        g_loss = rec
        adv = torch.zeros((), device=self.device)
        if cfg.adv_weight > 0 and ctx.epoch >= cfg.adv_start_epoch:
            # unwrapped D: under DDP, D's wrapper would wait for D gradients this loss never produces
            adv = g_hinge_loss(ctx.raw_modules["discriminator"](fakes))
            g_loss = g_loss + cfg.adv_weight * adv
        ctx.backward(g_loss * share, "G")
        values.update(rec=rec.detach(), adv_g=adv.detach(), loss_g=g_loss.detach())
        if cfg.adv_weight > 0:
            logits = ctx.modules["discriminator"](torch.cat([reals, fakes.detach()]))
            real_logits, fake_logits = logits.float().split(len(reals))
            d_loss = d_hinge_loss(real_logits, fake_logits)
            ctx.backward(d_loss * share, "D")
            values.update(loss_d=d_loss.detach(), d_real=real_logits.mean().detach(),
                          d_fake=fake_logits.mean().detach())
        return values

    def evaluate(self, epoch: int, ctx) -> dict[str, float]:
        """Unwarped reconstruction error of evenly spaced frames, and the sample grid on_epoch_end logs."""
        model = ctx.raw_modules["generator"]
        metrics: dict[str, float] = {}
        picks = {k: self._eval_indices(len(v)) for k, v in self.images.items()}
        recon = {}
        for name in ("a", "b"):
            crops = self.images[name][picks[name]]
            rgb, mask = model.decode(self._format(crops), name)
            recon[name] = rgb.float()
            target_mask = self.masks[name][picks[name]]
            metrics[f"val/l1_{name}"] = float((rgb.float() - crops).abs().mean())
            metrics[f"val/mask_l1_{name}"] = float((mask.float() - target_mask).abs().mean())
        n = min(self.config.preview, *(len(p) for p in picks.values()))
        rows = []
        for target, source in (("b", "a"), ("a", "b")):
            crops = self.images[target][picks[target][:n]]
            swapped, _ = model.decode(self._format(crops), source)
            rows += [crops, swapped.float()]
        self.last_grid = _grid(rows, n)
        return metrics

    def on_epoch_end(self, epoch: int, metrics: dict, run) -> None:
        if run is not None and self.last_grid is not None:
            run.log_image(self.last_grid, f"samples/epoch_{epoch:03d}.png")

    # ---------------------------------------------------------------- export
    def checkpoint_config(self, metrics: dict | None = None) -> dict:
        cfg = self.config
        return {"family": FAMILY, "model": cfg.model_config().to_dict(),
                "identities": {"a": cfg.identity_a, "b": cfg.identity_b},
                "crop": {"size": cfg.size, "margin": cfg.margin, "aligner": "five-point similarity (ArcFace template)"},
                "mask": {"head": "learned", "target": f"68-point hull ({cfg.mask_hull})", "erode": cfg.mask_erode,
                         "blur": cfg.mask_blur},
                "training": {"world": str(cfg.world), "data_sha256": self.data_sha256,
                             "frames": {k: len(v) for k, v in self.images.items()}, "config": cfg.to_dict()},
                "metrics": dict(metrics or {})}

    def export(self, directory: str | Path, metrics: dict | None = None) -> Path:
        """Write the generator checkpoint (generator.safetensors + config.json) that convert.py loads."""
        if self.generator is None:
            raise RuntimeError("faceswap: export() before build(): nothing has been trained")
        return save_generator(directory, {"generator": self.generator}, self.checkpoint_config(metrics))

    # ---------------------------------------------------------------- helpers
    @property
    def _channels_last(self) -> bool:
        return self.config.channels_last and self.device.type == "cuda"

    def _format(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self._channels_last else x

    def _eval_indices(self, count: int) -> torch.Tensor:
        k = min(count, self.config.eval_frames)
        return torch.from_numpy(np.linspace(0, count - 1, k).round().astype(np.int64)).to(self.device)


def _grid(rows: list[torch.Tensor], ncols: int) -> np.ndarray:
    """uint8 grid: target B / B as A / target A / A as B, one row each."""
    images = [to_uint8(t) for row in rows for t in row]
    return sample_grid(images, ncols=ncols, cell=max(64, int(rows[0].shape[-1])))


def make_task(config: FaceswapConfig, faces: FaceSet | None = None) -> FaceswapTask:
    """The registry's task factory: the faces default to the configured world's two identities."""
    return FaceswapTask(config, faces if faces is not None else load_pair(config))


def train_faceswap(config: FaceswapConfig, checkpoint_dir: str | Path, run=None, faces=None, sample_video: bool = True,
                   **train_overrides):
    """Train in the shared loop (resuming from checkpoint_dir/last), then export the generator into
    checkpoint_dir itself; with a run, also log a short swapped video of identity B (the "sample video at
    the end") and its recipe. Returns (FitResult, checkpoint_dir)."""
    task = D.main_first(make_task, config, faces)      # rank 0 fills the crop cache, the others read it
    result = Trainer(task, config.train_config(checkpoint_dir, **train_overrides), run=run).fit()
    last = result.history[-1] if result.history else {}
    metrics = {k: v for k, v in last.items() if k.startswith(("val/", "train/"))}
    path = D.main_only(task.export, checkpoint_dir, metrics)     # rank 0 writes; the others get its path
    if run is not None and sample_video and task.videos["b"]:
        log_sample_video(path, task.videos["b"][0], run, config.device)
    return result, path


def log_sample_video(checkpoint: Path, target_video: Path, run, device: str = "auto") -> dict | None:
    """Swap A onto one video of B and log it with its recipe; a failure here is reported, not raised,
    because the trained checkpoint is already safe on disk."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"swap_a_onto_{Path(target_video).stem}.mp4"
        try:
            recipe = swap_video(checkpoint, target_video, out, source="a", device=device)
        except (ValueError, OSError) as exc:
            warnings.warn(f"faceswap sample video skipped: {exc}")
            return None
        run.log_artifact(out, "samples")
        run.log_dict(recipe, f"samples/{out.stem}.json")
    return recipe
