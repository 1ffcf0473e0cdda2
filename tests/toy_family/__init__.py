"""A third generator family that lives only here: "tint", a 1x1 convolution that recolours the face inside a
fixed elliptical mask of the aligned crop.

It exists to show that a family is one folder: it implements generators.family.GeneratorFamily with the
project's own parts (the shared checkpoint format, the product-path compositor, the training loop's task
protocol) and registers itself on import; the harness and the benchmarks then use it by name, and no file
outside this folder knows it exists.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from forensics.data.manifest import SPLITS, ManifestRow
from forensics.faces import CropSpec, FaceDetectorConfig, get_face_detector
from forensics.synthetic.faceset import FaceSet
from generators.checkpoint import load_modules, read_generator, save_generator
from generators.compositing import rewrite_video
from generators.family import FakeBatch, FakeJob, GeneratorFamily, sample_crf
from generators.images import to_tensor, to_uint8
from generators.registry import register_family

NAME = "tint"


class TintNet(nn.Module):
    """Face -> recoloured face: a per-pixel affine colour map (identity at init plus a small shift)."""

    def __init__(self, shift: float = 0.08):
        super().__init__()
        self.mix = nn.Conv2d(3, 3, 1)
        with torch.no_grad():
            self.mix.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
            self.mix.bias.copy_(torch.tensor([shift, -shift / 2, -shift]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mix(x).clamp(0.0, 1.0)


def ellipse(size: int) -> np.ndarray:
    ys, xs = np.mgrid[0:size, 0:size] + 0.5
    return ((((xs - size / 2) / (0.3 * size)) ** 2 + ((ys - 0.55 * size) / (0.38 * size)) ** 2) <= 1).astype(np.float32)


@dataclass
class ToyConfig:
    size: int = 32
    margin: float = 0.25

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "ToyConfig":
        return cls(**overrides)


@dataclass
class LoadedTint:
    model: TintNet
    path: Path
    sha256: str
    meta: dict = field(default_factory=dict)
    size: int = 32
    margin: float = 0.25

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device


def save_tint(directory: Path, net: TintNet, size: int, margin: float, meta: dict | None = None) -> Path:
    return save_generator(directory, {"generator": net}, {"family": NAME, "crop": {"size": size, "margin": margin},
                                                          **(meta or {})})


class TintTask:
    """The family's own loss: stay close to the input face (a generator that must not drift)."""

    def __init__(self, start: dict, faces: FaceSet, steps: int, batch_size: int, seed: int, lr: float = 0.05):
        self.start, self.faces, self.steps, self.batch_size, self.seed, self.lr = start, faces, steps, batch_size, seed, lr
        self.net = TintNet()

    def build(self, device):
        self.net.load_state_dict(self.start)
        self.net.to(device)
        return {"generator": self.net}

    def configure_optimizers(self, modules):
        return {"G": torch.optim.SGD(modules["generator"].parameters(), lr=self.lr)}

    def train_batches(self, epoch: int, rank: int, world_size: int):
        rng = np.random.default_rng([self.seed, epoch, rank])
        return [rng.integers(0, len(self.faces), self.batch_size) for _ in range(self.steps)]

    def training_step(self, rows, ctx):
        x = to_tensor(self.faces.images[rows], ctx.device)
        loss = (ctx.modules["generator"](x) - x).abs().mean()
        ctx.backward(loss, "G")
        return {"rec": loss.detach()}


