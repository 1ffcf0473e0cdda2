"""Fresh fakes for a round, from held-out identities, made the way the product's own tools make them.

Two halves per family:
- *which* crops a fake is made from (a selection: target crop, source still, driving run; drawn with a
  round-seeded rng) is kept apart from *how* it is drawn, so step (e) redraws exactly the same fakes with
  the evaded generator and "retrained" and "after" metrics differ only by the generator;
- the no-grad path (uint8 crops, what is scored and stored) reuses the families' own converters
  (swap_crops with the learned-mask composite, reenact_crops with relative motion), and the differentiable
  twins (swap_tensor, reenact_tensor) compute the same images with gradients for the evasion fine-tune.

Indices are global: rows of the world's FaceSet at the generators' crop size, so a selection saved in
one process means the same crops in the next.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

PORTIONS = ("fit", "eval")


# ---------------------------------------------------------------------- identities and portions

def held_out_identities(faces, identities=None) -> list[int]:
    """The identities fakes are made from: those given, or the world's test split; each must have >= 2 videos."""
    if identities is None:
        ids = sorted(int(i) for i in np.unique(faces.identity[faces.split == "test"]))
        if len(ids) < 2:
            raise ValueError("coevolve: the world's test split has fewer than 2 identities; pass identities")
    else:
        ids = sorted({int(i) for i in identities})
        missing = [i for i in ids if not np.any(faces.identity == i)]
        if missing:
            raise ValueError(f"coevolve: identities {missing} are not in the world "
                             f"(it has {len(np.unique(faces.identity))} identities)")
    for i in ids:
        check_two_videos(faces, i)
    return ids


def check_two_videos(faces, identity: int) -> None:
    videos = np.unique(faces.video[faces.identity == identity])
    if len(videos) < 2:
        raise ValueError(f"coevolve: identity {identity} has {len(videos)} video(s); the harness needs >= 2 per "
                         f"identity (video 0 to fit on, the others to evaluate on)")


def portion_indices(faces, identities, portion: str) -> np.ndarray:
    """Global FaceSet rows of `identities` in a portion: "fit" = each identity's first video, "eval" = the rest."""
    if portion not in PORTIONS:
        raise ValueError(f"portion must be one of {PORTIONS}, got {portion!r}")
    out = []
    for identity in identities:
        rows = np.flatnonzero(faces.identity == int(identity))
        first = np.min(faces.video[rows])
        keep = faces.video[rows] == first if portion == "fit" else faces.video[rows] != first
        out.append(rows[keep])
    rows = np.concatenate(out) if out else np.zeros(0, np.int64)
    return rows[np.lexsort((faces.frame[rows], faces.video[rows]))]


def real_groups(faces, rows: np.ndarray) -> np.ndarray:
    return np.array([faces.videos[v] for v in faces.video[rows]])


# ---------------------------------------------------------------------- a batch of fakes

@dataclass
class FakeBatch:
    """Fakes of one generator for one portion, with where each came from (all arrays have one row per fake).

    target: the real crop the fake stands in for (the swapped crop; the driving frame).
    source: animation's source still (-1 for face swap); initial: the driving run's first frame (-1).
    decoder: face swap's decoder ("a"/"b"); source_id: whose face is shown; target_id: whose frame/motion.
    group: a video key, so fakes can also be scored per video.
    """
    name: str
    family: str
    images: np.ndarray
    target: np.ndarray
    source: np.ndarray
    initial: np.ndarray
    decoder: np.ndarray
    source_id: np.ndarray
    target_id: np.ndarray
    group: np.ndarray
    recipe: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.target)

    def info(self, i: int) -> dict:
        return {"target": int(self.target[i]), "source": int(self.source[i]), "source_id": int(self.source_id[i]),
                "target_id": int(self.target_id[i]), "group": str(self.group[i])}

    def save(self, path: str | Path) -> Path:
        from forensics.io import atomic_path

        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, images=self.images, target=self.target, source=self.source, initial=self.initial,
                         decoder=self.decoder.astype("<U8"), source_id=self.source_id, target_id=self.target_id,
                         group=self.group.astype("<U256"), meta=np.array(json.dumps(
                             {"name": self.name, "family": self.family, "recipe": self.recipe})))
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> "FakeBatch":
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            return cls(meta["name"], meta["family"], data["images"], data["target"], data["source"], data["initial"],
                       data["decoder"], data["source_id"], data["target_id"], data["group"], meta["recipe"])


def _selection(name, family, target, source, initial, decoder, source_id, target_id, group, size) -> FakeBatch:
    n = len(target)
    return FakeBatch(name, family, np.zeros((n, size, size, 3), np.uint8), np.asarray(target, np.int64),
                     np.asarray(source, np.int64), np.asarray(initial, np.int64), np.asarray(decoder, "<U8"),
                     np.asarray(source_id, np.int64), np.asarray(target_id, np.int64), np.asarray(group, "<U256"))


# ---------------------------------------------------------------------- face swap

