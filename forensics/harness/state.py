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

FORMAT = "forensics-coevolve/1"
STEPS = ("fakes", "before", "detector", "retrained", "generators", "after")


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
               "created": _now(), "initial": None, "parent_run_id": None, "rounds": {}, "champion": None}
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

    def detector_for(self, index: int) -> str:
        """The detector a round starts from: the previous round's fine-tuned one, or the initial one."""
        if index <= 1:
            return self.doc["initial"]["detector"]
        return self.step(index - 1, "detector")["path"]

    def generators_for(self, index: int) -> dict[str, str]:
        """Each generator's checkpoint at the start of a round (after the previous round's evasion)."""
        if index <= 1:
            return dict(self.doc["initial"]["generators"])
        done = self.step(index - 1, "generators")["families"]
        return {name: rec["checkpoint"] for name, rec in done.items()}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
