"""Run a benchmark suite (a YAML file) and record it where it can be checked later.

A suite names its `kind` (cross_generator | robustness | speed: a module in benchmarks/suites/) and that
kind's parameters. The runner loads and validates it, hands it to the kind, and records what any figure
needs to be trusted: the machine, the command, the git commit, wall time per stage, and the results, as
<out>/<name>.json and <out>/<name>.md (atomically) plus one MLflow run in the `benchmarks` experiment.

Results are per cell (a trained detector's row, one video under one condition...). Each finished cell is
appended to <work>/cells.jsonl with a fingerprint of everything it depends on, so an interrupted suite
resumes where it stopped and a changed suite (or generator checkpoint) recomputes instead of reusing.

    from benchmarks.runner import load_suite, run_suite
    result = run_suite(load_suite("robustness"), out_dir="benchmarks/results")
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from benchmarks.inputs import apply_inputs, describe_inputs
from benchmarks.machine import machine_info
from benchmarks.suites import SuiteError, get_kind
from forensics.gitinfo import git_state as checkout_state
from forensics.io import append_jsonl, atomic_path, atomic_write_json, atomic_write_text, read_jsonl
from forensics.tracking import start_run

SUITES_DIR = Path(__file__).parent / "suites"
RESULTS_DIR = Path("benchmarks/results")
EXPERIMENT = "benchmarks"
COMMON_KEYS = ("name", "kind", "description", "world", "work")


@dataclass
class Suite:
    name: str
    kind: str
    description: str
    world: str
    work: str | None
    params: dict                 # the kind's parameters, defaults filled in
    path: Path | None = None
    inputs: dict = field(default_factory=dict)   # input -> {"path", "from"} (benchmarks.inputs.apply_inputs)

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "description": self.description, "world": self.world,
                "work": self.work, **self.params}


def suite_path(name_or_path: str) -> Path:
    """A YAML path as given, or the shipped suite of that name (benchmarks/suites/NAME.yaml)."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise SuiteError(f"{path}: no such suite file")
        return path
    shipped = SUITES_DIR / f"{name_or_path}.yaml"
    if not shipped.is_file():
        known = ", ".join(name for name, _, _ in list_suites()) or "none"
        raise SuiteError(f"{name_or_path}: no such suite file and no shipped suite of that name (shipped: {known})")
    return shipped


def list_suites() -> list[tuple[str, str, Path]]:
    """(name, one-line description, path) of the suites shipped in benchmarks/suites/."""
    out = []
    for path in sorted(SUITES_DIR.glob("*.yaml")):
        try:
            suite = load_suite(path)
            out.append((path.stem, suite.description.splitlines()[0] if suite.description else "", path))
        except SuiteError as exc:
            out.append((path.stem, f"(unreadable: {exc})", path))
    return out


def load_suite(name_or_path: str | Path) -> Suite:
    path = suite_path(str(name_or_path))
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise SuiteError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from None
    if not isinstance(data, dict):
        raise SuiteError(f"{path}: a suite is a mapping of keys (name, kind, ...), got {type(data).__name__}")
    kind = data.get("kind")
    try:
        module = get_kind(kind)
    except ValueError as exc:
        raise SuiteError(f"{path}: {exc}") from None
    params = {k: v for k, v in data.items() if k not in COMMON_KEYS}
    try:
        params = merge_defaults(module.defaults, params, "")
    except ValueError as exc:
        raise SuiteError(f"{path}: {exc}") from None
    return Suite(name=str(data.get("name") or path.stem), kind=kind, description=str(data.get("description") or ""),
                 world=str(data.get("world") or "data/synth"), work=data.get("work"), params=params, path=path)


# Mappings a suite gives whole rather than key by key: which generator families it uses (any registered family
# may appear; leaving one out leaves it out) and each family's options (the family checks those).
OPEN_KEYS = ("generators", "fakes")


def merge_defaults(defaults: dict, given: dict, where: str) -> dict:
    """`given` over `defaults`, recursing into dict-valued defaults (except OPEN_KEYS, taken as given); unknown
    keys are an error (a typo in a suite must not silently fall back to a default)."""
    if not isinstance(given, dict):
        raise ValueError(f"{where.rstrip('.') or 'suite'} must be a mapping, got {given!r}")
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ValueError(f"unknown key {where}{unknown[0]} (known: {', '.join(sorted(defaults)) or 'none'})")
    out = {}
    for key, default in defaults.items():
        value = given.get(key, default)
        if isinstance(default, dict) and default and key in given and value is not None and key not in OPEN_KEYS:
            value = merge_defaults(default, value, f"{where}{key}.")
        out[key] = value
    return out


