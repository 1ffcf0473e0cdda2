"""Dataset adapters: each published layout, built tiny in tmp_path, read back as manifest rows."""
from __future__ import annotations

import json
import os
import shutil
import warnings
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pytest

from forensics.data import registry
from forensics.data.adapters import DatasetAdapter
from forensics.data.manifest import ManifestRow, write_manifest
from forensics.data.registry import (
    DatasetError, DatasetWarning, create_dataset, detect_layout, list_datasets, register_dataset, summarize,
)


# -- helpers -------------------------------------------------------------------------------------------
def write_tiny_video(path: Path, frames: int = 4, size: int = 32) -> Path:
    """A real H.264 file (PyAV, yuv420p, even size) so adapters are exercised on genuine media."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = size, size, "yuv420p"
        for i in range(frames):
            image = np.full((size, size, 3), 40 * i, dtype=np.uint8)
            image[8:24, 8:24] = (200, 120, 60)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    return write_tiny_video(tmp_path_factory.mktemp("media") / "tiny.mp4")


def count_frames(path: str) -> int:
    with av.open(path) as container:
        return sum(1 for _ in container.decode(video=0))


def place(root: Path, relative: str, source: Path | None = None) -> Path:
    """Put a file at root/relative: a copy of a real video, or a placeholder (adapters never decode)."""
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    if source is not None:
        shutil.copyfile(source, path)
    else:
        path.write_bytes(b"placeholder")
    return path


def assert_one_line_error(excinfo, root: Path, *fragments: str) -> None:
    message = str(excinfo.value)
    assert "\n" not in message
    assert message.startswith(str(root)), message
    for fragment in fragments:
        assert fragment in message, message


def by_name(rows: list[ManifestRow]) -> dict[str, ManifestRow]:
    return {Path(row.path).name: row for row in rows}


def splits_by_identity(rows: list[ManifestRow]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        if row.identity is not None:
            found[row.identity].add(row.split)
    return found


# -- layout builders -----------------------------------------------------------------------------------
def build_synthetic(root: Path, video: Path | None = None) -> Path:
    rows = []
    for k in range(3):
        for clip in range(2):
            relative = f"videos/id{k:04d}_{clip}.mp4"
            place(root, relative, video)
            rows.append(ManifestRow(path=relative, label="real", method="real", identity=f"id{k:04d}",
                                    split=("train", "val", "test")[k], source="synthetic", meta={"clip": clip}))
    write_manifest(rows, root / "manifest.csv")
    return root


def build_folder(root: Path, video: Path | None = None) -> Path:
    place(root, "real/a.mp4", video)
    place(root, "real/nested/b.jpg")
    place(root, "fake/c.png")
    place(root, "fake/deepfakes/d.mp4")
    place(root, "fake/deepfakes/sub/e.webm")
    place(root, "fake/faceswap/f.MOV")
    place(root, "real/notes.txt")          # not media
    place(root, "real/.DS_Store")          # hidden
    place(root, "fake/.cache/g.mp4")       # hidden folder
    return root


def build_ffpp(root: Path, video: Path | None = None, compression: str = "c23") -> Path:
    for vid in ("000", "003", "720", "900", "950"):
        place(root, f"original_sequences/youtube/{compression}/videos/{vid}.mp4", video if vid == "000" else None)
    for method in ("Deepfakes", "FaceSwap"):
        for name in ("000_003", "003_000", "720_900", "950_000"):
            place(root, f"manipulated_sequences/{method}/{compression}/videos/{name}.mp4")
        place(root, f"manipulated_sequences/{method}/masks/videos/000_003.mp4")
    return root


def build_celebdf(root: Path, video: Path | None = None, identities: int = 20) -> Path:
    for k in range(identities):
        for clip in range(2):
            place(root, f"Celeb-real/id{k}_{clip:04d}.mp4", video if (k, clip) == (0, 0) else None)
        place(root, f"Celeb-synthesis/id{k}_id{(k + 1) % identities}_0000.mp4")
    for n in range(3):
        place(root, f"YouTube-real/{n:05d}.mp4")
    (root / "List_of_testing_videos.txt").write_text(
        "1 Celeb-real/id0_0000.mp4\n0 Celeb-synthesis/id1_id2_0000.mp4\n1 YouTube-real/00000.mp4\n")
    return root


def build_dfdc_part(part: Path, originals: list[str], video: Path | None = None,
                    missing: tuple[str, ...] = (), split: str = "train") -> dict:
    metadata = {}
    for original in originals:
        metadata[f"{original}.mp4"] = {"label": "REAL", "split": split, "original": None}
        for n in range(2):
            metadata[f"{original}f{n}.mp4"] = {"label": "FAKE", "split": split, "original": f"{original}.mp4"}
    part.mkdir(parents=True, exist_ok=True)
    for name in metadata:
        if name not in missing:
            place(part, name, video if name == f"{originals[0]}.mp4" else None)
    (part / "metadata.json").write_text(json.dumps(metadata))
    return metadata


def build_dfdc(root: Path, video: Path | None = None) -> Path:
    build_dfdc_part(root / "dfdc_train_part_0", [f"r{k:02d}" for k in range(12)], video)
    build_dfdc_part(root / "dfdc_train_part_10", [f"s{k:02d}" for k in range(12)])
    return root


def build_dfdcp(root: Path, video: Path | None = None) -> Path:
    """DFDC Preview: dataset.json at the top, reals under original_videos/<target>/, fakes under
    method_A|method_B/<target>/<swapped>/; the release's own train/test sets."""
    index = {}
    for k, target in enumerate(("1255229", "1907235", "2004021", "3311110")):
        release = "test" if k < 2 else "train"
        real = f"original_videos/{target}/{target}_A_001.mp4"
        place(root, real, video if k == 0 else None)
        index[real] = {"label": "real", "set": release}
        for method in ("method_A", "method_B"):
            fake = f"{method}/{target}/9999999/{target}_9999999_{method[-1]}_001.mp4"
            place(root, fake)
            index[fake] = {"label": "fake", "set": release, "target_id": target, "swapped_id": "9999999"}
    (root / "dataset.json").write_text(json.dumps(index))
    return root


