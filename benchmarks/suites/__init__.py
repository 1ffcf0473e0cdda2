"""Benchmark suite kinds: one module per `kind:` a suite YAML can name (the YAML files live here too).

Each kind module registers a SuiteKind: its parameters and their defaults (a suite may set only these),
run(ctx) -> results dict, markdown(document) -> the tables, metrics(results) -> numbers for MLflow, and which
inputs it reads (benchmarks.inputs chooses them: command line, suite file, or make demo's output).
Built-in kinds are imported on first use, so `forensics bench list` does not load torch models.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from forensics.registry import Registry


class SuiteError(ValueError):
    """A suite that cannot run as written (bad file, unknown key, missing input); one line, exit status 2."""


@dataclass(frozen=True)
class SuiteKind:
    name: str
    defaults: dict
    run: Callable[..., dict]
    markdown: Callable[[dict], str]
    metrics: Callable[[dict], dict]
    inputs: tuple[str, ...] = ("world", "generators")   # which of world, generators, detector, data_root it reads


SUITE_KINDS: Registry[SuiteKind] = Registry("suite kind", builtins={
    "cross_generator": "benchmarks.suites.cross_generator", "robustness": "benchmarks.suites.robustness",
    "speed": "benchmarks.suites.speed", "protocol": "benchmarks.suites.protocol"})


def register_kind(kind: SuiteKind) -> SuiteKind:
    return SUITE_KINDS.add(kind.name, kind)


def get_kind(kind: str | None) -> SuiteKind:
    return SUITE_KINDS.get(str(kind))
