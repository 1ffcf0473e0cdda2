"""The face-animation family's lifecycle behind generators.registry (see generators/family.py).

Game fakes: a still of identity i moved like a run of consecutive frames of identity j (relative motion,
the run's first frame being the reference), i != j, in whole cycles over the identities. Benchmark fakes:
`animate` on whole videos, any-to-any within one split. Evasion base: self-reconstruction across frames
of the fit portion from the loaded weights, adversary off. Quality: self-reenactment L1 relative to
copying the source (lower is better).
"""
from __future__ import annotations

import dataclasses
import math
from itertools import islice
from pathlib import Path

import numpy as np
import torch

from forensics.data.manifest import SPLITS, ManifestRow, identity_spread, videos_by_identity
from forensics.media import iter_frames
from forensics.synthetic.faceset import FaceSet
from forensics.training import StepContext
from generators.family import FakeBatch, FakeJob, GeneratorFamily, ImagesOf, sample_crf

from .animate import HULL_SCALE, animate, reenact_crops, relative_motion
from .checkpoint import AnimationModel, load_animation, save_animation
from .config import FAMILY, AnimationConfig
from .task import AnimationTask, make_task, split_keypoints, train_animation


class AnimationFamily(GeneratorFamily):
    name = FAMILY
    label = "face-animation"
    description = "first-order-motion face animation: a still face moved like a driving video"
    config = AnimationConfig
    fake_options = {"train": 16, "val": 6, "test": 12}   # animated videos per split (benchmarks)
    blend_hull_scale = HULL_SCALE                          # talking photos paste the grown source hull

    # -- build, train, load
    def make_task(self, config: AnimationConfig, faces: FaceSet | None = None) -> AnimationTask:
        return make_task(config, faces)

    def train(self, config: AnimationConfig, out_dir, run=None):
        return train_animation(config, out_dir, run=run)

    def load(self, checkpoint, device="cpu") -> AnimationModel:
        return load_animation(checkpoint, device=device)

    # -- benchmark fakes
    def benchmark_fakes(self, loaded: AnimationModel, rows: list[ManifestRow], options: dict, splits: set[str],
                        device) -> list[FakeJob]:
        """`options[split]` animated videos per wanted split: drivers are the split's videos in turn, each
        animated from the first frame of another identity of the same split (any-to-any)."""
        spread, videos = identity_spread(rows), videos_by_identity(rows)
        jobs = []
        for split in SPLITS:
            if split not in splits:
                continue
            drivers = sorted((r for r in rows if r.split == split), key=spread)
            identities = sorted({r.identity for r in drivers})
            for i in range(min(int(options.get(split) or 0), len(drivers) * max(1, len(identities) - 1))):
                driver = drivers[i % len(drivers)]
                shift = 1 + i // len(drivers)
                source_identity = identities[(identities.index(driver.identity) + shift) % len(identities)]
                source_video = videos[source_identity][0]

                def make(path: Path, driver=driver, source_video=source_video) -> dict:
                    with iter_frames(source_video.path) as frames:
                        still = next(iter(frames)).image
                    recipe = animate(loaded, still, driver.path, path, device=str(device))
                    recipe["source"] = f"{source_video.path}#frame0"
                    return recipe

                jobs.append(FakeJob(name=f"{FAMILY}/{Path(driver.path).stem}_from_{source_identity}.mp4", split=split,
                                    identity=driver.identity, make=make, footage=(driver.path, source_video.path),
                                    meta={"source_identity": source_identity},
                                    key={"family": FAMILY, "checkpoint": loaded.sha256,
                                         "driver": Path(driver.path).name, "source": Path(source_video.path).name}))
        return jobs

    def game_fakes(self, loaded: AnimationModel, targets: list[ManifestRow], sources: list[ManifestRow], rng,
                   crf_range: tuple[int, int], device) -> list[FakeJob]:
        """Each target person made to move like someone else: the target video's first frame animated by the
        video of another identity among `sources`, blended back into that frame (a talking photo in the
        target's own scene), as `forensics fake animate` makes it, at a CRF drawn per video."""
        jobs = []
        for target in targets:
            drivers = [r for r in sources if r.identity != target.identity]
            if not drivers:
                raise ValueError(f"{target.path}: no driving video of another identity to animate it with")
            driver = drivers[int(rng.integers(len(drivers)))]
            crf = sample_crf(rng, crf_range)

            def make(path: Path, target=target, driver=driver, crf=crf) -> dict:
                with iter_frames(target.path) as frames:
                    still = next(iter(frames)).image
                recipe = animate(loaded, still, driver.path, path, crf=crf, device=str(device))
                recipe["source"] = f"{target.path}#frame0"
                return recipe

            jobs.append(FakeJob(name=f"{FAMILY}/{Path(target.path).stem}_by_{Path(driver.path).stem}_crf{crf}.mp4",
                                split=target.split, identity=target.identity, make=make, target_real=target.path,
                                meta={"kind": "reenactment", "driver": Path(driver.path).name},
                                key={"family": FAMILY, "checkpoint": loaded.sha256, "target": Path(target.path).name,
                                     "driver": Path(driver.path).name, "crf": crf, "composite": True}))
        return jobs

    def benchmark_notes(self, options: dict) -> list[str]:
        return ["animation: any-to-any, sources and drivers from one split's identities, so train and test "
                "identities are disjoint; the video is the source's first frame with the animated face blended back in "
                "(a talking photo, as `forensics fake animate` writes it)."]

    # -- the game
    def game_identities(self, loaded, held_out: list[int]) -> list[int]:
        return list(held_out)

    def select_fakes(self, name: str, loaded, faces: FaceSet, identities: list[int], portion: str, count: int,
                     clip_frames: int, rng: np.random.Generator) -> FakeBatch:
        """Pairs (i, j), i != j: a still of i animated by a run of consecutive frames of a video of j.

        Balanced by identity: in whole cycles, each identity is the source (whose face is shown) once and the
        driver once, and the frames are spread evenly over the runs (at most clip_frames each). Pairs drawn
        at random left, with six people, one over-represented among one portion's fakes and absent from the
        other's; as the reals cover everyone evenly, the detector learned and was scored on *who* is shown
        rather than *how* the face was made, and its fine-tune inverted from the fit to the eval portion.
        """
        if len(identities) < 2:
            raise ValueError("coevolve: animation fakes need at least 2 identities (source != driver)")
        ring = [int(i) for i in rng.permutation(sorted(int(i) for i in identities))]
        n = len(ring)
        pairs = n * max(1, -(-count // (n * clip_frames)))
        lengths = np.full(pairs, count // pairs) + (np.arange(pairs) < count % pairs)
        rows_of = {i: faces.portion_rows([i], portion) for i in ring}
        fields = {k: [] for k in ("target", "source", "initial", "source_id", "target_id", "group")}
        for k in range(pairs):
            cycle, slot = divmod(k, n)
            if slot == 0:
                positions = rng.permutation(n)
            shift = 1 + cycle % (n - 1)                    # a cyclic shift of the ring: nobody drives themselves
            i, j = ring[positions[slot]], ring[(positions[slot] + shift) % n]
            source = int(rng.choice(rows_of[i]))
            video = int(rng.choice(np.unique(faces.video[rows_of[j]])))
            clip = rows_of[j][faces.video[rows_of[j]] == video]
            clip = clip[np.argsort(faces.frame[clip], kind="stable")]
            length = min(int(lengths[k]), len(clip))
            if length < 1:
                continue
            start = int(rng.integers(0, len(clip) - length + 1))
            run = clip[start:start + length]
            fields["target"] += list(run)
            fields["source"] += [source] * length
            fields["initial"] += [int(run[0])] * length
            fields["source_id"] += [i] * length
            fields["target_id"] += [j] * length
            fields["group"] += [f"{name}:{i}<-{faces.videos[video]}@{int(faces.frame[run[0]])}"] * length
        return FakeBatch.selection(name, FAMILY, faces.size, **fields)

    def draw_fakes(self, loaded: AnimationModel, faces: FaceSet, batch: FakeBatch) -> FakeBatch:
        """The selection's fakes as `forensics fake animate` makes them: reenact_crops with relative motion,
        one call per (source, driving run), the run's first frame being the motion's reference."""
        images = np.zeros((len(batch), faces.size, faces.size, 3), np.uint8)
        starts = np.flatnonzero(np.r_[True, (batch.source[1:] != batch.source[:-1])
                                      | (batch.initial[1:] != batch.initial[:-1])])
        for begin, end in zip(starts, np.r_[starts[1:], len(batch)]):
            run = batch.target[begin:end]
            if run[0] != batch.initial[begin]:
                raise ValueError("coevolve: an animation run must start at its reference frame")
            images[begin:end] = reenact_crops(loaded, faces.images[batch.source[begin]], faces.images[run],
                                              relative=True).generated
        return batch.drawn(images, {"generator": FAMILY, "checkpoint": str(loaded.path),
                                    "checkpoint_sha256": loaded.sha256, "relative": True,
                                    "crop": {"size": faces.size, "margin": faces.margin}})

    def draw_tensor(self, modules, batch: FakeBatch, images: ImagesOf) -> torch.Tensor:
        """Differentiable draw_fakes: each fake from its own source, driving frame and reference frame."""
        source, driving, initial = images(batch.source), images(batch.target), images(batch.initial)
        kp_source, kp_driving, kp_initial = split_keypoints(
            modules["kp_detector"](torch.cat([source, driving, initial])), 3)
        target = relative_motion(kp_source, kp_driving, kp_initial)
        return modules["generator"](source, kp_driving=target, kp_source=kp_source)["prediction"].float()

    # -- evasion
    def evasion_base(self, loaded: AnimationModel, faces: FaceSet, steps: int, batch_size: int, lr, seed: int,
                     device: str, world: str) -> "_FromWeights":
        fit = dataclasses.replace(faces, split=np.full(len(faces), "train", "<U5"))
        videos = max(1, len(np.unique(fit.video)))
        overrides = dict(epochs=1, batch_size=batch_size, adversarial_weight=0.0, feature_matching_weight=0.0,
                         train_split="train", eval_split="train", seed=seed, device=device,
                         pairs_per_video=math.ceil(steps * batch_size / videos) + 1)
        if lr:
            overrides["lr_generator"] = lr
        states = {name: {k: v.clone() for k, v in module.state_dict().items()}
                  for name, module in (("kp_detector", loaded.kp_detector), ("generator", loaded.generator))}
        return _FromWeights(dataclasses.replace(loaded.config, **overrides), fit, states, steps)

    def quality(self, base: "_FromWeights", device: torch.device) -> dict:
        """Self-reenactment L1 relative to copying the source (lower is better), as AnimationTask.evaluate."""
        modules = {k: m.eval() for k, m in base.modules.items()}
        with torch.no_grad():
            m = AnimationTask.evaluate(base, 0, StepContext(device=device, modules=modules, raw_modules=modules))
        base.last_eval = None
        return {"metric": "self_reenactment_l1_ratio", "value": m["val/l1_ratio"], **m}

    def export(self, base: "_FromWeights", loaded: AnimationModel, directory: Path, meta: dict) -> Path:
        return save_animation(directory, base.modules, loaded.config, meta)


class _FromWeights(AnimationTask):
    """AnimationTask starting from given weights, at most `steps` batches an epoch; keeps its modules."""

    def __init__(self, config: AnimationConfig, faces: FaceSet, states: dict, steps: int):
        super().__init__(config, faces)
        self.states, self.steps = states, steps
        self.modules: dict = {}

    def build(self, device: torch.device) -> dict[str, torch.nn.Module]:
        self.modules = super().build(device)
        for name, state in self.states.items():
            self.modules[name].load_state_dict(state)
        self.modules = {name: module.to(device) for name, module in self.modules.items()}
        return self.modules

    def train_batches(self, epoch: int, rank: int, world_size: int) -> list:
        return list(islice(iter(super().train_batches(epoch, rank, world_size)), self.steps))
