"""Training the face-animation family in the shared loop: self-reconstruction across frames of one video.

A pair (source frame, driving frame) of the same video shows the same person in two poses/expressions, so
the driving frame is the exact target of "the source moving like the driver": the model sees the source
image and both frames' keypoints, and must rebuild the driving frame. Identity never changes inside a pair,
which is why this trains without any labels; at inference the same machinery transfers another video's
motion (animate.py).

Two optimizers: "G" trains keypoint detector + generator (dense motion inside) on reconstruction +
equivariance (+ a small adversarial and feature-matching term once `adversarial_start_epoch` is reached:
an untrained generator's output is easy to reject, and an early adversary only adds noise); "D" trains
the multi-scale patch discriminator with the hinge loss.
"""
from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from forensics.figures import sample_grid
from forensics.media import iter_frames
from forensics.synthetic.faceset import FaceSet, load_faceset
from forensics.training import Trainer
from forensics.training import distributed as D
from generators.images import to_tensor
from generators.losses import d_hinge_loss, g_hinge_loss

from .animate import animate, transfer
from .checkpoint import save_animation
from .config import AnimationConfig
from .discriminator import feature_matching_loss
from .losses import RandomFeatures, RandomTransform, equivariance_loss, reconstruction_loss
from .model import build_modules


def split_keypoints(kp: dict, parts: int) -> list[dict]:
    """One keypoint dict over a concatenated batch -> `parts` dicts (heatmaps dropped: nothing needs them)."""
    keys = [k for k in ("value", "jacobian") if k in kp]
    chunks = {k: kp[k].chunk(parts) for k in keys}
    return [{k: chunks[k][i] for k in keys} for i in range(parts)]


class PairBatches:
    """The epoch's batches of (source, driving, equivariance warp, loss weight); a sized iterable so the loop can
    show progress.

    Every global batch (pairs, flips and warps alike) is drawn from the seed and epoch alone; under torchrun
    each rank takes its share of it (forensics.training.distributed.shard) with a loss weight that makes the
    ranks' averaged gradient the global batch's, so N processes train the weights one process trains. A last
    batch too small to give every rank a row is left out.
    """

    def __init__(self, images: torch.Tensor, pairs: np.ndarray, flips: np.ndarray, batch_size: int,
                 warp: dict, seed: int, rank: int = 0, world_size: int = 1):
        self.images, self.pairs, self.flips, self.batch_size = images, pairs, flips, batch_size
        self.warp, self.seed, self.rank, self.world_size = warp, seed, rank, world_size
        D.shard(batch_size, rank, world_size, "animation batch_size")     # refuses a batch too small to split

    def __len__(self) -> int:
        full, tail = divmod(len(self.pairs), self.batch_size)
        return full + (1 if tail >= self.world_size else 0)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, RandomTransform, float]]:
        for index in range(len(self)):
            start = index * self.batch_size
            size = min(self.batch_size, len(self.pairs) - start)
            transform = RandomTransform(size, **self.warp,
                                        generator=torch.Generator().manual_seed(self.seed * 1_000_003 + index))
            rows = D.shard(size, self.rank, self.world_size)
            pairs = torch.from_numpy(self.pairs[start:start + size][rows])
            flips = torch.from_numpy(self.flips[start:start + size][rows])
            source, driving = self.images[pairs[:, 0]], self.images[pairs[:, 1]]
            source[flips], driving[flips] = source[flips].flip(2), driving[flips].flip(2)
            yield source, driving, transform.rows(rows), D.shard_weight(size, self.rank, self.world_size)


