"""The shape of the code: imports at module top (so every dependency is visible to import-linter and to a
reader), except in forensics/cli where deferring heavy imports keeps `--help` fast."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("forensics", "detectors", "generators", "benchmarks")


def imports_inside_functions(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return sorted(node.lineno for function in ast.walk(tree)
                  if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
                  for node in ast.walk(function) if isinstance(node, (ast.Import, ast.ImportFrom)))


def test_imports_sit_at_module_top_outside_the_cli():
    offenders = [f"{path.relative_to(ROOT)}:{line}" for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))
                 if not path.relative_to(ROOT).as_posix().startswith("forensics/cli/")
                 for line in imports_inside_functions(path)]
    assert offenders == []


def test_the_check_sees_an_import_inside_a_function(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import os\n\n\ndef f():\n    import json\n    return json\n")
    assert imports_inside_functions(sample) == [5]
