"""The face-crop cache: computed once, invalidated only where something changed, never stopped by bad files."""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from forensics.cli.main import main as cli
from forensics.data.cache import CacheConfig, FaceCache
from forensics.data.registry import create_dataset


@pytest.fixture()
def world(tiny_world, tmp_path):
    """A private copy, so tests may change files without disturbing each other."""
    root = tmp_path / "world"
    shutil.copytree(tiny_world, root)
    return root


def _rows(root):
    return create_dataset("synthetic", root).rows()


def test_build_stores_aligned_crops_and_index(world, tmp_path):
    cfg = CacheConfig(frames=4, crop_size=96, device="cpu")
    cache = FaceCache(tmp_path / "cache", cfg)
    rows = _rows(world)
    report = cache.build(rows, progress=False)
    assert report.processed == len(rows) and report.failed == 0
    entries = cache.entries()
    assert len(entries) >= len(rows) - 1          # the renderer's faces are found by MTCNN
    for entry in entries:
        crops = cache.load_crops(entry)
        assert crops.shape[1:] == (96, 96, 3) and crops.dtype == np.uint8
        assert len(crops) == len(entry.faces) > 0
        assert entry.sha256 and len(entry.frames_sampled) == 4
        for face in entry.faces:
            assert face["prob"] >= 0.9 and len(face["landmarks"]) == 5 and face["track"] >= 0
        assert entry.label == "real" and entry.identity and entry.split in ("train", "val", "test")
    crop, info = next(cache.iter_crops())
    assert crop.shape == (96, 96, 3) and info["label"] == "real"


def test_second_run_does_nothing_and_changed_file_is_redone_alone(world, tmp_path):
    cfg = CacheConfig(frames=3, crop_size=64, device="cpu")
    rows = _rows(world)
    FaceCache(tmp_path / "cache", cfg).build(rows, progress=False)

    again = FaceCache(tmp_path / "cache", cfg).build(rows, progress=False)
    assert (again.processed, again.recropped, again.skipped) == (0, 0, len(rows))

    # Touching a file (same bytes, new mtime) is not a change.
    os.utime(rows[0].path, ns=(1, 1))
    touched = FaceCache(tmp_path / "cache", cfg).build(rows, progress=False)
    assert touched.processed == 0 and touched.skipped == len(rows)

    # Replacing one video's contents redoes that one only.
    shutil.copyfile(rows[1].path, rows[0].path)
    changed = FaceCache(tmp_path / "cache", cfg).build(rows, progress=False)
    assert changed.processed == 1 and changed.skipped == len(rows) - 1


def test_changed_crop_settings_reuse_detections(world, tmp_path):
    rows = _rows(world)
    first = FaceCache(tmp_path / "cache", CacheConfig(frames=3, crop_size=64, device="cpu"))
    first.build(rows, progress=False)
    before = {e.source: e.faces for e in first.entries()}

    bigger = FaceCache(tmp_path / "cache", CacheConfig(frames=3, crop_size=80, device="cpu"))
    report = bigger.build(rows, progress=False)
    assert report.processed == 0 and report.recropped == len(before)
    for entry in bigger.entries():
        assert entry.faces == before[entry.source]           # same detections, no MTCNN pass
        assert bigger.load_crops(entry).shape[1:] == (80, 80, 3)
    assert len(list((tmp_path / "cache" / "crops").glob("*.npy"))) == len(before)   # old crops dropped

    # Detection settings do invalidate.
    denser = FaceCache(tmp_path / "cache", CacheConfig(frames=4, crop_size=80, device="cpu"))
    assert denser.build(rows, progress=False).processed == len(rows)


def test_batch_with_bad_files_finishes_the_good_ones(world, tmp_path, capsys):
    folder = tmp_path / "folder"
    (folder / "real").mkdir(parents=True)
    (folder / "fake").mkdir()
    rows = _rows(world)
    shutil.copyfile(rows[0].path, folder / "real" / "good.mp4")
    shutil.copyfile(rows[1].path, folder / "fake" / "good_fake.mp4")
    (folder / "real" / "empty.mp4").write_bytes(b"")
    (folder / "fake" / "text.mp4").write_text("this is not a video\n")
    data = open(rows[2].path, "rb").read()
    (folder / "real" / "truncated.mp4").write_bytes(data[: len(data) // 10])

    code = cli(["preprocess", "--root", str(folder), "--dataset", "folder", "--cache", str(tmp_path / "c"),
                "--frames", "3", "--crop-size", "64", "--device", "cpu", "--quiet"])
    assert code == 1                                       # some inputs failed, the rest were analysed
    err = capsys.readouterr().err
    cache = FaceCache(tmp_path / "c", CacheConfig(frames=3, crop_size=64))
    ok = {os.path.basename(e.source) for e in cache.entries()}
    assert ok == {"good.mp4", "good_fake.mp4"}
    failed = {os.path.basename(e.source): e.error for e in cache.entries(status="error")}
    assert set(failed) == {"empty.mp4", "text.mp4", "truncated.mp4"}
    for name, reason in failed.items():
        assert name in reason and "\n" not in reason
        assert "Traceback" not in err and name in err

    # A second run neither redoes the good files nor retries unchanged bad ones, and still reports them.
    rows = create_dataset("folder", folder).rows()
    again = FaceCache(tmp_path / "c", CacheConfig(frames=3, crop_size=64, device="cpu")).build(rows, progress=False)
    assert again.processed == 0 and again.skipped == 5 and len(again.errors) == 3


def test_preprocess_cli_guesses_layout_and_second_run_is_a_noop(world, tmp_path, capsys):
    args = ["preprocess", "--root", str(world), "--cache", str(tmp_path / "c"), "--frames", "2",
            "--crop-size", "64", "--device", "cpu", "--quiet"]
    assert cli(args) == 0
    assert cli(args) == 0
    out = capsys.readouterr().out
    assert "already cached 4" in out.splitlines()[-1] or "already cached 4" in out


def test_preprocess_cli_usage_errors(tmp_path, capsys):
    assert cli(["preprocess", "--root", str(tmp_path / "missing")]) == 2
    assert cli(["preprocess", "--root", str(tmp_path), "--frames", "0"]) == 2
    err = capsys.readouterr().err
    assert "no such folder" in err and "--frames must be at least 1" in err