class TintFamily(GeneratorFamily):
    name = NAME
    label = "face-tint"
    description = "toy: recolour the face inside a fixed ellipse (tests only)"
    config = ToyConfig
    fake_options = {"per_split": 2}

    def make_task(self, config, faces=None):
        return TintTask(TintNet().state_dict(), faces, steps=1, batch_size=4, seed=0)

    def train(self, config, out_dir, run=None):
        return None, save_tint(Path(out_dir), TintNet(), config.size, config.margin)

    def load(self, checkpoint, device="cpu") -> LoadedTint:
        states, config, sha, directory = read_generator(checkpoint, NAME)
        crop = config["crop"]
        net = load_modules({"generator": TintNet()}, states, directory, device, "the tint model")["generator"]
        meta = {k: v for k, v in config.items() if k not in ("format", "family", "weights_sha256")}
        return LoadedTint(net, directory, sha, meta, int(crop["size"]), float(crop["margin"]))

    # -- product path: recolour every frame's face of real videos, blended back like any fake
    def benchmark_fakes(self, loaded: LoadedTint, rows: list[ManifestRow], options: dict, splits: set[str], device):
        detector = get_face_detector(FaceDetectorConfig(device=str(device)))
        jobs = []
        for split in SPLITS:
            if split not in splits:
                continue
            for target in sorted((r for r in rows if r.split == split), key=lambda r: r.path)[:options["per_split"]]:
                def make(path: Path, target=target) -> dict:
                    crop = CropSpec(loaded.size, loaded.margin)
                    stats = rewrite_video(target.path, path, lambda crops: self._draw(loaded, crops), crop, detector)
                    return {"generator": NAME, "checkpoint_sha256": loaded.sha256, **stats}

                jobs.append(FakeJob(name=f"{NAME}/{Path(target.path).stem}.mp4", split=split, identity=target.identity,
                                    make=make, target_real=target.path,
                                    key={"family": NAME, "checkpoint": loaded.sha256, "target": Path(target.path).name}))
        return jobs

    def game_fakes(self, loaded: LoadedTint, targets: list[ManifestRow], sources: list[ManifestRow], rng,
                   crf_range: tuple[int, int], device) -> list[FakeJob]:
        detector = get_face_detector(FaceDetectorConfig(device=str(device)))
        jobs = []
        for target in targets:
            crf = sample_crf(rng, crf_range)

            def make(path: Path, target=target, crf=crf) -> dict:
                stats = rewrite_video(target.path, path, lambda crops: self._draw(loaded, crops),
                                      CropSpec(loaded.size, loaded.margin), detector, crf=crf)
                return {"generator": NAME, "checkpoint_sha256": loaded.sha256, "crf": crf, **stats}

            jobs.append(FakeJob(name=f"{NAME}/{Path(target.path).stem}_crf{crf}.mp4", split=target.split,
                                identity=target.identity, make=make, target_real=target.path,
                                key={"family": NAME, "checkpoint": loaded.sha256, "target": Path(target.path).name,
                                     "crf": crf}))
        return jobs

    # -- the game
    def game_identities(self, loaded, held_out):
        return list(held_out)

    def select_fakes(self, name, loaded, faces, identities, portion, count, clip_frames, rng) -> FakeBatch:
        rows = faces.portion_rows(identities, portion)
        picked = np.sort(rng.choice(rows, size=min(count, len(rows)), replace=False))
        ids = faces.identity[picked]
        return FakeBatch.selection(name, NAME, faces.size, picked, source_id=ids, target_id=ids,
                                   group=[f"{name}:{faces.videos[v]}" for v in faces.video[picked]])

    def draw_fakes(self, loaded: LoadedTint, faces: FaceSet, batch: FakeBatch) -> FakeBatch:
        rgb, masks = self._draw(loaded, faces.images[batch.target])
        images = (masks[..., None] * rgb + (1 - masks[..., None]) * faces.images[batch.target] / 255.0)
        return batch.drawn(np.clip(images * 255 + 0.5, 0, 255).astype(np.uint8), {"generator": NAME})

    def draw_tensor(self, modules, batch: FakeBatch, images):
        x = images(batch.target)
        alpha = torch.from_numpy(ellipse(x.shape[-1])).to(x.device)
        return alpha * modules["generator"](x) + (1 - alpha) * x

    # -- evasion
    def evasion_base(self, loaded: LoadedTint, faces, steps, batch_size, lr, seed, device, world):
        start = {k: v.clone() for k, v in loaded.model.state_dict().items()}
        return TintTask(start, faces, steps, batch_size, seed, lr=lr or 0.05)

    def quality(self, base: TintTask, device) -> dict:
        with torch.no_grad():
            x = to_tensor(base.faces.images[:16], device)
            value = float((base.net.to(device)(x) - x).abs().mean())
        return {"metric": "recolour_l1", "value": value}

    def export(self, base: TintTask, loaded: LoadedTint, directory: Path, meta: dict) -> Path:
        return save_tint(directory, base.net, loaded.size, loaded.margin, meta)

    @staticmethod
    @torch.no_grad()
    def _draw(loaded: LoadedTint, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = to_tensor(np.asarray(crops), loaded.device)
        rgb = to_uint8(loaded.model(x)).astype(np.float32) / 255.0
        return rgb, np.repeat(ellipse(loaded.size)[None], len(crops), axis=0)


FAMILY = register_family(TintFamily())
