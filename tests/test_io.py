"""Appended records survive a torn last line: the next append starts on a fresh line."""
from __future__ import annotations

import json

from forensics.io import append_jsonl, read_jsonl, strict_json


def test_append_after_torn_line_keeps_new_record(tmp_path):
    path = tmp_path / "out.jsonl"
    append_jsonl(path, {"path": "a"})
    with open(path, "a") as fh:
        fh.write('{"path": "b", "sco')          # a crash mid-write
    append_jsonl(path, {"path": "c"})
    assert [r["path"] for r in read_jsonl(path)] == ["a", "c"]


def test_append_to_new_and_empty_files(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    append_jsonl(empty, {"n": 1})
    append_jsonl(tmp_path / "sub" / "new.jsonl", {"n": 2})
    assert empty.read_text() == '{"n": 1}\n'
    assert read_jsonl(tmp_path / "sub" / "new.jsonl") == [{"n": 2}]


def test_records_are_strict_json_and_bad_lines_are_skipped_and_counted(tmp_path):
    target = tmp_path / "records.jsonl"
    append_jsonl(target, {"score": float("nan"), "faces": [{"score": float("inf")}, {"score": 0.25}]})
    line = target.read_text().strip()
    assert "NaN" not in line and "Infinity" not in line
    assert json.loads(line) == {"score": None, "faces": [{"score": None}, {"score": 0.25}]}
    with open(target, "ab") as fh:
        fh.write(b'{"path": "caf\xe9"}\n{"torn": ')
    skipped: list[int] = []
    assert read_jsonl(target, skipped) == [json.loads(line)] and skipped == [2, 3]
    assert strict_json((1.0, float("-inf"))) == [1.0, None]