def faceswap_pair(loaded) -> dict[str, int]:
    """The checkpoint's {"a": id, "b": id}: whose crops its two decoders draw."""
    pair = {k: int(v) for k, v in (loaded.meta.get("identities") or {}).items()}
    if set(pair) != {"a", "b"}:
        raise ValueError(f"{loaded.path}: face-swap checkpoint does not name its identities a and b")
    return pair


def select_faceswap(name: str, faces, pair: dict[str, int], portion: str, count: int,
                    rng: np.random.Generator) -> FakeBatch:
    """Crops of B to be drawn by decoder a, and crops of A by decoder b (about half each, without repeats)."""
    targets, decoders, source_ids, target_ids, groups = [], [], [], [], []
    wanted = {"a": count - count // 2, "b": count // 2}
    for decoder, other in (("a", "b"), ("b", "a")):
        rows = portion_indices(faces, [pair[other]], portion)
        picked = np.sort(rng.choice(rows, size=min(len(rows), wanted[decoder]), replace=False))
        targets.append(picked)
        decoders += [decoder] * len(picked)
        source_ids += [pair[decoder]] * len(picked)
        target_ids += [pair[other]] * len(picked)
        groups += [f"{name}:{pair[decoder]}->{faces.videos[v]}" for v in faces.video[picked]]
    n = sum(len(t) for t in targets)
    return _selection(name, "faceswap", np.concatenate(targets), [-1] * n, [-1] * n, decoders, source_ids,
                      target_ids, groups, faces.size)


def draw_faceswap(loaded, faces, batch: FakeBatch) -> FakeBatch:
    """The selection's fakes as `forensics fake swap` makes them inside the crop: the decoder's face pasted
    into the target crop through the learned mask (swap_crops composite, no colour transfer)."""
    from generators.faceswap import swap_crops

    images = np.zeros((len(batch), faces.size, faces.size, 3), np.uint8)
    for decoder in ("a", "b"):
        mask = batch.decoder == decoder
        if mask.any():
            images[mask] = swap_crops(loaded, faces.images[batch.target[mask]], decoder, composite=True)
    recipe = {"generator": "faceswap", "checkpoint": str(loaded.path), "checkpoint_sha256": loaded.sha256,
              "identities": loaded.meta.get("identities"), "mask": "learned (hard, 2 px border)", "composite": True,
              "colour_transfer": "none", "crop": {"size": faces.size, "margin": faces.margin}}
    return replace(batch, images=images, recipe=recipe)


def hard_alpha(mask: torch.Tensor) -> torch.Tensor:
    """Torch twin of convert.feather_mask(mask, 0, 0): the learned mask thresholded, crop border cleared."""
    from generators.faceswap.convert import BORDER_PX

    alpha = (mask.detach() > 0.5).to(mask.dtype)
    alpha[..., :BORDER_PX, :] = 0
    alpha[..., -BORDER_PX:, :] = 0
    alpha[..., :, :BORDER_PX] = 0
    alpha[..., :, -BORDER_PX:] = 0
    return alpha


def swap_tensor(net, crops: torch.Tensor, decoder: str) -> torch.Tensor:
    """Differentiable draw_faceswap for float crops [B, 3, S, S] in [0, 1]: composite with gradients to the
    generator (the hard mask itself carries none, as in conversion)."""
    rgb, mask = net.decode(crops, decoder)
    alpha = hard_alpha(mask.float())
    return alpha * rgb.float() + (1.0 - alpha) * crops


# ---------------------------------------------------------------------- animation

def select_animation(name: str, faces, identities: list[int], portion: str, count: int, frames_per_pair: int,
                     rng: np.random.Generator) -> FakeBatch:
    """Pairs (i, j), i != j: a still of i animated by a run of consecutive frames of a video of j.

    Balanced by identity: in whole cycles, each identity is the source (whose face is shown) once and the
    driver once, and the frames are spread evenly over the runs (at most frames_per_pair each). Pairs drawn
    at random left, with six people, one over-represented among one portion's fakes and absent from the
    other's; as the reals cover everyone evenly, the detector learned and was scored on *who* is shown
    rather than *how* the face was made, and its fine-tune inverted from the fit to the eval portion.
    """
    if len(identities) < 2:
        raise ValueError("coevolve: animation fakes need at least 2 held-out identities (source != driver)")
    ring = [int(i) for i in rng.permutation(sorted(int(i) for i in identities))]
    n = len(ring)
    pairs = n * max(1, -(-count // (n * frames_per_pair)))
    lengths = np.full(pairs, count // pairs) + (np.arange(pairs) < count % pairs)
    rows_of = {i: portion_indices(faces, [i], portion) for i in ring}
    fields_ = {k: [] for k in ("target", "source", "initial", "source_id", "target_id", "group")}
    for k in range(pairs):
        cycle, slot = divmod(k, n)
        if slot == 0:
            positions = rng.permutation(n)
        shift = 1 + cycle % (n - 1)                    # a cyclic shift of the ring: nobody drives themselves
        i, j = ring[positions[slot]], ring[(positions[slot] + shift) % n]
        source = int(rng.choice(rows_of[i]))
        videos = np.unique(faces.video[rows_of[j]])
        video = int(rng.choice(videos))
        clip = rows_of[j][faces.video[rows_of[j]] == video]
        clip = clip[np.argsort(faces.frame[clip], kind="stable")]
        length = min(int(lengths[k]), len(clip))
        if length < 1:
            continue
        start = int(rng.integers(0, len(clip) - length + 1))
        run = clip[start:start + length]
        fields_["target"] += list(run)
        fields_["source"] += [source] * length
        fields_["initial"] += [int(run[0])] * length
        fields_["source_id"] += [i] * length
        fields_["target_id"] += [j] * length
        fields_["group"] += [f"{name}:{i}<-{faces.videos[video]}@{int(faces.frame[run[0]])}"] * length
    n = len(fields_["target"])
    return _selection(name, "animation", fields_["target"], fields_["source"], fields_["initial"], [""] * n,
                      fields_["source_id"], fields_["target_id"], fields_["group"], faces.size)


def draw_animation(model, faces, batch: FakeBatch) -> FakeBatch:
    """The selection's fakes as `forensics fake animate` makes them: reenact_crops with relative motion,
    one call per (source, driving run), the run's first frame being the motion's reference."""
    from generators.animation import reenact_crops

    images = np.zeros((len(batch), faces.size, faces.size, 3), np.uint8)
    starts = np.flatnonzero(np.r_[True, (batch.source[1:] != batch.source[:-1])
                                  | (batch.initial[1:] != batch.initial[:-1])])
    for begin, end in zip(starts, np.r_[starts[1:], len(batch)]):
        run = batch.target[begin:end]
        if run[0] != batch.initial[begin]:
            raise ValueError("coevolve: an animation run must start at its reference frame")
        out = reenact_crops(model, faces.images[batch.source[begin]], faces.images[run], relative=True)
        images[begin:end] = out.generated
    recipe = {"generator": "animation", "checkpoint": str(model.path), "checkpoint_sha256": model.sha256,
              "relative": True, "crop": {"size": faces.size, "margin": faces.margin}}
    return replace(batch, images=images, recipe=recipe)


def reenact_tensor(kp_detector, generator, source: torch.Tensor, driving: torch.Tensor,
                   initial: torch.Tensor) -> torch.Tensor:
    """Differentiable draw_animation for float [B, 3, S, S] batches: each sample's own reference frame."""
    from generators.animation import relative_motion
    from generators.animation.task import split_keypoints

    kp_source, kp_driving, kp_initial = split_keypoints(kp_detector(torch.cat([source, driving, initial])), 3)
    target = relative_motion(kp_source, kp_driving, kp_initial)
    return generator(source, kp_driving=target, kp_source=kp_source)["prediction"].float()


# ---------------------------------------------------------------------- per family, and pseudo-fakes

def load_generator(family: str, checkpoint: str | Path, device="cpu"):
    if family == "faceswap":
        from generators.faceswap import load_faceswap

        return load_faceswap(checkpoint, device=device)
    from generators.animation import load_animation

    return load_animation(checkpoint, device=device)


def generator_crop(family: str, loaded) -> tuple[int, float]:
    """(size, margin) of a loaded generator's aligned crops."""
    if family == "faceswap":
        return loaded.size, loaded.margin
    return int(loaded.config.size), float(loaded.config.margin)


def select_fakes(name: str, family: str, loaded, faces, held_out: list[int], portion: str, count: int,
                 frames_per_pair: int, rng: np.random.Generator) -> FakeBatch:
    if family == "faceswap":
        return select_faceswap(name, faces, faceswap_pair(loaded), portion, count, rng)
    return select_animation(name, faces, held_out, portion, count, frames_per_pair, rng)


def draw_fakes(family: str, loaded, faces, batch: FakeBatch) -> FakeBatch:
    return draw_faceswap(loaded, faces, batch) if family == "faceswap" else draw_animation(loaded, faces, batch)


def fake_identities(family: str, loaded, held_out: list[int]) -> list[int]:
    """Whose real crops are the negatives for this family's fakes (a face-swap pair outside the held-out
    identities is used anyway: the demo trains its pair on held-out people, a user's model may not be)."""
    if family == "faceswap":
        return sorted(set(faceswap_pair(loaded).values()))
    return list(held_out)


def fake_scenes(faces, batch: FakeBatch) -> np.ndarray:
    """The video each fake's surroundings come from: a face swap's target frame, an animation's source still
    (its background, light and noise are the source's); the finetune pairs reals with fakes by it."""
    return faces.video[np.where(batch.source >= 0, batch.source, batch.target)]


def sbi_fakes(faces, rows: np.ndarray, seed: int) -> np.ndarray:
    """A self-blended pseudo-fake of each row, seeded per row (the same fakes whenever asked again)."""
    from generators.blending import self_blend

    out = np.empty((len(rows),) + faces.images.shape[1:], np.uint8)
    for k, row in enumerate(rows):
        rng = np.random.default_rng([int(seed), int(row), 0x5B1])
        out[k] = self_blend(faces.images[row], faces.landmarks[row], rng)[0]
    return out
