"""Train both probes on a synthetic world's real crops, once: the shared loop, held-out figures, a cache.

Training data: every crop of the world (load_faceset) minus the held-out ones, plus `extra_scenes` short
clips per identity rendered under new scenes (scenes.py: without them the identity probe learns the
videos' lighting; 27 % cross-video accuracy on data/synth instead of ~98 %). Every identity is trained on:
the identity probe must recognise any identity a generator may use as source.

Held-out data (the report's figures): by default ("video") each identity's last video, where it has two
or more: a scene (light, background, noise) and head trajectory the probes never saw, which is what a fake
of a known identity in another video is. Single-video identities, and holdout="frames", hold out the last
`holdout_fraction` of each video's frames instead (a contiguous block: neighbouring frames are near-duplicates).

Augmentation (both probes, on the device): small random similarity warps (generated faces do not sit
exactly on the template), colour jitter, a directional shading ramp and sensor noise, so that identity
rests on the shape of eyes, nose, mouth, beard and glasses rather than on a video's lighting or on a
swap's colour correction.
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from forensics.io import atomic_write_json
from forensics.synthetic.faceset import load_faceset
from forensics.training import TrainConfig, Trainer

from .identity import IdentityConfig, IdentityNet, IdentityProbe, fit_face_ellipse
from .landmarks import LandmarkConfig, LandmarkNet, LandmarkProbe, pixels_to_normalised
from .quality import heldout_report
from .scenes import render_scenes

REPORT_FILE = "report.json"


@dataclass
class ProbeTrainConfig:
    size: int = 64
    margin: float = 0.25
    every: int = 1                    # frame stride when reading the world
    epochs: int = 20
    steps_per_epoch: int | None = None  # None: one pass over the training crops
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    extra_scenes: int = 24            # extra rendered clips per identity under new scenes (scenes.py); 0: none
    scene_frames: int = 4             # frames per extra clip: scene variety matters more than frame count
    holdout: str = "video"            # video: each identity's last video (if it has 2+); frames: every video's tail
    holdout_fraction: float = 0.25
    augment: bool = True
    max_rotation_deg: float = 8.0
    max_scale: float = 0.06
    max_shift: float = 0.04           # of the crop side
    colour_jitter: float = 0.25
    shading: float = 0.5              # max strength of a random linear light ramp across the crop
    noise: float = 0.03               # max sensor-noise sigma, pixels in [0, 1]
    ellipse_pad: float = 0.1
    inner_size: int | None = None     # pixels the identity CNN sees of the face box; None: 3/4 of size
    seed: int = 0
    device: str = "auto"
    progress: bool = False

    def cache_key(self, world_fingerprint: str) -> str:
        """What decides the probes' weights: the world's content and every training setting but where/how
        loudly it runs."""
        settings = {k: v for k, v in asdict(self).items() if k not in ("device", "progress")}
        return hashlib.sha256(json.dumps([world_fingerprint, settings], sort_keys=True).encode()).hexdigest()[:16]


def world_fingerprint(world: str | Path) -> str:
    manifest = Path(world) / "manifest.csv"
    if not manifest.is_file():
        raise ValueError(f"{world}: not a synthetic world (no manifest.csv); render one with `forensics synth`")
    return hashlib.sha256(manifest.read_bytes()).hexdigest()


def heldout_mask(identity: np.ndarray, video: np.ndarray, frame: np.ndarray, mode: str = "frames",
                 fraction: float = 0.25) -> np.ndarray:
    """True for held-out crops. mode "frames": the last `fraction` of every video's frames (a contiguous
    block: neighbouring frames are near-duplicates); "video": each identity's last video, where it has
    several (a single-video identity falls back to "frames")."""
    if mode not in ("frames", "video"):
        raise ValueError(f"probe holdout must be 'frames' or 'video', got {mode!r}")
    held = np.zeros(len(identity), bool)
    for person in np.unique(identity):
        mine = identity == person
        videos = np.unique(video[mine])
        if mode == "video" and len(videos) >= 2:
            held |= mine & (video == videos[-1])
            continue
        for v in videos:
            rows = np.flatnonzero(mine & (video == v))
            order = rows[np.argsort(frame[rows], kind="stable")]
            count = min(len(order) - 1, max(1, math.ceil(fraction * len(order))))
            held[order[len(order) - count:]] = True
    return held


# ------------------------------------------------------------------------------------ augmentation

def random_similarity(n: int, config: ProbeTrainConfig, generator: torch.Generator,
                      device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(A [n,2,2], b [n,2]): affine_grid's map from output to input normalised coordinates."""
    u = torch.rand(n, 4, generator=generator).to(device) * 2 - 1
    angle = u[:, 0] * math.radians(config.max_rotation_deg)
    scale = 1 + u[:, 1] * config.max_scale
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    matrix = torch.stack([torch.stack([cos, -sin], 1), torch.stack([sin, cos], 1)], 1)
    return matrix, u[:, 2:] * 2 * config.max_shift


