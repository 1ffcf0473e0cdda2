"""Appended records survive a torn last line: the next append starts on a fresh line."""
from __future__ import annotations

from forensics.io import append_jsonl, read_jsonl


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
