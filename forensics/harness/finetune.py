"""Step (c): the detector learns this round's fakes without forgetting the earlier ones or the generic blend.

Every batch is half real crops (the fit portion) and half fakes drawn, per sample, from self-blended
pseudo-fakes of those reals (`sbi_fraction`: keeps the generator-agnostic blending cue alive), the replay
buffer of earlier rounds' fakes (`replay_fraction`: what the detector caught before must stay caught) and
this round's new fakes (the rest). A new fake is drawn from those made in the same video as the real it is
paired with (a face swap's target frame, an animation's source still; a self-blend is made from that very
real), so that within a batch the scene (person, light, camera noise, background) says nothing about the
label: with one video per held-out person and portion, the detector otherwise learns scenes. Training
starts from the current detector's weights at a low learning rate in the shared loop (so an interrupted
fine-tune resumes from its checkpoint); afterwards the Platt calibration and the EER threshold are refitted
on the fit portion, because the score scale moves.
"""
from __future__ import annotations

import re
import zlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

REAL, FAKE = 0, 1


class DetectorBatches:
    """One epoch of balanced batches, drawn from (seed, epoch, rank); sized so the loop can show progress."""

    def __init__(self, task: "HarnessDetectorTask", epoch: int, rank: int, world_size: int):
        self.task, self.epoch = task, epoch
        self.rng = np.random.default_rng([task.seed, epoch, rank, 0xC0E])
        order = np.random.default_rng([task.seed, epoch]).permutation(len(task.reals))
        self.order = order[rank::world_size]
        self.half = max(1, task.batch_size // 2)
        self.count = max(1, len(task.reals) // (self.half * world_size))

    def __len__(self) -> int:
        return self.count

    def __iter__(self):
        from forensics.data.crops import Sample, augment_sample

        task, rng = self.task, self.rng
        sources = [(k, w) for k, w in (("sbi", task.sbi_fraction), ("replay", task.replay_fraction),
                                       ("new", task.new_fraction)) if w > 0]
        weights = np.array([w for _, w in sources]) / sum(w for _, w in sources)
        for b in range(self.count):
            rows = self.order[b * self.half:(b + 1) * self.half]
            if len(rows) < self.half:
                rows = rng.choice(len(task.reals), self.half, replace=True)
            samples = [Sample(task.reals[r], REAL, "real", int(r), "real") for r in rows]
            for r in rows:
                kind = sources[int(rng.choice(len(sources), p=weights))][0]
                samples.append(Sample(task.fake(kind, int(r), rng), FAKE, kind, int(r), kind))
            if task.augment:
                samples = [augment_sample(s, rng) for s in samples]
            images = np.stack([s.image for s in samples])
            labels = np.array([s.label for s in samples], np.float32)
            yield task.model.preprocess(images), torch.from_numpy(labels)


class HarnessDetectorTask:
    """TrainTask fine-tuning a saved detector on reals vs (pseudo, replayed, new) fakes; see module docstring."""

    def __init__(self, start_dir: str | Path, reals: np.ndarray, landmarks: np.ndarray, new_fakes: np.ndarray,
                 replay: np.ndarray, batch_size: int, lr: float, sbi_fraction: float, replay_fraction: float,
                 seed: int = 0, augment: bool = True, real_scenes: np.ndarray | None = None,
                 new_scenes: np.ndarray | None = None):
        if len(reals) == 0:
            raise ValueError("coevolve: no real crops to fine-tune the detector on")
        self.start_dir = Path(start_dir)
        self.reals, self.landmarks = reals, landmarks
        self.new_fakes, self.replay = new_fakes, replay
        self.same_scene = same_scene_pools(real_scenes, new_scenes, len(reals), len(new_fakes))
        self.batch_size, self.lr, self.seed, self.augment = batch_size, lr, seed, augment
        self.sbi_fraction = float(sbi_fraction)
        self.replay_fraction = float(replay_fraction) if len(replay) else 0.0
        self.new_fraction = max(0.0, 1.0 - self.sbi_fraction - self.replay_fraction) if len(new_fakes) else 0.0
        if self.sbi_fraction + self.replay_fraction + self.new_fraction <= 0:
            self.sbi_fraction = 1.0        # nothing else to learn from: pseudo-fakes only
        self.model = None
        self.meta: dict = {}

    def build(self, device: torch.device) -> dict[str, torch.nn.Module]:
        from detectors import load_detector

        loaded = load_detector(self.start_dir, device="cpu")
        self.model, self.meta = loaded.model, loaded.meta
        return {"model": self.model}

    def configure_optimizers(self, modules) -> dict[str, torch.optim.Optimizer]:
        return {"main": torch.optim.AdamW(modules["model"].parameters(), lr=self.lr, weight_decay=1e-4)}

    def train_batches(self, epoch: int, rank: int, world_size: int) -> DetectorBatches:
        return DetectorBatches(self, epoch, rank, world_size)

    def training_step(self, batch, ctx) -> dict[str, float]:
        images, labels = batch
        images, labels = images.to(ctx.device, non_blocking=True), labels.to(ctx.device)
        logits = ctx.modules["model"](images).float()
        loss = F.binary_cross_entropy_with_logits(logits, labels)
        ctx.backward(loss, "main")
        return {"loss": loss.detach(), "acc": ((logits > 0).float() == labels).float().mean().detach()}

    def fake(self, kind: str, row: int, rng: np.random.Generator) -> np.ndarray:
        if kind == "sbi":
            from generators.blending import self_blend

            return self_blend(self.reals[row], self.landmarks[row], rng)[0]
        if kind == "replay":
            return self.replay[int(rng.integers(len(self.replay)))]
        pool = self.same_scene[row] if self.same_scene is not None else None
        if pool is None or len(pool) == 0:
            return self.new_fakes[int(rng.integers(len(self.new_fakes)))]
        return self.new_fakes[int(pool[int(rng.integers(len(pool)))])]


def same_scene_pools(real_scenes, new_scenes, n_reals: int, n_new: int) -> list[np.ndarray] | None:
    """Per real row, the new fakes made in the same video (empty: none was, any new fake is drawn)."""
    if real_scenes is None or new_scenes is None:
        return None
    real_scenes, new_scenes = np.asarray(real_scenes), np.asarray(new_scenes)
    if len(real_scenes) != n_reals or len(new_scenes) != n_new:
        raise ValueError(f"coevolve: scene labels do not match the crops ({len(real_scenes)} for {n_reals} reals, "
                         f"{len(new_scenes)} for {n_new} new fakes)")
    by_scene = {int(v): np.flatnonzero(new_scenes == v) for v in np.unique(new_scenes)}
    empty = np.zeros(0, np.int64)
    return [by_scene.get(int(v), empty) for v in real_scenes]


def fine_tune_detector(start_dir: str | Path, out_dir: str | Path, checkpoint_dir: str | Path, reals: np.ndarray,
                       landmarks: np.ndarray, new_fakes: np.ndarray, replay: np.ndarray,
                       calibration_set: tuple[np.ndarray, np.ndarray], config, seed: int, device: str,
                       progress: bool = True, run=None, extra_meta: dict | None = None,
                       real_scenes: np.ndarray | None = None, new_scenes: np.ndarray | None = None) -> dict:
    """Fine-tune, recalibrate on `calibration_set` (labels, uint8 crops) and save to out_dir; returns the
    fit-portion metrics and calibration recorded in the saved checkpoint's config.json. real_scenes/new_scenes
    (the video each real and new fake was made in) pair every real with a fake of the same video."""
    from detectors import save_detector
    from forensics.device import resolve_device
    from forensics.metrics import apply_platt, calibrate_threshold, fit_platt, summarize_scores
    from forensics.training import TrainConfig, Trainer
    from forensics.training.detector_task import predict_logits

    task = HarnessDetectorTask(start_dir, reals, landmarks, new_fakes, replay, config.detector_batch,
                               config.detector_lr, config.sbi_fraction, config.replay_fraction, seed=seed,
                               real_scenes=real_scenes, new_scenes=new_scenes)
    train = TrainConfig(epochs=config.detector_epochs, device=device, seed=seed, patience=None, monitor=None,
                        checkpoint_dir=str(checkpoint_dir), progress=progress, log_every=5)
    fit = Trainer(task, train, run=run).fit()
    model = task.model.to(resolve_device(device)).eval()
    labels, images = calibration_set
    logits = predict_logits(model, list(images), resolve_device(device))
    calibration = fit_platt(labels, logits)
    if calibration["a"] <= 0:
        # The fine-tuned model ranks its own training fakes below the reals: a Platt fit would invert every
        # score downstream (and in `forensics detect`). Keep the previous scale instead and say so.
        calibration = {**(task.meta.get("calibration") or {"a": 1.0, "b": 0.0}), "note": "refit gave a <= 0; kept"}
    probs = apply_platt(calibration, logits)
    threshold = float(calibrate_threshold(labels, probs, method="eer"))
    summary = summarize_scores(labels, probs, threshold=threshold)
    metrics = {f"fit/frame_{k}": float(v) for k, v in summary.items() if k in ("auc", "eer", "ap", "acc")}
    keep = {k: v for k, v in task.meta.items() if k in ("crop", "aggregate")}
    lineage = list(task.meta.get("lineage") or []) + [{"path": str(start_dir), "name": task.meta.get("detector", {})
                                                       .get("name"), "calibration": task.meta.get("calibration"),
                                                       "threshold": task.meta.get("threshold")}]
    meta = {**keep, "threshold": threshold, "calibration": calibration, "metrics": metrics,
            "threshold_level": "frame (EER of the co-evolution fit portion)", "lineage": lineage,
            "trained": {"epochs_run": fit.epochs_run, "train_reals": int(len(reals)), "new_fakes": int(len(new_fakes)),
                        "replay_fakes": int(len(replay)), "lr": config.detector_lr, "seed": seed},
            **(extra_meta or {})}
    save_detector(out_dir, model.cpu(), meta)
    return {"threshold": threshold, "calibration": calibration, "metrics": metrics, "epochs_run": fit.epochs_run}


class ReplayBuffer:
    """Earlier rounds' fakes as uint8 .npy files (one per round and generator), capped in total.

    The cap is shared evenly: each file keeps at most cap // files rows, trimmed by a seeded choice, so
    adding a round shrinks the older ones and a repeated add (a resumed round) changes nothing.
    """

    PATTERN = re.compile(r"^round_(\d+)_(.+)\.npy$")

    def __init__(self, folder: str | Path, cap: int, seed: int = 0):
        self.folder, self.cap, self.seed = Path(folder), int(cap), seed

    def files(self) -> list[tuple[int, str, Path]]:
        out = []
        for path in sorted(self.folder.glob("round_*.npy")):
            match = self.PATTERN.match(path.name)
            if match:
                out.append((int(match.group(1)), match.group(2), path))
        return out

    def load(self, before_round: int) -> np.ndarray:
        parts = [np.load(p, allow_pickle=False) for r, _, p in self.files() if r < before_round]
        parts = [p for p in parts if len(p)]
        return np.concatenate(parts) if parts else np.zeros((0, 1, 1, 3), np.uint8)

    def add(self, round_index: int, name: str, images: np.ndarray) -> None:
        if self.cap <= 0 or len(images) == 0:
            return
        target = self.folder / f"round_{round_index:02d}_{name}.npy"
        if not target.exists():
            self._write(target, images)
        files = self.files()
        quota = max(1, self.cap // len(files))
        for r, n, path in files:
            rows = np.load(path, allow_pickle=False)
            if len(rows) > quota:
                rng = np.random.default_rng([self.seed, r, zlib.crc32(n.encode()), quota])
                keep = np.sort(rng.choice(len(rows), quota, replace=False))
                self._write(path, rows[keep])

    @staticmethod
    def _write(path: Path, images: np.ndarray) -> None:
        from forensics.io import atomic_path

        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, np.ascontiguousarray(images, np.uint8))