def warp(images: torch.Tensor, landmarks: torch.Tensor, matrix: torch.Tensor,
         shift: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Warp images [B,3,S,S] and move their normalised landmarks [B,68,2] with them."""
    theta = torch.cat([matrix, shift[:, :, None]], 2)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    moved = torch.einsum("bij,bkj->bki", torch.linalg.inv(matrix), landmarks - shift[:, None])
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False), moved


def photometric(images: torch.Tensor, config: ProbeTrainConfig, generator: torch.Generator) -> torch.Tensor:
    """Colour jitter, a directional shading ramp (the world's key light moves between videos), noise."""
    n, device = len(images), images.device
    x = images
    if config.colour_jitter > 0:
        u = (torch.rand(n, 6, generator=generator).to(device) * 2 - 1) * config.colour_jitter
        grey = x.mean(1, keepdim=True)
        x = grey + (x - grey) * (1 + u[:, 0, None, None, None])                     # saturation
        x = x * (1 + 0.5 * u[:, 1:4, None, None])                                    # per-channel gain
        mean = x.mean((1, 2, 3), keepdim=True)
        x = mean + (x - mean) * (1 + u[:, 4, None, None, None])                      # contrast
        x = x * (1 + u[:, 5, None, None, None])                                      # brightness
    if config.shading > 0:
        angle = torch.rand(n, generator=generator).to(device) * 2 * math.pi
        strength = torch.rand(n, generator=generator).to(device) * config.shading
        ramp = torch.linspace(-1, 1, x.shape[-1], device=device)
        field = (torch.cos(angle)[:, None, None] * ramp[None, None, :] + torch.sin(angle)[:, None, None]
                 * ramp[None, :, None])
        x = x * (1 + strength[:, None, None] * field)[:, None]
    if config.noise > 0:
        sigma = torch.rand(n, 1, 1, 1, generator=generator).to(device) * config.noise
        x = x + sigma * torch.randn(x.shape, generator=generator).to(device)
    return x.clamp(0, 1)


# ------------------------------------------------------------------------------------ the loop's task

class ProbeTask:
    """Both probes trained side by side on the same augmented batches (one optimizer each)."""

    def __init__(self, config: ProbeTrainConfig, images: np.ndarray, landmarks: np.ndarray, labels: np.ndarray,
                 identities: list[int], held: np.ndarray):
        self.config = config
        self.images = images
        self.landmarks = pixels_to_normalised(landmarks.astype(np.float32), config.size)
        self.labels = labels
        self.identities = identities
        self.train_rows = np.flatnonzero(~held)
        self.held_rows = np.flatnonzero(held)
        self.steps = config.steps_per_epoch or max(1, math.ceil(len(self.train_rows) / config.batch_size))
        unit = (landmarks[self.train_rows] + 0.5) / config.size
        self.ellipse = fit_face_ellipse(unit, config.ellipse_pad)

    def build(self, device: torch.device) -> dict[str, torch.nn.Module]:
        cfg = self.config
        inner = cfg.inner_size or max(16, round(cfg.size * 0.75))
        identity = IdentityNet(IdentityConfig(size=cfg.size, margin=cfg.margin, ellipse=self.ellipse, inner_size=inner,
                                              identities=self.identities))
        landmarks = LandmarkNet(LandmarkConfig(size=cfg.size, margin=cfg.margin))
        landmarks.start_from_mean_shape(self.landmarks[self.train_rows].mean(0))
        return {"identity": identity, "landmarks": landmarks}

    def configure_optimizers(self, modules) -> dict[str, torch.optim.Optimizer]:
        return {name: torch.optim.AdamW(module.parameters(), lr=self.config.lr, weight_decay=self.config.weight_decay)
                for name, module in modules.items()}

    def configure_schedulers(self, optimizers) -> dict:
        total = max(1, self.config.epochs * self.steps)
        warmup = max(1, total // 20)

        def factor(step: int) -> float:  # short warm-up, then cosine to zero
            if step < warmup:
                return (step + 1) / warmup
            return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))
        return {name: torch.optim.lr_scheduler.LambdaLR(opt, factor) for name, opt in optimizers.items()}

    def train_batches(self, epoch: int, rank: int, world_size: int):
        rng = np.random.default_rng([self.config.seed, epoch])
        need = self.steps * world_size * self.config.batch_size
        order = np.concatenate([rng.permutation(self.train_rows) for _ in range(-(-need // len(self.train_rows)))])
        for step in range(self.steps):
            start = (step * world_size + rank) * self.config.batch_size
            rows = np.sort(order[start:start + self.config.batch_size])
            yield (torch.from_numpy(self.images[rows]), torch.from_numpy(self.landmarks[rows]),
                   torch.from_numpy(self.labels[rows]), int(epoch * 1_000_003 + step * world_size + rank))

    def training_step(self, batch, ctx) -> dict[str, float]:
        images, landmarks, labels, seed = batch
        x = images.to(ctx.device).permute(0, 3, 1, 2).float().div_(255.0)
        landmarks, labels = landmarks.to(ctx.device), labels.to(ctx.device)
        if self.config.augment:
            generator = torch.Generator().manual_seed(self.config.seed * 7919 + seed)
            x, landmarks = warp(x, landmarks, *random_similarity(len(x), self.config, generator, ctx.device))
            x = photometric(x, self.config, generator)
        _, logits = ctx.modules["identity"](x)
        id_loss = F.cross_entropy(logits, labels, label_smoothing=0.1)
        ctx.backward(id_loss, "identity")
        lm_loss = normalised_error(ctx.modules["landmarks"](x), landmarks).mean()
        ctx.backward(lm_loss, "landmarks")
        accuracy = (logits.argmax(1) == labels).float().mean()
        return {"id_loss": id_loss.detach(), "id_acc": accuracy, "lm_nme": lm_loss.detach()}

    def evaluate(self, epoch: int, ctx) -> dict[str, float]:
        if len(self.held_rows) == 0:
            return {}
        correct, errors = 0, []
        for start in range(0, len(self.held_rows), 256):
            rows = self.held_rows[start:start + 256]
            x = torch.from_numpy(self.images[rows]).to(ctx.device).permute(0, 3, 1, 2).float().div_(255.0)
            _, logits = ctx.modules["identity"](x)
            correct += int((logits.argmax(1).cpu() == torch.from_numpy(self.labels[rows])).sum())
            errors.append(normalised_error(ctx.modules["landmarks"](x), torch.from_numpy(self.landmarks[rows])
                                           .to(ctx.device)).cpu())
        return {"val/id_acc": correct / len(self.held_rows), "val/lm_nme": float(torch.cat(errors).mean())}


def normalised_error(predicted: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Per face: mean point distance over inter-ocular distance (of the truth), the unit errors are quoted in."""
    iod = (truth[:, 36:42].mean(1) - truth[:, 42:48].mean(1)).norm(dim=1).clamp_min(1e-6)
    return (predicted.float() - truth.float()).norm(dim=2).mean(1) / iod


# ------------------------------------------------------------------------------------ entry points

def train_probes(world_dir: str | Path, out_dir: str | Path, size: int | None = None, epochs: int | None = None,
                 device: str | None = None, config: ProbeTrainConfig | None = None, run=None,
                 retrain: bool = False) -> tuple[IdentityProbe, LandmarkProbe, dict]:
    """Train (or load, when out_dir holds probes for this world and these settings) both probes.

    size/epochs/device override the config's (defaults: 64 px, 20 epochs, auto); `run` (forensics.tracking)
    receives the loop's per-step and per-epoch metrics.

    Returns (identity probe, landmark probe, report); the report (held-out figures, timing, history) is
    also written to out_dir/report.json.
    """
    overrides = {"size": size, "epochs": epochs, "device": device}
    config = replace(config or ProbeTrainConfig(), **{k: v for k, v in overrides.items() if v is not None})
    out_dir = Path(out_dir)
    fingerprint = world_fingerprint(world_dir)
    key = config.cache_key(fingerprint)
    if not retrain and _cached_key(out_dir) == key:
        identity, landmarks = load_probes(out_dir, device)
        return identity, landmarks, json.loads((out_dir / REPORT_FILE).read_text())

    faces = load_faceset(world_dir, size=config.size, margin=config.margin, every=config.every)
    identities = faces.identities()
    if len(identities) < 2:
        raise ValueError(f"{world_dir}: probes need at least 2 identities, the world has {len(identities)}")
    held = heldout_mask(faces.identity, faces.video, faces.frame, config.holdout, config.holdout_fraction)
    rendering = time.perf_counter()
    images, landmarks, people = faces.images, faces.landmarks, faces.identity
    if config.extra_scenes > 0:
        scene_key = hashlib.sha256(json.dumps([fingerprint, config.extra_scenes, config.scene_frames, config.size,
                                               config.margin]).encode()).hexdigest()[:10]
        extra = render_scenes(world_dir, identities, config.extra_scenes, config.scene_frames, config.size,
                              config.margin, cache=out_dir / f"scenes-{scene_key}.npz")
        images = np.concatenate([images, extra["images"]])
        landmarks = np.concatenate([landmarks, extra["landmarks"]])
        people = np.concatenate([people, extra["identity"]])
        held = np.concatenate([held, np.zeros(len(extra["images"]), bool)])
    render_seconds = time.perf_counter() - rendering
    labels = np.searchsorted(np.asarray(identities), people).astype(np.int64)
    started = time.perf_counter()
    task = ProbeTask(config, images, landmarks, labels, identities, held)
    trainer = Trainer(task, TrainConfig(epochs=config.epochs, device=config.device, seed=config.seed, patience=None,
                                        monitor=None, checkpoint_dir=None, progress=config.progress), run=run)
    fit = trainer.fit()
    seconds = time.perf_counter() - started
    info = {"probe_key": key, "world": str(Path(world_dir).resolve())}
    identity = IdentityProbe(trainer.modules["identity"].cpu(), config.device, info)
    landmark = LandmarkProbe(trainer.modules["landmarks"].cpu(), config.device, info)

    report = {"probe_key": key, "world": info["world"], "config": asdict(config), "device": str(trainer.device),
              "train_seconds": round(seconds, 1),
              "scene_render_seconds": round(render_seconds, 1), "n_train": int((~held[:len(faces)]).sum()),
              "n_heldout": int(held.sum()),
              "n_extra_scene_crops": int(len(images) - len(faces)),
              "holdout": config.holdout,
              **heldout_report(identity, landmark, faces.select(~held[:len(faces)]), faces.select(held[:len(faces)]),
                               seed=config.seed),
              "history": fit.history}
    identity.save(out_dir / "identity")
    landmark.save(out_dir / "landmarks")
    atomic_write_json(out_dir / REPORT_FILE, report)
    return identity, landmark, report


def load_probes(out_dir: str | Path, device: str = "auto") -> tuple[IdentityProbe, LandmarkProbe]:
    """Both probes from a train_probes output folder (safetensors + config.json each; nothing unpickled)."""
    out_dir = Path(out_dir)
    return IdentityProbe.load(out_dir / "identity", device), LandmarkProbe.load(out_dir / "landmarks", device)


def _cached_key(out_dir: Path) -> str | None:
    try:
        keys = {json.loads((out_dir / sub / "config.json").read_text()).get("probe_key")
                for sub in ("identity", "landmarks")}
    except (OSError, json.JSONDecodeError):
        return None
    if len(keys) != 1 or not (out_dir / REPORT_FILE).is_file():
        return None
    return keys.pop()
