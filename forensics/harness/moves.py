"""The detector's move of a round, as every rank of a torchrun job plays it.

`torchrun --nproc_per_node N -m forensics coevolve ...` runs the game on rank 0 alone: its setup, the
generators' moves, the product-path fakes, the panel and the gate all write files and MLflow runs, and one
writer keeps them consistent. The detector's move is the round's big training job, so it is the one every rank
joins: rank 0 sends the other ranks a MoveOrder (plain data: where the crop cache is, which fake videos were
made from which real video, the seed and the hyper-parameters); every rank rebuilds the same batches from it and
trains its share of each global batch under DDP; rank 0 alone calibrates, saves and logs. Between moves the
other ranks wait in `follow_orders` until rank 0 sends the next order or says the game is over.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from detectors.batches import VideoPairedBatches, evaluation_samples
from detectors.clips import ClipBatches, ClipSet, clip_evaluation_samples
from detectors.meta import CLIP_KIND, kind_of, read_config
from detectors.train import MoveResult, continue_training
from forensics.data.cache import CacheConfig, FaceCache
from forensics.data.crops import FAKE, REAL, CropRef, CropSet
from forensics.training import distributed as D
from generators.blending.temporal import TEMPORAL_KINDS

# How long the other ranks may wait for rank 0's next order: a round's setup, generator moves and fakes can
# take hours on a big world, and a shorter timeout would kill a healthy game.
ORDER_TIMEOUT_S = 7 * 24 * 3600


@dataclass
class MoveOrder:
    """Everything a rank needs to play the detector's move, as plain data."""
    start: str                       # the champion's model folder (warm start)
    out: str                         # where rank 0 saves the candidate
    checkpoints: str                 # the loop's checkpoints (rank 0 writes them)
    cache: str                       # the game's face-crop cache
    cache_config: dict               # CacheConfig fields of that cache
    fakes: dict[str, str]            # fake video -> the real video it was made from (the fit fakes so far)
    seed: int
    batch_size: int                  # the global batch: N processes split it
    sbi_fraction: float
    epochs: int
    patience: int | None
    lr: float
    device: str
    meta: dict


def play_detector_move(order: MoveOrder, run=None, progress: bool = True) -> tuple[MoveResult | None, dict]:
    """Train the candidate from the order on this rank: (the move's result on rank 0, None elsewhere; the pool
    of crops it trained on)."""
    with D.solo(False):          # rank 0 plays the rest of the game alone; this phase has every rank
        return _play(order, run, progress)


def _play(order: MoveOrder, run, progress: bool) -> tuple[MoveResult | None, dict]:
    cache = FaceCache(Path(order.cache), CacheConfig(**order.cache_config))
    start = read_config(Path(order.start))
    if kind_of(start) == CLIP_KIND:
        batches, validation, pool = _clip_move(order, cache, start)
    else:
        batches, validation, pool = _frame_move(order, cache)
    result = continue_training(order.start, order.out, order.checkpoints, batches, validation, epochs=order.epochs,
                               patience=order.patience, lr=order.lr, seed=order.seed, device=order.device,
                               batch_size=order.batch_size, progress=progress and D.is_main(), run=run,
                               extra_meta=order.meta)
    return result, {**pool, "processes": D.world_size()}


def _frame_move(order: MoveOrder, cache: FaceCache):
    """Crops: each real training crop beside a fake made from its video (or its self-blend, sbi_fraction)."""
    crops = CropSet(cache, None)
    by_video: dict[str, list[CropRef]] = {}
    for ref in crops.refs:
        if ref.video in order.fakes:
            by_video.setdefault(order.fakes[ref.video], []).append(CropRef(ref.entry, ref.index, FAKE))
    reals = [r for r in crops.refs if r.entry.split == "train" and r.label != FAKE]
    batches = VideoPairedBatches(crops, reals, by_video, order.batch_size, order.seed, order.sbi_fraction)
    # Only rank 0 evaluates (the loop's rule), so only it builds the validation samples.
    validation = evaluation_samples(CropSet(cache, "val"), seed=order.seed, pseudo_fakes=True) if D.is_main() \
        else None
    return batches, validation, {"reals": len(reals), "fake_videos": len(order.fakes), "paired_videos": len(by_video)}


def _clip_move(order: MoveOrder, cache: FaceCache, start: dict):
    """Clips of a clip detector: each real training clip beside the game's fake clips (at the rate they exist)
    or a temporal pseudo-fake of itself, of the kinds the start model trained on, so its own skill is kept."""
    length = int(start["detector"]["clip_len"])
    kinds = list((start.get("trained") or {}).get("kinds") or TEMPORAL_KINDS)
    clips = ClipSet(cache, None, length)
    clips.refs = [r for r in clips.refs if (r.label == REAL and r.entry.split == "train")
                  or (r.label == FAKE and r.video in order.fakes)]
    batches = ClipBatches(clips, order.batch_size, order.seed, kinds=kinds)
    validation = clip_evaluation_samples(ClipSet(cache, "val", length), order.seed, kinds) if D.is_main() else None
    return batches, validation, {"reals": len(clips.reals), "fake_videos": len(order.fakes),
                                 "fake_clips": len(clips.fakes), "clip_len": length}


def send_order(order: MoveOrder | None) -> None:
    """Rank 0: tell the other ranks to play `order` (None: the game is over, leave)."""
    with D.solo(False):
        if D.is_distributed():
            D.broadcast_object(asdict(order) if order is not None else None)


def follow_orders() -> None:
    """Ranks other than 0: play every detector move rank 0 orders, until it says the game is over."""
    while True:
        fields: Any = D.broadcast_object(None)
        if fields is None:
            return
        play_detector_move(MoveOrder(**fields), run=None, progress=False)