# -- registry ------------------------------------------------------------------------------------------
def test_builtin_adapters_are_registered():
    assert {"synthetic", "folder", "ffpp", "celebdf", "dfdc", "dfdcp"} <= set(list_datasets())


@pytest.mark.parametrize("builder, expected", [
    (build_synthetic, "synthetic"), (build_folder, "folder"), (build_ffpp, "ffpp"),
    (build_celebdf, "celebdf"), (build_dfdc, "dfdc"), (build_dfdcp, "dfdcp"),
])
def test_detect_layout_picks_the_adapter_that_reads_the_tree(tmp_path, builder, expected):
    root = builder(tmp_path / expected)
    assert detect_layout(root) == expected
    assert create_dataset("auto", root).rows()


def test_detect_layout_prefers_specific_layouts_and_gives_up_on_unknown_ones(tmp_path):
    root = build_synthetic(tmp_path / "synth")
    place(root, "real/extra.mp4")            # a real/ folder does not make a synthetic world a plain folder
    assert detect_layout(root) == "synthetic"
    (tmp_path / "empty").mkdir()
    place(tmp_path, "other/readme.txt")
    (tmp_path / "jsonish").mkdir()
    (tmp_path / "jsonish" / "metadata.json").write_text('{"title": "not dfdc"}')
    assert detect_layout(tmp_path / "empty") is None
    assert detect_layout(tmp_path / "other") is None
    assert detect_layout(tmp_path / "jsonish") is None
    assert detect_layout(tmp_path / "does-not-exist") is None
    assert detect_layout(tmp_path / "other" / "readme.txt") is None


def test_create_dataset_reports_bad_names_options_and_roots_in_one_line(tmp_path):
    with pytest.raises(DatasetError, match="unknown dataset 'nope'"):
        create_dataset("nope", tmp_path)
    with pytest.raises(DatasetError) as excinfo:
        create_dataset("ffpp", tmp_path, compresion="c40")
    assert_one_line_error(excinfo, tmp_path, "'compresion'", "compression")
    with pytest.raises(DatasetError) as excinfo:
        create_dataset("folder", tmp_path / "absent")
    assert_one_line_error(excinfo, tmp_path / "absent", "no such folder")
    with pytest.raises(DatasetError) as excinfo:
        create_dataset("auto", tmp_path)
    assert_one_line_error(excinfo, tmp_path, "cannot tell the dataset layout")


@pytest.fixture
def marker_cleanup():
    yield
    registry.DATASETS.remove("marker-test")