# ---------------------------------------------------------------------- cells (resume)

class CellLog:
    """Finished cells in an append-only JSONL; a cell counts as done only under the same fingerprint."""

    def __init__(self, path: Path, fingerprint: dict, fresh: bool = False):
        self.path = path
        self.fingerprint = hashlib.sha256(json.dumps(fingerprint, sort_keys=True, default=str).encode()).hexdigest()[:16]
        self._done: dict[str, dict] = {}
        if not fresh:
            for rec in read_jsonl(path):
                if rec.get("fingerprint") == self.fingerprint and rec.get("status") == "ok":
                    self._done[rec["cell"]] = rec["result"]
        self.reused = 0

    def done(self, cell: str) -> dict | None:
        result = self._done.get(cell)
        if result is not None:
            self.reused += 1
        return result

    def record(self, cell: str, result: dict | None, status: str = "ok", error: str | None = None) -> None:
        append_jsonl(self.path, {"cell": cell, "fingerprint": self.fingerprint, "status": status, "error": error,
                                 "result": result, "when": time.strftime("%Y-%m-%dT%H:%M:%S")})
        if status == "ok":
            self._done[cell] = result


@dataclass
class SuiteContext:
    """What a kind's run(ctx) gets: its suite, folders, device, timing, the MLflow run, failure reporting."""
    suite: Suite
    out_dir: Path
    work_dir: Path
    device: str = "auto"
    fresh: bool = False
    progress: bool = True
    allow_smaller: bool = False      # run on fewer videos than asked for, marking the cells (else refuse)
    run: object | None = None
    stages: dict = field(default_factory=dict)
    failed: list = field(default_factory=list)          # (cell, one-line reason)
    notes: list = field(default_factory=list)
    figures: list = field(default_factory=list)

    @property
    def params(self) -> dict:
        return self.suite.params

    def cells(self, fingerprint: dict) -> CellLog:
        return CellLog(self.work_dir / "cells.jsonl", {"suite": self.suite.name, **fingerprint}, fresh=self.fresh)

    @contextlib.contextmanager
    def stage(self, name: str):
        """Adds the block's wall time to stages[name] (also when it raises)."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.stages[name] = round(self.stages.get(name, 0.0) + time.perf_counter() - started, 2)

    def fail(self, cell: str, reason: str) -> None:
        reason = " ".join(str(reason).split())
        self.failed.append([cell, reason])
        print(f"{self.suite.name}: {cell} failed: {reason}", file=sys.stderr)

    def say(self, message: str) -> None:
        if self.progress:
            print(message, file=sys.stderr, flush=True)

    def save_figure(self, fig, suffix: str) -> Path:
        """PNG next to the results (<out>/<name>-<suffix>.png) and in the MLflow run."""
        path = self.out_dir / f"{self.suite.name}-{suffix}.png"
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=110)
        if self.run is not None:
            self.run.log_figure(fig, path.name)
        self.figures.append(path.name)
        return path


# ---------------------------------------------------------------------- running

def run_suite(suite: Suite, out_dir: str | Path | None = None, work_dir: str | Path | None = None,
              device: str = "auto", fresh: bool = False, command: str | None = None, progress: bool = True,
              allow_smaller: bool = False) -> dict:
    """Run `suite` and write <out>/<name>.json and .md; returns the JSON document ("failed_cells" lists what
    did not finish). SuiteError for a suite that cannot start."""
    module = get_kind(suite.kind)
    out_dir = Path(out_dir) if out_dir else RESULTS_DIR
    work_dir = Path(work_dir or suite.work or Path("runs/bench") / suite.name)
    out_dir.mkdir(parents=True, exist_ok=True)
    work_dir.mkdir(parents=True, exist_ok=True)
    command = command or " ".join(["python", "-m", "benchmarks.runner", str(suite.path or suite.name)])
    started, when = time.perf_counter(), time.strftime("%Y-%m-%dT%H:%M:%S%z")
    tags = {"suite": suite.name, "kind": suite.kind, "command": command[:500]}
    with start_run(EXPERIMENT, run_name=f"{suite.name}-{time.strftime('%m%d-%H%M')}",
                   params=flatten(suite.to_dict()), tags=tags) as run:
        ctx = SuiteContext(suite, out_dir, work_dir, device=device, fresh=fresh, progress=progress,
                           allow_smaller=allow_smaller, run=run)
        if suite.inputs:
            ctx.say(f"{suite.name}: inputs")
            for line in describe_inputs(suite.inputs):
                ctx.say(line)
        results = module.run(ctx)
        total = round(time.perf_counter() - started, 1)
        document = {
            "suite": suite.name, "kind": suite.kind, "description": suite.description,
            "suite_file": str(suite.path) if suite.path else None, "config": suite.to_dict(),
            "inputs": suite.inputs, "allow_smaller": allow_smaller,
            "command": command, "machine": machine_info(), "git": git_state(out_dir), "started": when,
            "seconds": {"total": total, "stages": dict(ctx.stages)},
            "status": "failed" if ctx.failed else "ok", "failed_cells": ctx.failed,
            "results": results, "notes": ctx.notes, "figures": ctx.figures,
            "mlflow": {"experiment": EXPERIMENT, "run_id": run.run_id},
        }
        markdown = render_markdown(document, module.markdown(document))
        json_path, md_path = out_dir / f"{suite.name}.json", out_dir / f"{suite.name}.md"
        atomic_write_json(json_path, document)
        atomic_write_text(md_path, markdown)
        run.log_metrics({**module.metrics(results), "seconds_total": total})
        run.log_dict(document, f"{suite.name}.json")
        run.log_artifact(md_path)
        if ctx.failed:
            run.set_tags({"failed_cells": str(len(ctx.failed))})
    document["files"] = {"json": str(json_path), "markdown": str(md_path)}
    return document


def render_markdown(document: dict, body: str) -> str:
    machine, git = document["machine"], document["git"]
    stages = ", ".join(f"{k} {v:.0f} s" for k, v in document["seconds"]["stages"].items())
    lines = [f"# {document['suite']}", "", document["description"].strip(), "", body.strip(), ""]
    if document.get("inputs"):
        lines += ["Inputs:", ""] + [f"- {name}: `{entry['path']}` ({entry['from']})"
                                    for name, entry in document["inputs"].items()] + [""]
    if document["notes"]:
        lines += ["Notes:", ""] + [f"- {note}" for note in document["notes"]] + [""]
    if document["failed_cells"]:
        lines += ["Failed cells:", ""] + [f"- {cell}: {reason}" for cell, reason in document["failed_cells"]] + [""]
    lines += [f"Command: `{document['command']}`  ",
              f"Commit: {git.get('commit') or 'unknown'}{' (uncommitted changes)' if git.get('dirty') else ''}; "
              f"started {document['started']}; wall time {document['seconds']['total'] / 60:.1f} min ({stages})  ",
              f"Machine: {machine.get('cpu')}, {machine.get('cpu_cores')} cores, {machine.get('memory_gib')} GiB, "
              f"GPU {machine.get('gpu') or 'none'}; torch {machine.get('torch')}, {machine.get('torch_threads')} threads  ",
              f"MLflow: experiment `{EXPERIMENT}`, run {document['mlflow']['run_id']}", ""]
    return "\n".join(lines)


def git_state(results_dir: Path | None = None) -> dict:
    """The commit, and whether the checkout differs from it outside the results folder (a suite writes its
    own figures there before this is read, and the committed results of earlier runs change with every run)."""
    return checkout_state(".", exclude=results_dir)


def flatten(value, prefix: str = "") -> dict:
    """Nested suite parameters as MLflow params ("fakes.reals.train": 16)."""
    if isinstance(value, dict):
        out = {}
        for key, inner in value.items():
            out.update(flatten(inner, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): json.dumps(value) if isinstance(value, (list, tuple)) else value}


if __name__ == "__main__":
    document = run_suite(apply_inputs(load_suite(sys.argv[1])), progress=True)
    print(Path(document["files"]["markdown"]).read_text(encoding="utf-8"))
    sys.exit(1 if document["failed_cells"] else 0)
