"""The face-swap family's lifecycle behind generators.registry (see generators/family.py).

One checkpoint covers one identity pair (a, b). Game fakes: a or b put onto the videos of any train identity
(`swap_video`, as `forensics fake swap`); their crop-level twins for evasion and quality are crops of the same
identities' frames drawn by the pair's other decoder, pasted into the target crop through the learned mask.
Benchmark fakes: a or b put onto each split's own videos, as the game fakes are made (so validation has fakes
too, and no fake shares footage with another split). Evasion base: the pair's own
reconstruction training from the loaded weights, adversary off. Quality: unwarped reconstruction L1 of
both identities (lower is better).
"""
from __future__ import annotations

import dataclasses
import zlib
from pathlib import Path

import numpy as np
import torch

from forensics.data.manifest import SPLITS, ManifestRow, identity_spread
from forensics.faces import FaceDetectorConfig, get_face_detector
from forensics.synthetic.faceset import FaceSet
from forensics.training import StepContext
from generators.compositing import feather_alpha_tensor
from generators.family import FakeBatch, FakeJob, GeneratorFamily, ImagesOf, sample_crf

from .checkpoint import LoadedFaceswap, load_faceswap, save_generator
from .config import FAMILY, FaceswapConfig
from .convert import swap_crops, swap_video
from .task import FaceswapTask, make_task, train_faceswap

DECODERS = ("a", "b")