def test_third_party_adapter_registers_and_is_detected(tmp_path, marker_cleanup):
    @register_dataset("marker-test")
    @dataclass
    class MarkerDataset(DatasetAdapter):
        detect_priority = 5

        @classmethod
        def looks_like(cls, root: Path) -> bool:
            return (root / "MARKER").is_file()

        def rows(self):
            return [ManifestRow(path=str(self.root_dir / "MARKER"), label="real", source=self.name)]

    (tmp_path / "MARKER").write_text("x")
    assert "marker-test" in list_datasets()
    assert detect_layout(tmp_path) == "marker-test"
    assert create_dataset("marker-test", tmp_path).rows()[0].source == "marker-test"
    with pytest.raises(ValueError, match="already registered"):
        register_dataset("ffpp")(MarkerDataset)
    assert MarkerDataset.name == "marker-test" and registry.get_dataset_class("ffpp") is not MarkerDataset


def test_summarize_counts_labels_methods_and_splits():
    rows = [ManifestRow("a", "real", split="train", source="s", identity="x"),
            ManifestRow("b", "fake", method="m1", split="train", source="s", identity="x"),
            ManifestRow("c", "fake", method="m2", split="test", source="s", identity="y")]
    summary = summarize(rows)
    assert summary["total"] == 3
    assert summary["by_label"] == {"fake": 2, "real": 1}
    assert summary["by_method"] == {"m1": 1, "m2": 1, "real": 1}
    assert summary["by_split"] == {"test": 1, "train": 2}
    assert summary["by_split_label"] == {"test": {"real": 0, "fake": 1}, "train": {"real": 1, "fake": 1}}
    assert summary["identities"] == 2


# -- synthetic -----------------------------------------------------------------------------------------
def test_synthetic_reads_the_rendered_manifest(tmp_path, video):
    root = build_synthetic(tmp_path / "synth", video)
    (root / "videos" / "id0002_1.mp4").unlink()
    with pytest.warns(DatasetWarning, match="1 of 6 files"):
        rows = create_dataset("synthetic", root).rows()
    assert len(rows) == 5
    assert all(os.path.isabs(row.path) and row.source == "synthetic" for row in rows)
    assert [row.path for row in rows] == sorted(row.path for row in rows)
    first = by_name(rows)["id0000_0.mp4"]
    assert (first.label, first.method, first.identity, first.split, first.meta) == \
        ("real", "real", "id0000", "train", {"clip": 0})
    assert by_name(rows)["id0002_0.mp4"].split == "test"
    assert count_frames(first.path) == 4


def test_synthetic_without_manifest_says_how_to_render(tmp_path):
    with pytest.raises(DatasetError) as excinfo:
        create_dataset("synthetic", tmp_path).rows()
    assert_one_line_error(excinfo, tmp_path, f"forensics synth --out {tmp_path}")
    (tmp_path / "manifest.csv").write_text("path,label,method,identity,split,source,meta\na.mp4,maybe,real,,train,,{}\n")
    with pytest.raises(DatasetError) as excinfo:
        create_dataset("synthetic", tmp_path).rows()
    assert_one_line_error(excinfo, tmp_path, "manifest.csv is malformed", "'maybe'")


# -- folder --------------------------------------------------------------------------------------------
def test_folder_real_and_fake_subfolders(tmp_path, video):
    root = build_folder(tmp_path / "clips", video)
    rows = create_dataset("folder", root).rows()
    named = by_name(rows)
    assert sorted(named) == ["a.mp4", "b.jpg", "c.png", "d.mp4", "e.webm", "f.MOV"]
    assert {n: (r.label, r.method) for n, r in named.items()} == {
        "a.mp4": ("real", "real"), "b.jpg": ("real", "real"), "c.png": ("fake", "fake"),
        "d.mp4": ("fake", "deepfakes"), "e.webm": ("fake", "deepfakes"), "f.MOV": ("fake", "faceswap")}
    assert all(r.identity is None and r.source == "folder" and os.path.isabs(r.path) for r in rows)
    assert count_frames(named["a.mp4"].path) == 4
    assert rows == create_dataset("folder", root).rows()