class AnimationTask:
    """TrainTask for the animation family (see module docstring). `faces` is a FaceSet (forensics.synthetic)."""

    def __init__(self, config: AnimationConfig, faces: FaceSet):
        if faces.size != config.size:
            raise ValueError(f"animation training: face crops are {faces.size}px but the config says {config.size}px")
        self.config = config
        train = faces.of_split(config.train_split)
        self.videos = [np.flatnonzero(train.video == v) for v in train.video_ids()]
        self.videos = [v[np.argsort(train.frame[v], kind="stable")] for v in self.videos if len(v) >= 2]
        if not self.videos:
            raise ValueError(f"animation training: no video of split {config.train_split!r} has two frames")
        self.train_images = torch.from_numpy(np.ascontiguousarray(train.images))
        evaluation = faces.of_split(config.eval_split)
        self.eval_faces = evaluation if len(evaluation) else train
        self.features: RandomFeatures | None = None
        self.eval_videos = [faces.videos[v] for v in self.eval_faces.video_ids()]
        self.last_eval: dict | None = None
        self.last_grid: np.ndarray | None = None

    # ---------------------------------------------------------------- loop protocol
    def build(self, device: torch.device) -> dict[str, torch.nn.Module]:
        self.features = RandomFeatures(tuple(self.config.feature_widths), seed=self.config.seed + 1234).to(device)
        return build_modules(self.config)

    def configure_optimizers(self, modules) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        g_params = list(modules["kp_detector"].parameters()) + list(modules["generator"].parameters())
        return {"G": torch.optim.Adam(g_params, lr=c.lr_generator, betas=tuple(c.betas)),
                "D": torch.optim.Adam(modules["discriminator"].parameters(), lr=c.lr_discriminator,
                                      betas=tuple(c.betas))}

    def train_batches(self, epoch: int, rank: int, world_size: int) -> PairBatches:
        c = self.config
        rng = np.random.default_rng([c.seed, epoch, 0xA11])
        pairs = np.concatenate([distinct_pairs(frames, c.pairs_per_video, rng) for frames in self.videos])
        pairs = pairs[rng.permutation(len(pairs))]
        flips = (rng.random(len(pairs)) < 0.5) if c.flip else np.zeros(len(pairs), bool)
        warp = {"sigma_affine": c.sigma_affine, "sigma_tps": c.sigma_tps, "points_tps": c.points_tps}
        return PairBatches(self.train_images, pairs, flips, c.batch_size, warp, seed=c.seed * 10_007 + epoch,
                           rank=rank, world_size=world_size)

    def training_step(self, batch, ctx) -> dict[str, float]:
        c = self.config
        source, driving = (to_tensor(x, ctx.device) for x in batch[:2])
        transform, share = batch[2].rows(slice(None), ctx.device), batch[3]
        transformed = transform.transform_frame(driving)
        # One forward over the three batches: DDP allows one forward per backward, and it is faster.
        kp_source, kp_driving, kp_transformed = split_keypoints(
            ctx.modules["kp_detector"](torch.cat([source, driving, transformed])), 3)
        out = ctx.modules["generator"](source, kp_driving=kp_driving, kp_source=kp_source)
        prediction = out["prediction"]
        rec, logs = reconstruction_loss(prediction, driving, tuple(c.loss_scales), c.pixel_weight, c.feature_weight,
                                        self.features)
        equi, equi_logs = equivariance_loss(kp_driving, kp_transformed, transform, c.equivariance_value,
                                            c.equivariance_jacobian if c.estimate_jacobian else 0.0)
        loss_g = rec + equi
        logs.update(equi_logs, rec=rec.detach(), l1=(prediction.detach() - driving).abs().mean())
        adversarial = ctx.epoch >= c.adversarial_start_epoch and (c.adversarial_weight or c.feature_matching_weight)
        if adversarial:
            # The discriminator as the G loss sees it: unwrapped, since optimizer "G" does not train it.
            judged = ctx.raw_modules["discriminator"](torch.cat([driving, prediction]))
            adv, fm = adversarial_terms(judged)
            loss_g = loss_g + c.adversarial_weight * adv + c.feature_matching_weight * fm
            logs.update(g_adv=adv.detach(), feature_matching=fm.detach())
        ctx.backward(loss_g * share, "G")
        logs["loss_g"] = loss_g.detach()
        if adversarial:
            judged = ctx.modules["discriminator"](torch.cat([driving, prediction.detach()]))
            loss_d = sum(d_hinge_loss(*logits.chunk(2)) for _, logits in judged.values())
            ctx.backward(loss_d * share, "D")
            logs["loss_d"] = loss_d.detach()
        return logs

    def evaluate(self, epoch: int, ctx) -> dict[str, float]:
        """Self-reenactment on held-out videos: each video's first frame animated by its later frames."""
        sources, drivings = self.evaluation_pairs()
        result = transfer(ctx.raw_modules["kp_detector"], ctx.raw_modules["generator"], sources, drivings,
                          device=ctx.device, relative=False)
        generated = result["generated"].astype(np.float32) / 255.0
        target, copied = drivings.astype(np.float32) / 255.0, sources.astype(np.float32) / 255.0
        l1 = float(np.abs(generated - target).mean())
        copy_l1 = float(np.abs(copied - target).mean())
        half_side = (self.config.size - 1) / 2  # [-1, 1] -> crop pixels
        kp_gap = np.linalg.norm(result["kp_generated"] - result["kp_driving"], axis=-1).mean() * half_side
        self.last_eval = {"sources": sources, "drivings": drivings, "generated": result["generated"]}
        return {"val/l1": l1, "val/l1_copy_source": copy_l1, "val/l1_ratio": l1 / max(copy_l1, 1e-8),
                "val/kp_distance_px": float(kp_gap)}

    def on_epoch_end(self, epoch: int, metrics: dict, run) -> None:
        if self.last_eval is None:
            return
        self.last_grid = sample_rows(self.last_eval, self.config.grid_columns)
        if run is not None:
            run.log_image(self.last_grid, f"samples/epoch_{epoch:03d}.png")

    # ---------------------------------------------------------------- helpers
    def evaluation_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """Fixed (source, driving) uint8 crops: first frame of each evaluation video with evenly spaced later ones."""
        faces, c = self.eval_faces, self.config
        sources, drivings = [], []
        for video in faces.video_ids()[:c.eval_videos]:
            clip = faces.of_video(video)
            if len(clip) < 2:
                continue
            picks = np.unique(np.linspace(1, len(clip) - 1, min(c.eval_frames, len(clip) - 1)).round().astype(int))
            sources += [clip.images[0]] * len(picks)
            drivings += list(clip.images[picks])
        return np.stack(sources), np.stack(drivings)