class FaceswapFamily(GeneratorFamily):
    name = FAMILY
    label = "face-swap"
    description = "shared-encoder autoencoder face swap of one identity pair, blended back into the frame"
    config = FaceswapConfig
    fake_options = {"train": 16, "val": 6, "test": 12, "crf": 18}   # benchmarks: swapped videos per split, H.264 CRF

    # -- build, train, load
    def make_task(self, config: FaceswapConfig, faces: FaceSet | None = None) -> FaceswapTask:
        return make_task(config, faces)

    def train(self, config: FaceswapConfig, out_dir, run=None):
        return train_faceswap(config, out_dir, run=run)

    def load(self, checkpoint, device="cpu") -> LoadedFaceswap:
        return load_faceswap(checkpoint, device=device)

    # -- benchmark fakes
    def benchmark_fakes(self, loaded: LoadedFaceswap, rows: list[ManifestRow], options: dict, splits: set[str],
                        device) -> list[FakeJob]:
        """`options[split]` swapped videos per wanted split, made from that split's own footage: identity a or
        b put onto the split's videos (one per identity before any second), exactly as game_fakes makes them,
        at `options["crf"]`. Every split has fakes (validation included), and no fake shares footage with
        another split."""
        pair = identity_pair(loaded)
        missing = [f"id{int(n):04d}" for n in pair.values() if f"id{int(n):04d}" not in {r.identity for r in rows}]
        if missing:
            raise ValueError(f"{loaded.path}: face-swap identities {pair} are not in the world ({', '.join(missing)})")
        spread = identity_spread(rows)
        crf = int(options.get("crf", 18))
        jobs = []
        for split in SPLITS:
            if split not in splits:
                continue
            pool = sorted((r for r in rows if r.split == split), key=spread)
            for target in pool[:max(0, int(options.get(split) or 0))]:
                # The decoder is drawn from the target's name, so a video gets the same fake whatever else is asked.
                rng = np.random.default_rng(zlib.crc32(Path(target.path).name.encode()))
                jobs += self.game_fakes(loaded, [target], [], rng, (crf, crf), device)
        return jobs

    def game_fakes(self, loaded: LoadedFaceswap, targets: list[ManifestRow], sources: list[ManifestRow], rng,
                   crf_range: tuple[int, int], device) -> list[FakeJob]:
        """Identity A or B onto every frame of each target video (the other one when the target is A or B
        itself), as `forensics fake swap` makes it, at a CRF drawn per video."""
        pair = identity_pair(loaded)
        names = {decoder: f"id{number:04d}" for decoder, number in pair.items()}
        detector = get_face_detector(FaceDetectorConfig(device=str(device)))
        jobs = []
        for target in targets:
            choices = [d for d in DECODERS if names[d] != target.identity]
            source = str(rng.choice(choices))
            crf = sample_crf(rng, crf_range)

            def make(path: Path, target=target, source=source, crf=crf) -> dict:
                return swap_video(loaded, target.path, path, source=source, detector=detector, crf=crf,
                                  device=str(device))

            jobs.append(FakeJob(name=f"{FAMILY}/{Path(target.path).stem}_as_{names[source]}_crf{crf}.mp4",
                                split=target.split, identity=target.identity, make=make, target_real=target.path,
                                meta={"kind": "swap", "source_identity": names[source]},
                                key={"family": FAMILY, "checkpoint": loaded.sha256, "target": Path(target.path).name,
                                     "source": source, "crf": crf}))
        return jobs

    def benchmark_notes(self, options: dict) -> list[str]:
        return [f"faceswap: one checkpoint covers one identity pair; each split's fakes put that pair's faces onto "
                f"the split's own videos (as `forensics fake swap` makes them, CRF {options.get('crf', 18)}), so "
                "train, validation and test fakes share the two swapped-in faces but no footage."]

    # -- the game
    def game_identities(self, loaded: LoadedFaceswap, held_out: list[int]) -> list[int]:
        """Every identity it is given: game_fakes puts the pair onto any of the world's videos, so the game's
        crop-level fakes are drawn on the same faces (the pair redrawn on its own frames is a different, easier
        domain: the champion called 96% of those real and 17% of swaps onto other faces)."""
        return list(held_out)

    def select_fakes(self, name: str, loaded: LoadedFaceswap, faces: FaceSet, identities: list[int], portion: str,
                     count: int, clip_frames: int, rng: np.random.Generator) -> FakeBatch:
        """Crops of `identities`' frames, each drawn by a decoder of the pair other than its own identity (as
        game_fakes chooses), without repeats."""
        pair = identity_pair(loaded)
        rows = faces.portion_rows(identities, portion)
        picked = np.sort(rng.choice(rows, size=min(len(rows), count), replace=False))
        decoders = [str(rng.choice([d for d in DECODERS if pair[d] != identity]))
                    for identity in faces.identity[picked]]
        groups = [f"{name}:{pair[d]}->{faces.videos[v]}" for d, v in zip(decoders, faces.video[picked])]
        return FakeBatch.selection(name, FAMILY, faces.size, picked, variant=decoders,
                                   source_id=[pair[d] for d in decoders], target_id=faces.identity[picked],
                                   group=groups)

    def draw_fakes(self, loaded: LoadedFaceswap, faces: FaceSet, batch: FakeBatch) -> FakeBatch:
        """The selection's fakes as `forensics fake swap` makes them inside the crop: the decoder's face pasted
        into the target crop through the learned mask (swap_crops composite, no colour transfer)."""
        images = np.zeros((len(batch), faces.size, faces.size, 3), np.uint8)
        for decoder in DECODERS:
            chosen = batch.variant == decoder
            if chosen.any():
                images[chosen] = swap_crops(loaded, faces.images[batch.target[chosen]], decoder, composite=True)
        return batch.drawn(images, {"generator": FAMILY, "checkpoint": str(loaded.path),
                                    "checkpoint_sha256": loaded.sha256, "identities": loaded.meta.get("identities"),
                                    "mask": "learned (hard, 2 px border)", "composite": True,
                                    "colour_transfer": "none", "crop": {"size": faces.size, "margin": faces.margin}})

    def draw_tensor(self, modules, batch: FakeBatch, images: ImagesOf) -> torch.Tensor:
        """Differentiable draw_fakes: composite with gradients to the generator (the hard mask carries none)."""
        net = modules["generator"]
        parts, order = [], []
        for decoder in DECODERS:
            chosen = np.flatnonzero(batch.variant == decoder)
            if len(chosen):
                crops = images(batch.target[chosen])
                rgb, mask = net.decode(crops, decoder)
                alpha = feather_alpha_tensor(mask.float())
                parts.append(alpha * rgb.float() + (1.0 - alpha) * crops)
                order.append(chosen)
        fakes = torch.cat(parts)
        return fakes[torch.from_numpy(np.argsort(np.concatenate(order), kind="stable")).to(fakes.device)]

    # -- evasion
    def evasion_base(self, loaded: LoadedFaceswap, faces: FaceSet, steps: int, batch_size: int, lr, seed: int,
                     device: str, world: str) -> "_FromWeights":
        names = {f.name for f in dataclasses.fields(FaceswapConfig)}
        base = {k: v for k, v in ((loaded.config.get("training") or {}).get("config") or {}).items() if k in names}
        base.update(loaded.model.config.to_dict())
        pair = identity_pair(loaded)
        base.update(identity_a=pair["a"], identity_b=pair["b"], epochs=1, steps_per_epoch=steps,
                    batch_size=batch_size, grad_accum=1, adv_weight=0.0, seed=seed, device=device, world=str(world))
        if lr:
            base["lr"] = lr
        faces = faces.select(np.isin(faces.identity, [pair["a"], pair["b"]]))
        state = {k: v.clone() for k, v in loaded.model.state_dict().items()}
        return _FromWeights(FaceswapConfig(**base), faces, state)

    def quality(self, base: "_FromWeights", device: torch.device) -> dict:
        """Unwarped reconstruction L1 of both identities (lower is better) with the current weights."""
        modules = {"generator": base.generator.eval()}
        with torch.no_grad():
            m = FaceswapTask.evaluate(base, 0, StepContext(device=device, modules=modules, raw_modules=modules))
        return {"metric": "reconstruction_l1", "value": (m["val/l1_a"] + m["val/l1_b"]) / 2, **m}

    def export(self, base: "_FromWeights", loaded: LoadedFaceswap, directory: Path, meta: dict) -> Path:
        return save_generator(directory, {"generator": base.generator}, {**base.checkpoint_config(), **meta})


class _FromWeights(FaceswapTask):
    """FaceswapTask starting from given weights (the generator is ready for quality() right after build)."""

    def __init__(self, config: FaceswapConfig, faces: FaceSet, state: dict):
        super().__init__(config, faces)
        self.state = state

    def build(self, device: torch.device) -> dict[str, torch.nn.Module]:
        modules = super().build(device)
        self.generator.load_state_dict(self.state)
        self.generator.to(device)          # the loop moves it too; quality() may run before the loop
        return modules


def identity_pair(loaded: LoadedFaceswap) -> dict[str, int]:
    """The checkpoint's {"a": id, "b": id}: whose crops its two decoders draw."""
    pair = {k: int(v) for k, v in (loaded.meta.get("identities") or {}).items()}
    if set(pair) != set(DECODERS):
        raise ValueError(f"{loaded.path}: face-swap checkpoint does not name its identities a and b")
    return pair