def test_folder_hash_splits_are_stable_and_follow_the_fractions(tmp_path):
    root = tmp_path / "many"
    for k in range(300):
        place(root, f"{('real', 'fake')[k % 2]}/clip{k:03d}.jpg")
    rows = create_dataset("folder", root).rows()
    counts = summarize(rows)["by_split"]
    assert 200 <= counts["train"] <= 280 and 10 <= counts["val"] <= 50 and 10 <= counts["test"] <= 50
    before = {row.path: row.split for row in rows}
    place(root, "real/added.jpg")
    after = {row.path: row.split for row in create_dataset("folder", root).rows()}
    assert all(after[path] == split for path, split in before.items())
    halves = summarize(create_dataset("folder", root, val_fraction=0.5, test_fraction=0.0).rows())["by_split"]
    assert "test" not in halves and 100 <= halves["val"] <= 200
    with pytest.raises(DatasetError) as excinfo:
        create_dataset("folder", root, val_fraction=0.6, test_fraction=0.6).rows()
    assert_one_line_error(excinfo, root, "val_fraction")


def test_folder_labels_csv_with_numeric_and_named_labels(tmp_path, video):
    root = tmp_path / "csvdata"
    place(root, "clips/one.mp4", video)
    for name in ("two.mp4", "three.png", "four.mp4", "five.mp4"):
        place(root, f"clips/{name}")
    (root / "labels.csv").write_text(
        "path,label,split,method,identity,codec\n"
        "clips/one.mp4,0,test,,alice,h264\n"
        "clips/two.mp4,1,,faceswap,bob,\n"
        "clips/three.png,REAL,val,,,\n"
        "clips/four.mp4,FAKE,,,,\n"
        "clips/five.mp4,fake,Train,,,\n"
        "clips/gone.mp4,1,,,,\n")
    with pytest.warns(DatasetWarning, match="1 of 6 files"):
        rows = create_dataset("folder", root).rows()
    named = by_name(rows)
    assert sorted(named) == ["five.mp4", "four.mp4", "one.mp4", "three.png", "two.mp4"]
    assert (named["one.mp4"].label, named["one.mp4"].split, named["one.mp4"].identity) == ("real", "test", "alice")
    assert named["one.mp4"].meta == {"split_source": "csv", "codec": "h264"}
    assert (named["two.mp4"].label, named["two.mp4"].method, named["two.mp4"].identity) == ("fake", "faceswap", "bob")
    assert named["two.mp4"].meta["split_source"] == "hash"
    assert (named["three.png"].label, named["three.png"].split) == ("real", "val")
    assert (named["four.mp4"].label, named["four.mp4"].method) == ("fake", "fake")
    assert named["five.mp4"].split == "train"
    assert count_frames(named["one.mp4"].path) == 4


def test_folder_csv_given_as_option_and_bad_labels(tmp_path):
    root = tmp_path / "data"
    place(root, "x.mp4")
    place(root, "y.mp4")
    elsewhere = tmp_path / "lists" / "mine.csv"
    elsewhere.parent.mkdir()
    elsewhere.write_text("path,label\nx.mp4,1\ny.mp4,0\n")
    rows = create_dataset("folder", root, csv=elsewhere).rows()
    assert [(Path(r.path).name, r.label) for r in rows] == [("x.mp4", "fake"), ("y.mp4", "real")]
    elsewhere.write_text("path,label\nx.mp4,1\ny.mp4,2\n")
    with pytest.raises(DatasetError) as excinfo:
        create_dataset("folder", root, csv=elsewhere).rows()
    assert_one_line_error(excinfo, root, "line 3", "'2'")
    elsewhere.write_text("file,label\nx.mp4,1\n")
    with pytest.raises(DatasetError) as excinfo:
        create_dataset("folder", root, csv=elsewhere).rows()
    assert_one_line_error(excinfo, root, "no 'path' column")


def test_folder_without_layout_is_a_one_line_error(tmp_path):
    place(tmp_path, "stuff/a.mp4")
    with pytest.raises(DatasetError) as excinfo:
        create_dataset("folder", tmp_path).rows()
    assert_one_line_error(excinfo, tmp_path, "no real/ or fake/ folder")


