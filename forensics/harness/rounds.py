"""The rounds: (a) fresh fakes, (b) evaluate, (c) detector fine-tune, evaluate again, (d) generators evade the
frozen detector, (e) evaluate on their new fakes; resumable step by step (see forensics.harness for the design).

MLflow: a parent run in experiment `coevolve` (params: the config; metrics: every round's metrics at
step=round; auc_rounds.png; the champion model) and one nested run per round logging, at step=round:
- auc/<g>, eer/<g>, ap/<g>, evasion_rate/<g> (+ video_auc/<g>) of the round's starting detector on the new
  fakes (step b; g = each generator and "sbi"), the same as *_retrained/<g> after step (c) and *_after/<g>
  on the evaded generators' fakes (step e);
- quality/<g>/before|after|reverted and evasion_weight/<g> (step d), detector/* (step c), time/<step>_s;
- the fine-tunes' own curves under detector/... and <g>/attempt_<k>/...;
- roc/<g>.png (before, retrained, after evasion) and samples/<g>.png (real target | fake before | after).
"""
from __future__ import annotations

import shutil
import sys
import time
import zlib
from pathlib import Path

import numpy as np

from detectors.batches import PairedFakeBatches
from detectors.checkpoint import load_detector
from detectors.promote import CHAMPION, register as register_model, resolve_detector
from detectors.train import fine_tune
from forensics.device import resolve_device
from forensics.figures import auc_rounds_figure
from forensics.harness.calibration import calibrate_champion
from forensics.harness.config import NOT_HASHED
from forensics.harness.evaluate import (SBI, flat_metrics, load_scores, roc_of_round, sample_grid_of_round,
                                        save_scores, score_detector)
from forensics.harness.evasion import evade
from forensics.harness.fakes import check_two_videos, held_out_identities, sbi_fakes
from forensics.harness.logbook import Prefixed, open_run
from forensics.harness.replay import ReplayBuffer
from forensics.harness.report import append_once, finite, round_record, step_brief, summary_document
from forensics.harness.state import STEPS, CoevolveState
from forensics.io import atomic_path, atomic_write_json
from forensics.synthetic.faceset import PORTIONS, load_faceset
from generators.family import FakeBatch
from generators.registry import get_generator

EXPERIMENT = "coevolve"
SUFFIX = {"before": "", "retrained": "_retrained", "after": "_after"}
SCRATCH = {"detector": ("detector_ckpt",), "generators": ("generator_ckpt",)}


def run_coevolution(config, out_dir: str | Path, register: bool = True, progress: bool = True,
                    run_name: str | None = None) -> list[dict]:
    """Run (or resume) config.rounds rounds into out_dir; returns one record per finished round."""
    return Harness(config, Path(out_dir), progress=progress).run(register=register, run_name=run_name)