def distinct_pairs(frames: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` (source, driving) index pairs of two different frames of one video."""
    first = rng.integers(0, len(frames), count)
    offset = rng.integers(1, len(frames), count)          # never 0: the two frames always differ
    return np.stack([frames[first], frames[(first + offset) % len(frames)]], axis=1)


def adversarial_terms(judged: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Generator hinge loss and feature matching over the discriminator's scales; batches are [real; fake]."""
    adv, fm = [], []
    for features, logits in judged.values():
        adv.append(g_hinge_loss(logits.chunk(2)[1]))
        fm.append(feature_matching_loss([f.chunk(2)[0] for f in features], [f.chunk(2)[1] for f in features]))
    return torch.stack(adv).sum(), torch.stack(fm).sum()


def sample_rows(samples: dict, columns: int) -> np.ndarray:
    """Grid with rows source / driving / generated, one column per evaluation video (first pairs taken
    at a stride so that columns show different people)."""
    n = len(samples["sources"])
    picks = np.unique(np.linspace(0, n - 1, min(columns, n)).round().astype(int))
    images = [*samples["sources"][picks], *samples["drivings"][picks], *samples["generated"][picks]]
    captions = ["source"] * len(picks) + ["driving"] * len(picks) + ["generated"] * len(picks)
    return sample_grid(images, captions, ncols=len(picks), cell=max(128, samples["sources"].shape[1]))


def make_task(config: AnimationConfig, faces: FaceSet | None = None) -> AnimationTask:
    """The registry's task factory: faces default to every crop of the configured world at the model size."""
    if faces is None:
        faces = load_faceset(config.world, size=config.size, margin=config.margin)
    return AnimationTask(config, faces)


def train_animation(config: AnimationConfig, checkpoint_dir: str | Path, run=None, faces=None,
                    sample_video: bool = True, **train_overrides):
    """Train in the shared loop (resuming from checkpoint_dir/last), export the generator checkpoint into
    checkpoint_dir itself, and with a run log a short animated video made by `animate` from world files
    (the real MTCNN path) with its recipe. Returns (FitResult, checkpoint_dir)."""
    task = D.main_first(make_task, config, faces)      # rank 0 fills the crop cache, the others read it
    trainer = Trainer(task, config.train_config(checkpoint_dir, **train_overrides), run=run)
    result = trainer.fit()
    last = result.history[-1] if result.history else {}
    meta = {"crop": {"size": config.size, "margin": config.margin, "aligner": "five-point similarity"},
            "training": {"world": str(config.world), "frames": int(len(task.train_images)),
                         "epochs": result.epochs_run},
            "metrics": {k: v for k, v in last.items() if k.startswith(("val/", "train/"))}}
    path = D.main_only(save_animation, checkpoint_dir, trainer.modules, config, meta)   # rank 0 writes
    if run is not None and sample_video:
        log_sample_video(path, Path(config.world), task.eval_videos, run, config.device)
    return result, path


def log_sample_video(checkpoint: Path, world: Path, videos: list[str], run, device: str = "auto") -> dict | None:
    """Animate the first frame of one held-out video by another held-out video; a failure is reported, not
    raised, because the trained checkpoint is already safe on disk."""
    if not videos:
        return None
    source_video, driving_video = world / videos[0], world / videos[-1]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"animate_{source_video.stem}_by_{driving_video.stem}.mp4"
        try:
            with iter_frames(source_video) as frames:
                source = next(iter(frames)).image
            recipe = animate(checkpoint, source, driving_video, out, device=device)
        except (ValueError, OSError, StopIteration) as exc:
            warnings.warn(f"animation sample video skipped: {exc}")
            return None
        run.log_artifact(out, "samples")
        run.log_dict({**recipe, "source": str(source_video)}, f"samples/{out.stem}.json")
    return recipe