# -- FaceForensics++ -----------------------------------------------------------------------------------
def test_ffpp_default_split_without_split_files(tmp_path, video):
    root = build_ffpp(tmp_path / "ffpp", video)
    build_ffpp(root, compression="c40")     # other compressions are not mixed in
    place(root, "original_sequences/youtube/c40/videos/999.mp4")
    rows = create_dataset("ffpp", root).rows()
    assert summarize(rows)["by_label"] == {"fake": 8, "real": 5}
    assert summarize(rows)["by_method"] == {"Deepfakes": 4, "FaceSwap": 4, "real": 5}
    assert all("/c23/" in r.path and r.meta["compression"] == "c23" for r in rows)
    assert all(r.meta["split_source"] == "default" for r in rows)
    reals = {r.identity: r.split for r in rows if r.label == "real"}
    assert reals == {"000": "train", "003": "train", "720": "val", "900": "test", "950": "test"}
    fake = next(r for r in rows if r.method == "Deepfakes" and Path(r.path).stem == "720_900")
    assert (fake.identity, fake.meta["source_id"], fake.split) == ("720", "900", "val")
    assert fake.meta["original"] == "original_sequences/youtube/c23/videos/720.mp4"
    assert count_frames(next(r.path for r in rows if r.identity == "000" and r.label == "real")) == 4
    c40 = create_dataset("ffpp", root, compression="c40").rows()
    assert len(c40) == 14 and all(r.meta["compression"] == "c40" for r in c40)


def test_ffpp_official_split_files_put_pairs_together(tmp_path):
    root = build_ffpp(tmp_path / "ffpp")
    (root / "splits").mkdir()
    (root / "splits" / "train.json").write_text(json.dumps([["720", "900"]]))
    (root / "splits" / "val.json").write_text(json.dumps([["003", "004"]]))
    (root / "splits" / "test.json").write_text(json.dumps([["000", "950"]]))
    rows = create_dataset("ffpp", root, methods=["Deepfakes"]).rows()
    assert {r.method for r in rows} == {"Deepfakes", "real"}
    split_of = {(r.label, Path(r.path).stem): (r.split, r.meta["split_source"]) for r in rows}
    assert split_of[("real", "000")] == ("test", "official")
    assert split_of[("real", "950")] == ("test", "official")
    assert split_of[("real", "720")] == ("train", "official")
    assert split_of[("real", "003")] == ("val", "official")
    assert split_of[("fake", "950_000")] == ("test", "official")
    assert split_of[("fake", "720_900")] == ("train", "official")
    # 000_003 is not a listed pair: it follows its target video (000, test)
    assert split_of[("fake", "000_003")][0] == "test"


def test_ffpp_incomplete_layouts_are_one_line_errors(tmp_path):
    root = tmp_path / "ffpp"
    place(root, "manipulated_sequences/Deepfakes/c23/videos/000_003.mp4")
    with pytest.raises(DatasetError) as excinfo:
        create_dataset("ffpp", root).rows()
    assert_one_line_error(excinfo, root, "no original_sequences/youtube/*/videos folder")
    place(root, "original_sequences/youtube/c40/videos/000.mp4")
    with pytest.raises(DatasetError) as excinfo:
        create_dataset("ffpp", root).rows()
    assert_one_line_error(excinfo, root, "youtube/c23/videos", "found: c40")
    place(root, "original_sequences/youtube/c23/videos/000.mp4")
    with pytest.raises(DatasetError) as excinfo:
        create_dataset("ffpp", root, methods=["Face2Face"]).rows()
    assert_one_line_error(excinfo, root, "manipulated_sequences/Face2Face/c23/videos")
    (root / "splits").mkdir()
    (root / "splits" / "train.json").write_text("[]")
    with pytest.raises(DatasetError) as excinfo:
        create_dataset("ffpp", root).rows()
    assert_one_line_error(excinfo, root, "no val.json, test.json")
    with pytest.raises(DatasetError) as excinfo:
        create_dataset("ffpp", root, compression="c99").rows()
    assert_one_line_error(excinfo, root, "c99")