class Harness:
    def __init__(self, config, out_dir: Path, progress: bool = True):
        self.config, self.out, self.progress = config, Path(out_dir), progress
        resolve_device(config.device)                       # a bad --device fails before any work
        self.state = CoevolveState.open(self.out, config)
        self.kinds = {g["name"]: g["family"] for g in config.generators}
        self.families = {name: get_generator(family) for name, family in self.kinds.items()}
        if not self.kinds:
            raise ValueError("coevolve: no generators configured")
        self._prepare()

    # ------------------------------------------------------------------ setup
    def _prepare(self) -> None:
        cfg = self.config
        initial = self.state.doc.get("initial") or {
            "detector": resolve_detector(cfg.detector),
            "generators": {g["name"]: g["checkpoint"] for g in cfg.generators}}
        loaded = {name: self.families[name].load(path) for name, path in initial["generators"].items()}
        crops = {name: (int(model.size), float(model.margin)) for name, model in loaded.items()}
        if len(set(crops.values())) > 1:
            described = ", ".join(f"{n}: {s}px margin {m}" for n, (s, m) in crops.items())
            raise ValueError(f"coevolve: generators work at different crops ({described}); they must share one")
        self.size, self.margin = next(iter(crops.values()))
        detector = load_detector(initial["detector"])
        if abs(float(detector.crop.get("margin", 0.25)) - self.margin) > 1e-6:
            raise ValueError(f"{initial['detector']}: detector crops have margin {detector.crop.get('margin')}, the "
                             f"generators' {self.margin}: the faces would be framed differently")
        if not (Path(cfg.world) / "manifest.csv").is_file():
            raise ValueError(f"{cfg.world}: not a synthetic world (no manifest.csv); render one with `forensics synth`")
        self.faces = load_faceset(cfg.world, size=self.size, margin=self.margin, progress=self.progress)
        self.held_out = held_out_identities(self.faces, cfg.identities)
        self.identities = {name: self.families[name].game_identities(model, self.held_out)
                           for name, model in loaded.items()}
        for name, ids in self.identities.items():
            outside = sorted(set(ids) - set(self.held_out))
            if outside:
                print(f"coevolve: warning: {name} ({initial['generators'][name]}) swaps identities {outside}, which "
                      f"are not held out; its fakes are made anyway", file=sys.stderr, flush=True)
        for ids in self.identities.values():
            for identity in ids:
                check_two_videos(self.faces, identity)
        if self.state.doc.get("initial") is None:
            self.state.doc["initial"] = {**initial, "detector_sha256": detector.sha256,
                                         "crop": {"size": self.size, "margin": self.margin}, "held_out": self.held_out}
            self.state.save()

    # ------------------------------------------------------------------ driver
    def run(self, register: bool = True, run_name: str | None = None) -> list[dict]:
        parent = self._open_parent(run_name)
        status = "FAILED"
        try:
            for index in range(1, self.config.rounds + 1):
                if self.state.round_done(index):
                    self.say(f"round {index}: finished earlier, skipped")
                    continue
                self._round(index, parent)
            records = self._finish(parent, register)
            status = "FINISHED"
            return records
        except KeyboardInterrupt:
            status = "KILLED"
            raise
        finally:
            parent.end(status)

    def _open_parent(self, run_name: str | None):
        cfg, old = self.config, self.state.doc.get("parent_run_id")
        params = {k: v for k, v in cfg.to_dict().items() if k not in NOT_HASHED}
        params.update(config_hash=cfg.config_hash(), held_out=self.held_out, gen_size=self.size)
        tags = {"rounds": cfg.rounds, "device": cfg.device, "out": str(self.out.resolve())}
        parent = open_run(EXPERIMENT, run_name or f"coevolve-{time.strftime('%m%d-%H%M')}", resume_id=old,
                          params=params, tags=tags)
        if old and not parent.resumed:
            self.say(f"MLflow: parent run {old} is not in the tracking store any more; continuing in new parent run "
                     f"{parent.run_id}")
            for index in self.state.done_rounds():
                parent.log_metrics(finite(self.state.round(index)["record"]["metrics"]), step=index)
        self.state.doc["parent_run_id"] = parent.run_id
        self.state.save()
        return parent

    def _round(self, index: int, parent) -> None:
        rdir = self.out / f"round_{index:02d}"
        info = self.state.round(index)
        run = open_run(EXPERIMENT, f"round-{index:02d}", resume_id=info.get("run_id"), params={"round": index},
                       parent=parent)
        info["run_id"] = run.run_id
        self.state.save()
        status = "FAILED"
        try:
            for step in STEPS:
                record = self.state.step(index, step)
                if record is not None:
                    self.say(f"round {index}/{self.config.rounds} {step}: finished earlier, skipped")
                    if not run.resumed:
                        self._log_step(run, index, step, record)
                    continue
                self.say(f"round {index}/{self.config.rounds} {step} ...")
                started = time.perf_counter()
                record = getattr(self, f"_step_{step}")(index, rdir, run)
                record = self.state.finish_step(index, step, record, time.perf_counter() - started)
                for scratch in SCRATCH.get(step, ()):   # training states: only an unfinished step resumes from them
                    shutil.rmtree(rdir / scratch, ignore_errors=True)
                self._log_step(run, index, step, record)
                self.say(f"round {index}/{self.config.rounds} {step}: {step_brief(record)} ({record['seconds']:.1f} s)")
            record = self._close_round(index, rdir, run, parent)
            self.state.finish_round(index, record)
            append_once(self.out / "rounds.jsonl", record)
            status = "FINISHED"
        except KeyboardInterrupt:
            status = "KILLED"
            raise
        finally:
            run.end(status)

    def _log_step(self, run, index: int, step: str, record: dict) -> None:
        metrics = {**record.get("metrics", {}), f"time/{step}_s": record.get("seconds", 0.0)}
        run.log_metrics(finite(metrics), step=index)

    # ------------------------------------------------------------------ the steps
    def _step_fakes(self, index: int, rdir: Path, run) -> dict:
        cfg, checkpoints = self.config, self.state.generators_for(index)
        files, counts = {}, {}
        for name, family in self.families.items():
            model = family.load(checkpoints[name], device=self._device())
            for k, portion in enumerate(PORTIONS):
                rng = np.random.default_rng([cfg.seed, index, k, zlib.crc32(name.encode())])
                batch = family.select_fakes(name, model, self.faces, self.identities[name], portion,
                                            cfg.fakes_per_family, cfg.frames_per_pair, rng)
                batch = family.draw_fakes(model, self.faces, batch)
                files.setdefault(name, {})[portion] = str(batch.save(rdir / "fakes" / f"{name}_{portion}.npz"))
                counts[f"fakes/{name}_{portion}"] = float(len(batch))
        return {"files": files, "checkpoints": checkpoints, "metrics": counts}

    def _evaluate(self, index: int, rdir: Path, detector_dir: str, step: str, after: bool = False) -> dict:
        detector = load_detector(detector_dir, device=self._device())
        suffix = "_eval_after" if after else "_eval"
        batches = {name: FakeBatch.load(rdir / "fakes" / f"{name}{suffix}.npz") for name in self.kinds}
        result = score_detector(detector, self.faces, batches, self.identities, self.held_out, self.config.seed,
                                include_sbi=not after)
        save_scores(rdir / f"scores_{step}.npz", result["scores"])
        return {"detector": str(detector_dir), "threshold": detector.threshold, "summary": result["summary"],
                "metrics": flat_metrics(result["summary"], SUFFIX[step])}

    def _step_before(self, index: int, rdir: Path, run) -> dict:
        return self._evaluate(index, rdir, self.state.detector_for(index), "before")

    def _step_retrained(self, index: int, rdir: Path, run) -> dict:
        return self._evaluate(index, rdir, self.state.step(index, "detector")["path"], "retrained")

    def _step_after(self, index: int, rdir: Path, run) -> dict:
        families = self.state.step(index, "generators")["families"]
        for name, family in self.families.items():
            model = family.load(families[name]["checkpoint"], device=self._device())
            batch = family.draw_fakes(model, self.faces, FakeBatch.load(rdir / "fakes" / f"{name}_eval.npz"))
            batch.save(rdir / "fakes" / f"{name}_eval_after.npz")
        return self._evaluate(index, rdir, self.state.step(index, "detector")["path"], "after", after=True)

    def _step_detector(self, index: int, rdir: Path, run) -> dict:
        cfg = self.config
        ids = sorted(set(self.held_out).union(*self.identities.values()))
        rows = self.faces.portion_rows(ids, "fit")
        reals, landmarks = self.faces.images[rows], self.faces.landmarks[rows]
        fit = {name: FakeBatch.load(rdir / "fakes" / f"{name}_fit.npz") for name in self.kinds}
        new = np.concatenate([b.images for b in fit.values()])
        replay = ReplayBuffer(self.out / "replay", cfg.replay_cap, cfg.seed)
        old = replay.load(before_round=index)
        pseudo = sbi_fakes(self.faces, rows, cfg.seed + 7)
        calibration = (np.r_[np.zeros(len(reals)), np.ones(len(new) + len(pseudo))].astype(np.int64),
                       np.concatenate([reals, new, pseudo]))
        seed = cfg.seed * 1009 + index
        batches = PairedFakeBatches(reals, landmarks, new, old, cfg.detector_batch, cfg.sbi_fraction,
                                    cfg.replay_fraction, seed=seed, real_scenes=self.faces.video[rows],
                                    new_scenes=np.concatenate([b.scenes(self.faces) for b in fit.values()]))
        start = self.state.detector_for(index)
        result = fine_tune(start, rdir / "detector", rdir / "detector_ckpt", batches, calibration,
                           epochs=cfg.detector_epochs, lr=cfg.detector_lr, seed=seed, device=cfg.device,
                           progress=self.progress, run=Prefixed(run, "detector"),
                           extra_meta={"coevolve": {"round": index, "config_hash": cfg.config_hash(),
                                                    "started_from": start, "train_reals": int(len(reals)),
                                                    "new_fakes": int(len(new)), "replay_fakes": int(len(old))}})
        for name, batch in fit.items():
            replay.add(index, name, batch.images)
        if result["calibration_refused"]:
            self.say(f"round {index} detector: {result['calibration_refused']}")
        metrics = {f"detector/{k}": v for k, v in result["metrics"].items()}
        metrics.update({"detector/threshold": result["threshold"], "detector/replay_fakes": float(len(old)),
                        "detector/new_fakes": float(len(new)), "detector/reals": float(len(reals)),
                        "detector/calibration_refused": float(bool(result["calibration_refused"]))})
        return {"path": str(rdir / "detector"), **result, "metrics": metrics}

    def _step_generators(self, index: int, rdir: Path, run) -> dict:
        cfg, checkpoints = self.config, self.state.generators_for(index)
        detector_dir = self.state.step(index, "detector")["path"]
        done = self.state.partial(index, "generators")
        for name, family in self.kinds.items():
            if name in done:
                self.say(f"round {index} generators: {name} finished earlier, skipped")
                continue
            rows = self.faces.portion_rows(self.identities[name], "fit")
            done[name] = evade(family, checkpoints[name], self.faces.select(rows), self.identities[name], detector_dir,
                               cfg,
                               rdir / "generators" / name, rdir / "generator_ckpt" / name,
                               seed=cfg.seed * 1013 + index, device=cfg.device, progress=self.progress,
                               run=Prefixed(run, name), meta={"round": index, "name": name})
            self.state.save()
            self.say(f"round {index} generators: {name} {done[name]['quality_guard']} (weight "
                     f"{done[name]['evasion_weight']:g}, quality {done[name]['quality_before']:.4f} -> "
                     f"{done[name]['quality_after']:.4f})")
        metrics = {}
        for name, rec in done.items():
            metrics.update({f"quality/{name}/before": rec["quality_before"],
                            f"quality/{name}/after": rec["quality_after"],
                            f"quality/{name}/reverted": float(rec["quality_guard"] == "reverted"),
                            f"evasion_weight/{name}": rec["evasion_weight"]})
        return {"families": dict(done), "metrics": metrics}

    # ------------------------------------------------------------------ closing
    def _close_round(self, index: int, rdir: Path, run, parent) -> dict:
        steps = self.state.round(index)["steps"]
        scores = {"before": load_scores(rdir / "scores_before.npz"),
                  "retrained": load_scores(rdir / "scores_retrained.npz"),
                  "after evasion": load_scores(rdir / "scores_after.npz")}
        for name in [*self.kinds, SBI]:
            fig = roc_of_round(name, scores, index)
            if fig is not None:
                run.log_figure(fig, f"roc/{name}.png")
        for name in self.kinds:
            before = FakeBatch.load(rdir / "fakes" / f"{name}_eval.npz")
            after = FakeBatch.load(rdir / "fakes" / f"{name}_eval_after.npz")
            grid = sample_grid_of_round(self.faces, before, after, scores["retrained"].get(name, {}).get("fake_probs"),
                                        scores["after evasion"].get(name, {}).get("fake_probs"))
            run.log_image(grid, f"samples/{name}.png")
        record = round_record(index, steps, self.kinds)
        parent.log_metrics(finite(record["metrics"]), step=index)
        run.log_dict(record, "round.json")
        return record

    def _finish(self, parent, register: bool) -> list[dict]:
        done = self.state.done_rounds()
        records = [self.state.round(i)["record"] for i in done]
        names = [*self.kinds, SBI]
        before = {n: [r["families"].get(n, r["sbi"])["auc_before"] for r in records] for n in names}
        after = {n: [r["families"].get(n, r["sbi"])["auc_retrained"] for r in records] for n in names}
        parent.log_figure(auc_rounds_figure(done, before, after, title="detector AUC per round (co-evolution)"),
                          "auc_rounds.png")
        final = self.state.step(done[-1], "detector")["path"]
        champion_dir = self.out / "champion"
        champion = self.state.doc.get("champion") or {}
        if (champion.get("round") != done[-1] or (register and not champion.get("version"))
                or not (champion_dir / "config.json").is_file()):
            copy_detector(final, champion_dir)
            native = calibrate_champion(champion_dir, self.config.world, self.out / "calibration_cache",
                                        seed=self.config.seed, device=self.config.device)
            parent.log_metrics(finite({f"champion/native_{k}": v for k, v in native.items()
                                       if isinstance(v, (int, float))}))
            self.say(f"coevolve: champion recalibrated on native crops: video AUC {native['video_auc']:.3f}, "
                     f"threshold {native['threshold']:.3f}")
            version = register_model(parent, champion_dir, alias=CHAMPION) if register else None
            champion = {"path": str(champion_dir), "round": done[-1], "source": final, "version": version}
            self.state.doc["champion"] = champion
            self.state.save()
        summary = summary_document(self.config, records, champion, parent, self.held_out,
                                   {"size": self.size, "margin": self.margin})
        atomic_write_json(self.out / "summary.json", summary)
        parent.log_dict(summary, "summary.json")
        return records

    # ------------------------------------------------------------------ helpers
    def _device(self):
        return resolve_device(self.config.device)

    def say(self, line: str) -> None:
        if self.progress:
            print(f"coevolve: {line}", file=sys.stderr, flush=True)


def copy_detector(source: str | Path, target: Path) -> Path:
    """Weights then config.json, each replaced atomically (config.json carries the weights' hash)."""
    target.mkdir(parents=True, exist_ok=True)
    for name in ("model.safetensors", "config.json"):
        with atomic_path(target / name) as tmp:
            shutil.copyfile(Path(source) / name, tmp)
    return target
