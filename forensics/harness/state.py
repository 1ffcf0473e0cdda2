"""OUT/state.json: what a co-evolution run has finished, so an interrupted one resumes where it stopped.

Written atomically after every finished step (and every finished generator inside step (d)), so whatever
kills the process, the file on disk names only outputs that are complete. A rerun into the same folder
with a different experiment (config hash) is refused rather than mixing two experiments' rounds.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from forensics.io import atomic_write_json

FORMAT = "forensics-coevolve/2"
# A round: the generators move against the champion, their new versions' fakes are made, the detector moves,
# every detector is scored on the panel, and the candidate is promoted or not.
STEPS = ("generators", "fakes", "detector", "panel", "promotion")


class CoevolveState:
    def __init__(self, path: Path, doc: dict):
        self.path, self.doc = path, doc

    @classmethod
    def open(cls, out_dir: Path, config) -> "CoevolveState":
        path = Path(out_dir) / "state.json"
        if path.is_file():
            try:
                doc = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise ValueError(f"{path}: unreadable co-evolution state ({' '.join(str(exc).split())})") from None
            if doc.get("format") != FORMAT:
                raise ValueError(f"{path}: not a co-evolution state file (format {doc.get('format')!r})")
            started = doc.get("initial") is not None or doc.get("rounds")
            if doc.get("config_hash") != config.config_hash() and not started:
                doc = None                         # a start that failed before any work: begin afresh
            elif doc.get("config_hash") != config.config_hash():
                raise ValueError(f"{path.parent}: made with a different co-evolution config (hash "
                                 f"{doc.get('config_hash')} vs {config.config_hash()}); use another --out or the "
                                 f"same settings to resume")
            if doc is not None:
                doc["config"] = config.to_dict()   # rounds/device may differ: they are not part of the hash
                return cls(path, doc)
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        doc = {"format": FORMAT, "config_hash": config.config_hash(), "config": config.to_dict(),
               "created": _now(), "initial": None, "setup": None, "parent_run_id": None, "rounds": {},
               "champion": None}
        atomic_write_json(path, doc)
        return cls(path, doc)

    def save(self) -> None:
        self.doc["updated"] = _now()
        atomic_write_json(self.path, self.doc)

    # ---------------------------------------------------------------- rounds and steps
    def round(self, index: int) -> dict:
        return self.doc["rounds"].setdefault(str(index), {"steps": {}, "done": False, "run_id": None})

    def round_done(self, index: int) -> bool:
        return bool(self.doc["rounds"].get(str(index), {}).get("done"))

    def step(self, index: int, name: str) -> dict | None:
        return self.round(index)["steps"].get(name)

    def finish_step(self, index: int, name: str, record: dict, seconds: float) -> dict:
        record = {**record, "finished": _now(), "seconds": round(float(seconds), 3)}
        self.round(index)["steps"][name] = record
        self.save()
        return record

    def finish_round(self, index: int, record: dict) -> None:
        self.round(index).update(done=True, record=record, finished=_now())
        self.save()

    def done_rounds(self) -> list[int]:
        return sorted(int(k) for k, v in self.doc["rounds"].items() if v.get("done"))

    def partial(self, index: int, name: str) -> dict:
        """Progress inside a step that finishes in parts (step (d): one generator at a time)."""
        return self.round(index).setdefault("partial", {}).setdefault(name, {})

    def champion_at(self, index: int) -> dict:
        """{"path", "name"} of the champion a round starts with: the last promoted candidate, else D0."""
        for previous in range(index - 1, 0, -1):
            promotion = self.step(previous, "promotion")
            if promotion and promotion["promoted"]:
                return {"path": promotion["candidate"], "name": f"D{previous}"}
        return {"path": self.doc["initial"]["detector"], "name": "D0"}

    def generator_at(self, index: int, name: str) -> dict:
        """{"checkpoint", "version"} of a game generator at the start of a round (its last accepted move)."""
        for previous in range(index - 1, 0, -1):
            move = (self.step(previous, "generators") or {}).get("moves", {}).get(name)
            if move and move["status"] == "accepted":
                return {"checkpoint": move["checkpoint"], "version": previous}
        return {"checkpoint": self.doc["initial"]["generators"][name], "version": 0}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