def test_ffpp_raw_folder_deepfakedetection_and_unparseable_names(tmp_path):
    root = tmp_path / "ffpp"
    place(root, "original_sequences/youtube/raw/videos/000.mp4")
    place(root, "original_sequences/youtube/raw/videos/readme.mp4")
    place(root, "original_sequences/actors/raw/videos/01__walking.mp4")
    place(root, "manipulated_sequences/NeuralTextures/raw/videos/000_003.mp4")
    place(root, "manipulated_sequences/DeepFakeDetection/raw/videos/01_02__walking__ABC123XY.mp4")
    place(root, "manipulated_sequences/Face2Face/c23/videos/000_003.mp4")   # no c0 copy: skipped
    with pytest.warns(DatasetWarning) as record:
        rows = create_dataset("ffpp", root, compression="c0").rows()
    messages = " | ".join(str(w.message) for w in record)
    assert "readme.mp4" in messages and "Face2Face" in messages
    named = by_name(rows)
    assert sorted(named) == ["000.mp4", "000_003.mp4", "01_02__walking__ABC123XY.mp4", "01__walking.mp4"]
    dfd = named["01_02__walking__ABC123XY.mp4"]
    assert (dfd.label, dfd.method, dfd.identity, dfd.meta["source_id"]) == \
        ("fake", "DeepFakeDetection", "actor01", "actor02")
    assert dfd.meta["original"] == "original_sequences/actors/raw/videos/01__walking.mp4"
    actor = named["01__walking.mp4"]
    assert (actor.label, actor.identity, actor.split) == ("real", "actor01", dfd.split)
    assert all(r.meta["compression"] == "c0" for r in rows)


# -- Celeb-DF ------------------------------------------------------------------------------------------
def test_celebdf_test_list_and_identity_splits(tmp_path, video):
    root = build_celebdf(tmp_path / "celebdf", video)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DatasetWarning)   # the official convention (1 = real) raises no alarm
        rows = create_dataset("celebdf", root, val_fraction=0.3).rows()
    assert summarize(rows)["by_label"] == {"fake": 20, "real": 43}
    test = sorted(r.path[len(str(root)) + 1:] for r in rows if r.split == "test")
    assert test == ["Celeb-real/id0_0000.mp4", "Celeb-synthesis/id1_id2_0000.mp4", "YouTube-real/00000.mp4"]
    named = by_name(rows)
    fake = named["id3_id4_0000.mp4"]
    assert (fake.label, fake.method, fake.identity, fake.meta["source_id"]) == \
        ("fake", "celebdf-synthesis", "id3", "id4")
    assert fake.meta["original"] == "Celeb-real/id3_0000.mp4"
    assert (named["id3_0001.mp4"].label, named["id3_0001.mp4"].identity) == ("real", "id3")
    assert named["00001.mp4"].identity is None and named["00001.mp4"].label == "real"
    rest = [r for r in rows if r.split != "test"]
    assert {r.split for r in rest} == {"train", "val"}
    assert all(len(splits) == 1 for splits in splits_by_identity(rest).values())
    assert count_frames(named["id0_0000.mp4"].path) == 4
    assert rows == create_dataset("celebdf", root, val_fraction=0.3).rows()


def test_celebdf_list_label_convention_is_checked_not_trusted(tmp_path):
    root = build_celebdf(tmp_path / "celebdf", identities=4)
    (root / "List_of_testing_videos.txt").write_text("0 Celeb-real/id0_0000.mp4\n1 Celeb-real/id1_0000.mp4\n")
    with pytest.warns(DatasetWarning, match=r"1 entries .* disagree .*first: Celeb-real/id0_0000.mp4"):
        rows = create_dataset("celebdf", root).rows()
    assert by_name(rows)["id0_0000.mp4"].label == "real"
    (root / "List_of_testing_videos.txt").write_text("real Celeb-real/id0_0000.mp4\n")
    with pytest.raises(DatasetError) as excinfo:
        create_dataset("celebdf", root).rows()
    assert_one_line_error(excinfo, root, "List_of_testing_videos.txt line 1")


def test_celebdf_missing_pieces(tmp_path):
    root = build_celebdf(tmp_path / "celebdf", identities=6)
    (root / "List_of_testing_videos.txt").unlink()
    with pytest.warns(DatasetWarning, match="no List_of_testing_videos.txt"):
        rows = create_dataset("celebdf", root).rows()
    assert all(r.meta["split_source"] == "identity-hash" for r in rows)
    assert all(len(s) == 1 for s in splits_by_identity(rows).values())
    shutil.rmtree(root / "Celeb-synthesis")
    with pytest.raises(DatasetError) as excinfo:
        create_dataset("celebdf", root).rows()
    assert_one_line_error(excinfo, root, "no Celeb-synthesis/ folder")


