"""Benchmark suite kinds: one module per `kind:` a suite YAML can name (the YAML files live here too).

Each kind module offers DEFAULTS (its parameters and their defaults: a suite may set only these),
run(ctx) -> results dict, markdown(document) -> the tables, and metrics(results) -> numbers for MLflow.
Modules are imported on first use, so `forensics bench list` does not load torch models.
"""
from __future__ import annotations

import importlib
from types import ModuleType

KINDS = {
    "cross_generator": "benchmarks.suites.cross_generator",
    "robustness": "benchmarks.suites.robustness",
    "speed": "benchmarks.suites.speed",
}


def get_kind(kind: str | None) -> ModuleType:
    if kind not in KINDS:
        raise ValueError(f"unknown suite kind {kind!r} (kinds: {', '.join(KINDS)})")
    return importlib.import_module(KINDS[kind])
