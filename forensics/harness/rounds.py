"""The rounds of the game, resumable step by step (see forensics.harness for the design).

Setup, once: the roles of the world's videos, the probes, G0's quality, the face-crop cache of every real
video, the panel (real test videos, their self-blends, G0's fakes, the held-out family's fakes) and D0's
panel scores. Round k: (1) each game generator moves against the champion -> G_k, or refused; (2) G_k's
product-path fakes: fresh fit and val fakes, and its panel column; (3) the detector moves from the champion ->
candidate D_k, or refused calibration; (4) every detector is scored on every panel column; (5) the gate
promotes D_k to champion or keeps it as a challenger, with the reason.

MLflow: a parent run in experiment `coevolve` and one nested run per round; see report.py for what is logged.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
import sys
import time
import zlib
from pathlib import Path

import numpy as np

from detectors.checkpoint import load_detector
from detectors.meta import CLIP_KIND
from detectors.promote import CHALLENGER, CHAMPION, register as register_model, resolve, resolve_detector
from forensics.data.cache import CacheConfig, FaceCache
from forensics.device import resolve_device
from forensics.harness.config import NOT_HASHED
from forensics.harness.evasion import evade, g0_quality
from forensics.harness.fakes import FakeStore, WorldRoles, sample_targets
from forensics.harness.gate import decide
from forensics.harness.logbook import Prefixed, open_run
from forensics.harness.moves import ORDER_TIMEOUT_S, MoveOrder, follow_orders, play_detector_move, send_order
from forensics.harness.panel import SBI, Panel, PanelScorer
from forensics.harness.quality import quality_selection
from forensics.harness.report import (append_once, finite, log_round, log_start, matrix, round_record, step_brief,
                                      summary_document, surrogate_gap)
from forensics.harness.state import STEPS, CoevolveState
from forensics.io import atomic_write_json
from forensics.probes import ProbeTrainConfig, train_probes
from forensics.synthetic.faceset import load_faceset
from forensics.training import distributed as D
from generators.evasion import ProductSurrogate
from generators.registry import get_generator

EXPERIMENT = "coevolve"


def run_coevolution(config, out_dir: str | Path, register: bool = True, progress: bool = True,
                    run_name: str | None = None) -> list[dict] | None:
    """Run (or resume) config.rounds rounds into out_dir; returns one record per finished round.

    Under torchrun rank 0 plays the game and every rank trains the detector's moves (moves.py); the other
    ranks return None."""
    with D.job(resolve_device(config.device).type, timeout_s=ORDER_TIMEOUT_S):
        if not D.is_main():
            follow_orders()
            return None
        try:
            with D.solo():           # probes and generator moves train on rank 0 alone
                return Harness(config, Path(out_dir), progress=progress).run(register=register, run_name=run_name)
        finally:
            send_order(None)


class Harness:
    def __init__(self, config, out_dir: Path, progress: bool = True):
        self.config, self.out, self.progress = config, Path(out_dir), progress
        self.device = resolve_device(config.device)          # a bad --device fails before any work
        if not config.game_generators:
            raise ValueError("coevolve: no generators configured")
        self.state = CoevolveState.open(self.out, config)
        self.families = {g["name"]: get_generator(g["family"]) for g in config.generators}
        self.game = [g["name"] for g in config.game_generators]
        self.held_out = [g["name"] for g in config.held_out_generators]
        self._prepare()

    # ------------------------------------------------------------------ setup
    def _prepare(self) -> None:
        cfg = self.config
        initial = self.state.doc.get("initial") or {
            "detector": resolve_detector(cfg.detector),
            "generators": {g["name"]: g["checkpoint"] for g in cfg.generators}}
        self.roles = WorldRoles.of(cfg.world, cfg.fit_fakes, cfg.val_fakes)
        loaded = {name: self.families[name].load(path) for name, path in initial["generators"].items()}
        sizes = {(int(m.size), float(m.margin)) for name, m in loaded.items() if name in self.game}
        if len(sizes) > 1:
            raise ValueError(f"coevolve: the game generators work at different crops ({sorted(sizes)}); they must "
                             f"share one")
        self.size, self.margin = sizes.pop()
        d0 = load_detector(initial["detector"])
        clip_len = int(d0.meta["detector"]["clip_len"]) if d0.kind == CLIP_KIND else None
        if clip_len is not None and cfg.frames < clip_len:
            raise ValueError(f"coevolve: frames ({cfg.frames}) must hold at least one clip of the clip detector "
                             f"{d0.name} ({clip_len} consecutive frames)")
        if abs(d0.crop_spec.margin - self.margin) > 1e-6:
            raise ValueError(f"{initial['detector']}: detector crops have margin {d0.crop_spec.margin}, the "
                             f"generators' {self.margin}: the faces would be framed differently")
        self.faces = load_faceset(cfg.world, size=self.size, margin=self.margin, progress=self.progress)
        train_ids = self.roles.identity_ids("train")
        self.identities = {n: self.families[n].game_identities(loaded[n], train_ids) for n in self.game}
        for name, ids in self.identities.items():
            outside = sorted(set(ids) - set(train_ids))
            if outside:
                raise ValueError(f"coevolve: {name} draws identities {outside} outside the world's train split; "
                                 f"the game trains only on train identities (pick a pair from the train split)")
        # A clip detector's cache samples windows of its clip length: its moves and the panel read clips.
        self.cache = FaceCache(self.out / "cache", CacheConfig(frames=cfg.frames, crop_size=d0.crop_spec.size,
                                                               margin=d0.crop_spec.margin, device=cfg.device,
                                                               clip_len=clip_len))
        self.store = FakeStore(self.out / "fakes", progress=self.progress)
        if self.state.doc.get("initial") is None:
            self.state.doc["initial"] = {**initial, "detector_sha256": d0.sha256, "crop": d0.crop_spec.to_dict(),
                                         "generator_crop": {"size": self.size, "margin": self.margin}}
            self.state.save()
        self.probes = train_probes(cfg.world, self.out / "probes", config=ProbeTrainConfig(
            size=self.size, margin=self.margin, epochs=cfg.probe_epochs, extra_scenes=cfg.probe_scenes,
            device=str(self.device), seed=cfg.seed))[:2]
        self.crops = {n: self.faces.select(np.isin(self.faces.identity, self.identities[n])
                                           & (self.faces.split == "train")) for n in self.game}
        context = load_faceset(cfg.world, size=d0.crop_spec.size, margin=self.margin, progress=self.progress,
                               identities=sorted({i for ids in self.identities.values() for i in ids}))
        self.surrogates = {n: ProductSurrogate(self.crops[n], context, self.families[n].blend_hull_scale)
                           for n in self.game}
        self.selection = {n: quality_selection(self.families[n], n, loaded[n], self.crops[n], self.identities[n],
                                               cfg.frames_per_pair) for n in self.game}
        self.panel_path = self.out / "panel.json"
        if self.state.doc.get("setup") is None:
            self._setup(loaded)
        self.panel = Panel.load(self.panel_path)
        self.panel.verify()
        self.scorer = PanelScorer(self.panel, self.cache, self.out / "scores", seed=cfg.seed)

    def _setup(self, loaded: dict) -> None:
        cfg = self.config
        self.say("setup: caching the real videos' faces, measuring G0, making G0's and the held-out fakes")
        self.cache.build(self.roles.train + self.roles.val + self.roles.test, progress=self.progress)
        Panel.create(self.panel_path, [r.path for r in self.roles.test])
        g0 = {n: g0_quality(self.families[n].name, self.state.doc["initial"]["generators"][n], self.crops[n],
                            self.selection[n], self.probes, cfg, cfg.seed, str(self.device)) for n in self.game}
        panel = Panel.load(self.panel_path)
        for name in self.held_out:
            self._panel_fakes(panel, name, loaded[name], 0, column=name)
        made = {}
        for name in self.game:
            made[name] = self._round_fakes(name, loaded[name], 0, 0)
            self._panel_fakes(panel, name, loaded[name], 0, column=f"{name}@G0")
        self.state.doc["setup"] = {"g0_quality": g0, "panel_hash": panel.digest(), "fakes": made, "roles": {
            split: len(getattr(self.roles, split)) for split in ("train", "val", "test")}}
        self.state.save()

    def _round_fakes(self, name: str, loaded, version: int, index: int) -> dict:
        """Fresh fit and val fakes of one generator version for round `index` (targets and CRFs drawn anew)."""
        rng = np.random.default_rng([self.config.seed, index, zlib.crc32(name.encode()), 0xF1])
        made = {}
        for role, count in (("fit", self.config.fit_fakes), ("val", self.config.val_fakes)):
            rows = self.roles.rows(role)
            made[role] = self.store.make(self.families[name], loaded, name, version, role,
                                         sample_targets(rows, count, rng), rows, rng, tuple(self.config.crf),
                                         self.device)
        self.cache.build([v.row() for vs in made.values() for v in vs], progress=False)
        return {**{role: len(videos) for role, videos in made.items()},
                "videos": {role: [v.path for v in videos] for role, videos in made.items()}}

    def _panel_fakes(self, panel: Panel, name: str, loaded, version: int, column: str) -> int:
        """One product-path fake per panel video, made once for this version: a new, frozen panel column."""
        rng = np.random.default_rng([self.config.seed, version, zlib.crc32(column.encode()), 0x9A])
        videos = self.store.make(self.families[name], loaded, name, version, "panel", self.roles.test,
                                 self.roles.test, rng, tuple(self.config.crf), self.device)
        self.cache.build([v.row() for v in videos], progress=False)
        with_face = {e.source for e in self.cache.entries() if len(e.faces)}
        panel.add_column(column, [(v.path, v.target, v.crf) for v in videos if v.path in with_face],
                         no_face=[v.path for v in videos if v.path not in with_face])
        return len(videos)

    # ------------------------------------------------------------------ driver
    def run(self, register: bool = True, run_name: str | None = None) -> list[dict]:
        parent = self._open_parent(run_name)
        status = "FAILED"
        try:
            if not parent.resumed and not self.state.done_rounds():   # the panel is still as set up
                log_start(parent, self.scorer, load_detector(self.state.doc["initial"]["detector"]),
                          self.panel.columns, self.config, self.game)
            for index in range(1, self.config.rounds + 1):
                if self.state.round_done(index):
                    self.say(f"round {index}: finished earlier, skipped")
                    continue
                self._round(index, parent, register)
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
        # the panel as set up (real videos, G0's and the held-out columns); later columns are appended, and a
        # param cannot change when a resumed run re-enters its parent
        params.update(config_hash=cfg.config_hash(), gen_size=self.size,
                      panel_setup_hash=self.state.doc["setup"]["panel_hash"])
        tags = {"rounds": cfg.rounds, "device": cfg.device, "out": str(self.out.resolve()),
                "held_out_family": cfg.held_out_family or "none"}
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

    def _round(self, index: int, parent, register: bool) -> None:
        rdir = self.out / f"round_{index:02d}"
        info = self.state.round(index)
        run = open_run(EXPERIMENT, f"round-{index:02d}", resume_id=info.get("run_id"), params={"round": index},
                       parent=parent)
        info["run_id"] = run.run_id
        self.state.save()
        status = "FAILED"
        try:
            for step in STEPS:
                if self.state.step(index, step) is not None:
                    self.say(f"round {index}/{self.config.rounds} {step}: finished earlier, skipped")
                    continue
                self.say(f"round {index}/{self.config.rounds} {step} ...")
                started = time.perf_counter()
                record = getattr(self, f"_step_{step}")(index, rdir, run, register)
                record = self.state.finish_step(index, step, record, time.perf_counter() - started)
                shutil.rmtree(rdir / "scratch", ignore_errors=True)
                self.say(f"round {index}/{self.config.rounds} {step}: {step_brief(step, record)} "
                         f"({record['seconds']:.1f} s)")
            # as JSON keeps it (lists, not tuples), so a resumed run returns the same records as a fresh one
            record = json.loads(json.dumps(round_record(index, self.state.round(index)["steps"], self.game,
                                                        self.panel.columns)))
            log_round(run, parent, index, record, self.state.round(index)["steps"]["panel"], self.scorer)
            self.state.finish_round(index, record)
            append_once(self.out / "rounds.jsonl", record)
            status = "FINISHED"
        except KeyboardInterrupt:
            status = "KILLED"
            raise
        finally:
            run.end(status)

    # ------------------------------------------------------------------ the steps
    def _step_generators(self, index: int, rdir: Path, run, register: bool) -> dict:
        cfg, champion = self.config, self.state.champion_at(index)
        done = self.state.partial(index, "generators")
        g0 = self.state.doc["setup"]["g0_quality"]
        for name in self.game:
            if name in done:
                continue
            start = self.state.generator_at(index, name)
            move = evade(self.families[name].name, start["checkpoint"], self.crops[name], self.identities[name],
                         champion["path"], cfg, rdir / "generators" / name, rdir / "scratch" / name,
                         seed=cfg.seed * 1013 + index, g0=g0[name], probes=self.probes,
                         selection=self.selection[name], surrogate=self.surrogates[name], device=cfg.device,
                         progress=self.progress, run=Prefixed(run, name), meta={"round": index, "name": name})
            done[name] = {**move, "from_version": start["version"],
                          "to_version": index if move["status"] == "accepted" else start["version"]}
            self.state.save()
        return {"adversary": champion, "moves": dict(done)}

    def _step_fakes(self, index: int, rdir: Path, run, register: bool) -> dict:
        made = {}
        for name in self.game:
            at = self.state.generator_at(index + 1, name)        # after this round's move
            loaded = self.families[name].load(at["checkpoint"])
            made[name] = {"version": at["version"], **self._round_fakes(name, loaded, at["version"], index)}
            column = f"{name}@G{at['version']}"
            if column not in self.panel.fake_columns:
                made[name]["panel"] = self._panel_fakes(self.panel, name, loaded, at["version"], column)
        self.panel.verify()
        return {"made": made, "panel_hash": self.panel.digest()}

    def _step_detector(self, index: int, rdir: Path, run, register: bool) -> dict:
        cfg, champion = self.config, self.state.champion_at(index)
        order = MoveOrder(start=str(champion["path"]), out=str(rdir / "detector"),
                          checkpoints=str(rdir / "scratch" / "detector"), cache=str(self.cache.root),
                          cache_config=dataclasses.asdict(self.cache.config),
                          fakes={v.path: v.target for v in self.store.videos(role="fit")},
                          seed=cfg.seed * 1009 + index, batch_size=cfg.detector_batch, sbi_fraction=cfg.sbi_fraction,
                          epochs=cfg.detector_epochs, patience=cfg.detector_patience, lr=cfg.detector_lr,
                          device=cfg.device, meta={"coevolve": {"round": index, "started_from": champion,
                                                                "config_hash": cfg.config_hash()}})
        send_order(order)                 # under torchrun, every rank trains its share of the move
        result, pool = play_detector_move(order, run=Prefixed(run, "detector"), progress=self.progress)
        return {"candidate": str(result.model_dir) if result.model_dir else None, "refused": result.refused,
                "threshold": result.threshold, "calibration": result.calibration, "validation": result.validation,
                "best_epoch": result.best_epoch, "epochs_run": result.epochs_run, "pool": pool,
                "train_loss": [record.get("train/loss") for record in result.history]}

    def _step_panel(self, index: int, rdir: Path, run, register: bool) -> dict:
        detectors = {"D0": self.state.doc["initial"]["detector"]}
        for previous in range(1, index + 1):
            candidate = self.state.step(previous, "detector")["candidate"]
            if candidate:
                detectors[f"D{previous}"] = candidate
        scores = {name: self.scorer.scores(load_detector(path)) for name, path in detectors.items()}
        champion = self.state.champion_at(index)
        gaps = {name: surrogate_gap(self.families[name], self.state.generator_at(index + 1, name), self.crops[name],
                                    self.selection[name], self.surrogates[name], load_detector(champion["path"]),
                                    self.scorer,
                                    self.panel, f"{name}@G{self.state.generator_at(index + 1, name)['version']}")
                for name in self.game}
        return {"detectors": detectors, "matrix": matrix(self.scorer, scores, self.panel.columns, self.config),
                "surrogate_gap": gaps}

    def _step_promotion(self, index: int, rdir: Path, run, register: bool) -> dict:
        cfg, champion = self.config, self.state.champion_at(index)
        move = self.state.step(index, "detector")
        columns = self.panel.columns
        champion_scores = self.scorer.scores(load_detector(champion["path"]))
        both = {"champion": {c: self.scorer.column(champion_scores, c) for c in columns}}
        if move["candidate"]:
            candidate_scores = self.scorer.scores(load_detector(move["candidate"]))
            both["candidate"] = {c: self.scorer.column(candidate_scores, c) for c in columns}
        d0_scores = self.scorer.scores(load_detector(self.state.doc["initial"]["detector"]))
        native = tuple(c for c in columns if c == SBI or c in self.held_out)
        decision = decide(both.get("candidate"), both["champion"], move["refused"], cfg.bootstrap, cfg.confidence,
                          cfg.tolerance, cfg.seed + index, d0={c: self.scorer.column(d0_scores, c) for c in native},
                          native=native)
        version = None
        if move["candidate"] and register:
            version = register_model(run, move["candidate"], alias=CHAMPION if decision.promote else CHALLENGER)
        run.set_tags({"promotion": decision.reason[:500]})
        return {"candidate": move["candidate"], "champion_before": champion, "promoted": decision.promote,
                "decision": decision.to_dict(), "registered_version": version}

    # ------------------------------------------------------------------ closing
    def _finish(self, parent, register: bool) -> list[dict]:
        done = self.state.done_rounds()
        records = [self.state.round(i)["record"] for i in done]
        champion = self.state.champion_at(done[-1] + 1) if done else {"path": self.state.doc["initial"]["detector"],
                                                                       "name": "D0"}
        loaded = load_detector(champion["path"])
        promoted = [r["promotion"] for r in records if r["promotion"]["promoted"]]
        version = promoted[-1]["registered_version"] if promoted else None
        if register and not promoted:
            registered = resolve(CHAMPION)
            if registered is None or load_detector(registered).sha256 != loaded.sha256:
                version = register_model(parent, champion["path"], alias=CHAMPION)
        self.state.doc["champion"] = {**champion, "sha256": loaded.sha256, "version": version}
        self.state.save()
        summary = summary_document(self.config, records, self.state.doc, parent, self.panel)
        atomic_write_json(self.out / "summary.json", summary)
        parent.log_dict(summary, "summary.json")
        parent.set_tags({"champion": f"{champion['name']} ({champion['path']})"})
        return records

    def say(self, line: str) -> None:
        if self.progress:
            print(f"coevolve: {line}", file=sys.stderr, flush=True)