# -- DFDC ----------------------------------------------------------------------------------------------
def test_dfdc_parts_identities_and_missing_files(tmp_path, video):
    root = tmp_path / "dfdc"
    build_dfdc_part(root / "dfdc_train_part_0", [f"r{k:02d}" for k in range(12)], video, missing=("r01f0.mp4",))
    build_dfdc_part(root / "dfdc_train_part_10", [f"s{k:02d}" for k in range(12)], missing=("s00.mp4", "s05f1.mp4"))
    with pytest.warns(DatasetWarning, match="3 of 72 files"):
        rows = create_dataset("dfdc", root).rows()
    assert len(rows) == 69
    assert summarize(rows)["by_method"] == {"dfdc": 46, "real": 23}
    named = by_name(rows)
    assert (named["r03f1.mp4"].label, named["r03f1.mp4"].identity, named["r03f1.mp4"].meta["original"]) == \
        ("fake", "r03", "r03.mp4")
    assert (named["r03.mp4"].label, named["r03.mp4"].identity) == ("real", "r03")
    assert named["s00f0.mp4"].identity == "s00"       # its real is missing; the group still holds together
    assert named["r03.mp4"].meta["part"] == "dfdc_train_part_0"
    assert all(len(s) == 1 for s in splits_by_identity(rows).values())
    assert {r.split for r in rows} == {"train", "val", "test"}
    assert [r.path for r in rows] == sorted(r.path for r in rows)
    assert count_frames(named["r00.mp4"].path) == 4


def test_dfdc_root_metadata_and_named_test_split(tmp_path):
    root = tmp_path / "dfdc"
    build_dfdc_part(root, ["a", "b", "c"])
    metadata = json.loads((root / "metadata.json").read_text())
    metadata["bf1.mp4"]["split"] = "test"             # one fake named test: its whole group follows
    (root / "metadata.json").write_text(json.dumps(metadata))
    rows = create_dataset("dfdc", root).rows()
    assert len(rows) == 9
    assert {Path(r.path).name for r in rows if r.identity == "b"} == {"b.mp4", "bf0.mp4", "bf1.mp4"}
    assert all(r.split == "test" and r.meta["split_source"] == "metadata" for r in rows if r.identity == "b")
    metadata["a.mp4"]["label"] = "MAYBE"
    (root / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(DatasetError) as excinfo:
        create_dataset("dfdc", root).rows()
    assert_one_line_error(excinfo, root, "a.mp4", "'MAYBE'")


def test_dfdc_without_metadata_or_files(tmp_path):
    with pytest.raises(DatasetError) as excinfo:
        create_dataset("dfdc", tmp_path).rows()
    assert_one_line_error(excinfo, tmp_path, "no metadata.json")
    (tmp_path / "metadata.json").write_text(json.dumps({"x.mp4": {"label": "REAL", "split": "train"}}))
    with pytest.raises(DatasetError) as excinfo:
        create_dataset("dfdc", tmp_path).rows()
    assert_one_line_error(excinfo, tmp_path, "none of the 1 files")


def test_dfdcp_keeps_the_release_sets_and_groups_each_target_person(tmp_path, video):
    root = build_dfdcp(tmp_path / "dfdcp", video)
    index = json.loads((root / "dataset.json").read_text())       # one more clip, listed but not downloaded
    index["method_A/4400000/1/4400000_1_A_001.mp4"] = {"label": "fake", "set": "train", "target_id": "4400000"}
    (root / "dataset.json").write_text(json.dumps(index))
    with pytest.warns(DatasetWarning, match="1 of 13 clips listed in dataset.json are missing"):
        rows = create_dataset("dfdcp", root).rows()
    assert summarize(rows)["by_method"] == {"method_A": 4, "method_B": 4, "real": 4}
    test = {r.identity for r in rows if r.split == "test"}
    assert test == {"1255229", "1907235"}
    assert {r.meta["release_set"] for r in rows if r.identity in test} == {"test"}
    assert all(r.split in ("train", "val") for r in rows if r.identity not in test)
    for identity in {r.identity for r in rows}:                  # a person's real clip and fakes share a split
        assert len({r.split for r in rows if r.identity == identity}) == 1
    assert count_frames(next(r.path for r in rows if r.identity == "1255229" and r.label == "real")) == 4
    (root / "dataset.json").write_text(json.dumps({"original_videos/1/a.mp4": {"label": "maybe", "set": "x"}}))
    place(root, "original_videos/1/a.mp4")
    with pytest.raises(DatasetError) as excinfo:
        create_dataset("dfdcp", root).rows()
    assert_one_line_error(excinfo, root, "a.mp4", "'maybe'")

