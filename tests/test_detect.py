"""forensics detect: the detection pipeline, its record and the CLI on real media made here (synthetic
faces, H.264, damaged copies), with a real (untrained) detector, real MTCNN and real JSONL files."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from forensics.cli.detect import main as detect_main
from forensics.faces import Face, KeyframeFaces, interpolate_faces
from forensics.io import read_jsonl
from forensics.media import Frame, write_video
from detectors import create_detector, save_detector
from detectors.promote import NO_CHAMPION as NO_MODEL
from forensics.pipelines import (
    DetectConfig,
    DetectPipeline,
    DetectRecord,
    Findings,
    ModelInfo,
    Observation,
    ThumbnailPool,
    TrackRecord,
    collect_inputs,
)
from forensics.pipelines.record import TrackVerdict, media_score
from forensics.synthetic import VideoConfig, render_video, sample_identity

# The contract's fields in the order every record is written, then the extras detect always adds.
CONTRACT = ["path", "kind", "status", "error", "score", "label", "threshold", "frames_analyzed", "faces",
            "frame_scores", "model", "elapsed_s"]
KEYS = CONTRACT + ["warning", "sha256"]
TRACK_KEYS = ["id", "frames", "score", "mean_score", "detections"]
FRAME_KEYS = ["frame", "t", "track", "box", "score", "detected"]
VIDEO_FRAMES = 10


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("detector")
    model = create_detector("mobilenetv3-small", input_size=64)
    return save_detector(directory, model, {"threshold": 0.5, "crop": {"size": 64, "margin": 0.25}})


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    """One good video, one good image and five kinds of bad input, in one folder (plus a non-media file
    that a folder scan must ignore)."""
    folder = tmp_path_factory.mktemp("media")
    frames, _ = render_video(sample_identity(np.random.default_rng(3), 3), seed=5,
                             config=VideoConfig(size=160, frames=VIDEO_FRAMES, fps=25, max_yaw=10, max_pitch=8))
    files = {"video": write_video(folder / "real.mp4", frames, fps=25)}
    files["image"] = folder / "face.png"
    Image.fromarray(frames[0]).save(files["image"])
    data = files["video"].read_bytes()
    files["empty"] = folder / "empty.mp4"
    files["empty"].write_bytes(b"")
    files["truncated"] = folder / "truncated.mp4"
    files["truncated"].write_bytes(data[: len(data) // 2])
    corrupt = bytearray(data)
    middle = len(corrupt) // 2
    corrupt[middle:middle + 2048] = bytes(np.random.default_rng(0).integers(0, 256, 2048, dtype=np.uint8))
    files["corrupt"] = folder / "corrupt_middle.mp4"
    files["corrupt"].write_bytes(bytes(corrupt))
    files["text"] = folder / "notes_not_a_video.mp4"
    files["text"].write_text("this is not a video\n" * 20)
    files["tiny"] = folder / "one_pixel.png"
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(files["tiny"])
    files["blank"] = folder / "blank_wall.png"                  # decodes fine, holds no face
    Image.fromarray(np.full((120, 160, 3), 90, np.uint8)).save(files["blank"])
    (folder / "readme.txt").write_text("not media; a folder scan skips it\n")
    return files


def run_cli(*args: str, capsys=None) -> tuple[int, str, str]:
    code = detect_main([str(a) for a in args])
    out, err = capsys.readouterr() if capsys else ("", "")
    return code, out, err


# ---------------------------------------------------------------- CLI end to end


def test_folder_of_good_and_bad_media(tmp_path, media, model_dir, capsys):
    jsonl = tmp_path / "out.jsonl"
    folder = media["video"].parent
    code, out, err = run_cli(folder, "--model", model_dir, "--jsonl", jsonl, "--frames", 6, capsys=capsys)
    assert code == 1                                   # some inputs failed, the others are still reported
    assert out == ""                                   # records went to the JSONL, not stdout
    assert "Traceback" not in err
    records = {Path(r["path"]).name: r for r in read_jsonl(jsonl)}
    assert sorted(records) == sorted(p.name for p in media.values())   # readme.txt skipped
    for record in records.values():
        assert list(record) == KEYS                    # every field, in the contract's order, no "report"
        assert record["model"]["name"] == "mobilenetv3-small" and len(record["model"]["sha256"]) == 64
        # the card's summary: this untrained checkpoint records no footage and no test figure, and says so
        assert record["model"]["card"] == ("mobilenetv3-small: training footage not recorded; test video AUC "
                                           "not recorded")
        assert record["threshold"] == 0.5 and record["elapsed_s"] >= 0

    video = records["real.mp4"]
    assert video["status"] == "ok" and video["kind"] == "video" and video["error"] is None
    assert video["frames_analyzed"] == 6
    assert 0.0 <= video["score"] <= 1.0 and video["label"] == ("fake" if video["score"] >= 0.5 else "real")
    assert len(video["faces"]) >= 1 and all(list(face) == TRACK_KEYS for face in video["faces"])
    assert {f["frame"] for f in video["frame_scores"]} <= set(range(VIDEO_FRAMES))
    for entry in video["frame_scores"]:
        assert list(entry) == FRAME_KEYS and len(entry["box"]) == 4
        assert 0.0 <= entry["score"] <= 1.0
    assert max(f["score"] for f in video["faces"]) == pytest.approx(video["score"])

    image = records["face.png"]
    assert image["status"] == "ok" and image["kind"] == "image" and image["frames_analyzed"] == 1

    blank = records["blank_wall.png"]
    assert blank["status"] == "no_face" and blank["kind"] == "image" and blank["frames_analyzed"] == 1
    assert blank["score"] is None and blank["label"] is None and blank["error"] is None
    assert blank["faces"] == [] and blank["frame_scores"] == []
    assert f"no face       {media['blank']}" in err

    for name in ("empty.mp4", "truncated.mp4", "notes_not_a_video.mp4", "one_pixel.png"):
        record = records[name]
        assert record["status"] == "error", record
        assert name in record["error"] and "\n" not in record["error"]
        assert record["score"] is None and record["label"] is None and record["frame_scores"] == []
        assert f"ERROR  {record['error']}" in err

    # Damage in the middle of the stream: the frames before (and after) it still decode, so the file is
    # analysed and the record says what was lost.
    corrupt = records["corrupt_middle.mp4"]
    assert corrupt["status"] == "ok" and corrupt["frames_analyzed"] >= 1
    assert corrupt["warning"] and "corrupt" in corrupt["warning"]


def test_records_go_to_stdout_without_jsonl(media, model_dir, capsys):
    code, out, err = run_cli(media["image"], media["video"], "--model", model_dir, "--frames", 3, "--quiet",
                             capsys=capsys)
    assert code == 0
    lines = out.strip().splitlines()
    assert [json.loads(line)["path"] for line in lines] == [str(media["image"]), str(media["video"])]
    assert err == ""                                   # --quiet: no bar, no summary


def test_pipeline_record_is_typed_and_is_what_the_cli_writes(media, model_dir, capsys):
    code, out, _ = run_cli(media["video"], "--model", model_dir, "--frames", 3, "--device", "cpu", "--quiet",
                           capsys=capsys)
    printed = json.loads(out)
    pipeline = DetectPipeline.from_path(model_dir, DetectConfig(frames=3, device="cpu", thumbnails=0))
    record = pipeline.analyse(media["video"]).record
    assert isinstance(record, DetectRecord) and record.faces and all(isinstance(t, TrackRecord) for t in record.faces)
    written = record.to_json()
    assert list(written) == list(printed) == KEYS
    assert written | {"elapsed_s": None} == printed | {"elapsed_s": None}    # the same record, field for field
    assert json.loads(json.dumps(written, allow_nan=False)) == written        # strict JSON, lossless


def test_resume_skips_inputs_already_recorded(tmp_path, media, model_dir, capsys, monkeypatch):
    jsonl = tmp_path / "resume.jsonl"
    assert run_cli(media["video"], "--model", model_dir, "--jsonl", jsonl, "--frames", 3, "--quiet",
                   capsys=capsys)[0] == 0
    with open(jsonl, "a") as fh:
        fh.write('{"path": "torn')                     # a run killed mid-write leaves half a line
    code, _, _ = run_cli(media["video"], media["image"], "--model", model_dir, "--jsonl", jsonl, "--frames", 3,
                         "--resume", "--quiet", capsys=capsys)
    assert code == 0
    paths = [r["path"] for r in read_jsonl(jsonl)]
    assert sorted(paths) == sorted([str(media["video"]), str(media["image"])])   # the video only once
    code, _, _ = run_cli(media["video"], media["image"], "--model", model_dir, "--jsonl", jsonl, "--resume",
                         "--quiet", capsys=capsys)
    assert code == 0 and len(read_jsonl(jsonl)) == 2   # nothing left to do
    # Nothing left to do needs no model: an empty registry is not an error then.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'empty_registry.db'}")
    code, _, err = run_cli(media["video"], media["image"], "--jsonl", jsonl, "--resume", capsys=capsys)
    assert code == 0 and "resuming, 2 of 2 inputs already done" in err and len(read_jsonl(jsonl)) == 2


def test_every_frame_mode_analyses_every_frame(media, model_dir, capsys):
    code, out, _ = run_cli(media["video"], "--model", model_dir, "--every", 1, "--detect-every", 3, "--quiet",
                           capsys=capsys)
    record = json.loads(out)
    assert code == 0 and record["status"] == "ok"
    assert record["frames_analyzed"] == VIDEO_FRAMES
    per_frame = {f["frame"]: f for f in record["frame_scores"]}
    assert sorted(per_frame) == list(range(VIDEO_FRAMES))      # a face on every frame, found or carried
    # MTCNN ran on frames 0, 3, 6, 9 (the last frame always); the others were interpolated.
    assert sorted(i for i, f in per_frame.items() if f["detected"]) == [0, 3, 6, 9]


def test_report_writes_html(tmp_path, media, model_dir, capsys):
    pytest.importorskip("forensics.report")
    report_dir = tmp_path / "reports"
    code, out, _ = run_cli(media["video"], media["text"], "--model", model_dir, "--frames", 4, "--report",
                           report_dir, "--quiet", capsys=capsys)
    assert code == 1
    records = [json.loads(line) for line in out.splitlines()]
    pages = sorted(p for p in report_dir.glob("*.html") if p.name != "index.html")
    assert len(pages) == 2 and all(p.stat().st_size > 0 for p in pages)
    assert {Path(r["report"]).name for r in records} == {p.name for p in pages}
    assert all(list(r) == KEYS + ["report"] for r in records)   # the extra comes last
    index = (report_dir / "index.html").read_text()
    assert all(p.name in index for p in pages)          # the run's index links both pages


def test_usage_errors_exit_2(tmp_path, model_dir, capsys):
    assert run_cli(capsys=capsys)[0] == 2
    code, _, err = run_cli(tmp_path / "missing.mp4", "--model", model_dir, capsys=capsys)
    assert code == 2 and "missing.mp4" in err
    assert run_cli(tmp_path, "--model", model_dir, "--resume", capsys=capsys)[0] == 2   # --resume needs --jsonl
    assert run_cli(tmp_path, "--model", model_dir, "--frames", 0, capsys=capsys)[0] == 2
    bad_model = tmp_path / "not_a_model"
    bad_model.mkdir()
    (tmp_path / "x.png").write_bytes(b"")
    code, _, err = run_cli(tmp_path / "x.png", "--model", bad_model, capsys=capsys)
    assert code == 2 and "not_a_model" in err and "Traceback" not in err


def test_no_registered_model_exits_2_with_a_hint(tmp_path, media):
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}")
    result = subprocess.run([sys.executable, "-m", "forensics.cli.detect", str(media["image"])], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr == f"forensics detect: {NO_MODEL}\n" and result.stdout == ""
    assert "make demo" in result.stderr and "--model" in result.stderr


# ---------------------------------------------------------------- pieces


def _face(x: float, prob: float = 0.99) -> Face:
    return Face(box=np.array([x, 10, x + 40, 50], np.float32), prob=prob,
                landmarks=np.array([[x + 12, 25], [x + 28, 25], [x + 20, 32], [x + 14, 40], [x + 26, 40]], np.float32))


def test_keyframes_interpolate_matched_faces_and_hold_unmatched_ones():
    moving, vanishing = _face(0), _face(200)
    start, end = [moving, vanishing], [_face(10)]
    quarter = interpolate_faces(start, end, 0.25)
    assert len(quarter) == 2 and quarter[0].box[0] == pytest.approx(2.5)        # moved a quarter of the way
    np.testing.assert_allclose(quarter[0].landmarks, moving.landmarks + [2.5, 0], atol=1e-5)
    assert quarter[1] is vanishing                                                  # held near its keyframe
    assert [f.box[0] for f in interpolate_faces(start, end, 0.75)] == [pytest.approx(7.5)]

    calls = []

    def detect(images):          # a face at x = the frame's pixel value, so interpolation is checkable
        calls.append(len(images))
        return [[_face(float(im[0, 0, 0]))] for im in images]

    frames = [Frame(index=i, t=i / 25, image=np.full((4, 4, 3), i, np.uint8)) for i in range(23)]
    out = list(KeyframeFaces(detect, detect_every=5, chunk=10).run(iter(frames)))
    assert [f.frame.index for f in out] == list(range(23))
    assert [f.frame.index for f in out if f.detected] == [0, 5, 10, 15, 20, 22]
    assert [float(f.faces[0].box[0]) for f in out] == pytest.approx(list(range(23)))
    assert max(calls) <= 2                       # MTCNN batches stay within a chunk: memory is bounded


def test_media_score_ignores_rarely_seen_tracks_unless_none_is_established():
    steady = TrackVerdict(id=0, frames=30, detections=6, logit=-2.0, score=0.12, mean_score=0.12)
    flicker = TrackVerdict(id=1, frames=3, detections=1, logit=3.0, score=0.95, mean_score=0.95)
    assert media_score([steady, flicker]) == pytest.approx(0.12)
    assert media_score([flicker]) == pytest.approx(0.95)        # a still image: one detection is all there is
    assert media_score([]) is None


def test_thumbnails_most_suspicious_first_and_spread_out():
    pool = ThumbnailPool(count=3)
    crop = np.zeros((8, 8, 3), np.uint8)
    for frame, score in enumerate([0.9, 0.91, 0.92, 0.2, 0.3, 0.5, 0.1, 0.4, 0.6, 0.05] * 2):
        pool.offer(score, frame, frame / 25, 0, crop)
    picked = pool.pick()
    assert len(picked) == 3 and [p["score"] for p in picked] == sorted((p["score"] for p in picked), reverse=True)
    assert picked[0]["score"] == 0.92
    frames = sorted(p["frame"] for p in picked)
    assert min(b - a for a, b in zip(frames, frames[1:])) > 1    # not three neighbouring frames


def test_folder_scan_takes_media_by_extension_or_content(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.MP4").write_bytes(b"x")
    (tmp_path / "a.jpg").write_bytes(b"x")
    (tmp_path / "clip.bin").write_bytes(b"\x1a\x45\xdf\xa3" + bytes(64))     # Matroska magic, odd name
    (tmp_path / "results.jsonl").write_text("{}\n")
    (tmp_path / ".hidden.mp4").write_bytes(b"x")
    found = collect_inputs([tmp_path])
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["a.jpg", "clip.bin", "sub/b.MP4"]
    assert collect_inputs([tmp_path / "a.jpg", tmp_path]) [0].name == "a.jpg"   # named files first, no repeats
    assert len(collect_inputs([tmp_path / "a.jpg", tmp_path])) == 3


# ---------------------------------------------------------------- the record, built from findings


def _sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64)))


def _build(observations=(), error=None, warning=None) -> DetectRecord:
    findings = Findings(kind="video", frames_analyzed=5, warning=warning, observations=list(observations),
                        error=error)
    return DetectRecord.build("/clips/a.mp4", findings, ModelInfo("mobilenetv3-small", "ab" * 32), 0.5,
                              probability=_sigmoid, aggregate=lambda logits: float(np.mean(logits)),
                              elapsed_s=1.23456)


def _obs(frame: int, track: int, logit: float, detected: bool = True) -> Observation:
    return Observation(frame=frame, t=frame / 30 + 1e-7, track=track, box=np.array([10.04, 20.06, 50.0, 60.0]),
                       logit=logit, detected=detected)


def test_record_of_scored_faces_rounds_and_orders_like_the_contract():
    steady = [_obs(i, 0, 2.0) for i in range(3)]
    flicker = [_obs(1, 1, 5.0)]                       # one detection: may not decide the media score
    record = _build(steady + flicker, warning="frames missing")
    out = record.to_json()
    assert list(out) == KEYS
    assert out["status"] == "ok" and out["error"] is None and out["label"] == "fake"
    assert out["score"] == round(float(_sigmoid(2.0)), 6) == 0.880797
    assert out["faces"] == [
        {"id": 0, "frames": 3, "score": 0.880797, "mean_score": 0.880797, "detections": 3},
        {"id": 1, "frames": 1, "score": 0.993307, "mean_score": 0.993307, "detections": 1}]
    assert [list(f) for f in out["frame_scores"]] == [FRAME_KEYS] * 4
    assert out["frame_scores"][1] == {"frame": 1, "t": 0.0333, "track": 0, "box": [10.0, 20.1, 50.0, 60.0],
                                      "score": 0.880797, "detected": True}
    assert out["elapsed_s"] == 1.235 and out["frames_analyzed"] == 5 and out["warning"] == "frames missing"
    assert out["model"] == {"name": "mobilenetv3-small", "sha256": "ab" * 32, "trained_on": None, "card": None,
                            "runtime": None}
    assert out["threshold"] == 0.5
    assert json.loads(json.dumps(out, allow_nan=False)) == out


def test_record_of_an_error_or_no_face_has_every_field_and_no_verdict():
    failed = _build([_obs(0, 0, 2.0)], error="/clips/a.mp4: cannot decode\n  (bad   header)").to_json()
    assert list(failed) == KEYS
    assert failed["status"] == "error" and failed["error"] == "/clips/a.mp4: cannot decode (bad header)"
    assert failed["score"] is None and failed["label"] is None and failed["faces"] == failed["frame_scores"] == []
    assert failed["kind"] == "video"                  # what was known before the failure stays
    empty = _build([]).to_json()
    assert list(empty) == KEYS
    assert empty["status"] == "no_face" and empty["error"] is None and empty["score"] is None
    assert empty["label"] is None and empty["faces"] == [] and empty["frames_analyzed"] == 5


def test_record_with_non_finite_scores_is_an_error_never_nan():
    out = _build([_obs(0, 0, float("nan")), _obs(1, 0, 1.0)]).to_json()
    assert out["status"] == "error" and "non-finite" in out["error"] and out["error"].startswith("/clips/a.mp4")
    json.dumps(out, allow_nan=False)                  # raises on NaN or infinity


def test_report_extra_only_when_a_report_was_asked_for():
    record = _build([_obs(0, 0, -1.0)], warning="frames missing")
    assert "report" not in record.to_json() and record.to_json()["label"] == "real"
    linked = record.with_report("/out/a.mp4-0123456789.html").to_json()
    assert list(linked) == KEYS + ["report"] and linked["report"] == "/out/a.mp4-0123456789.html"
    failed = record.with_report(None, problem="report not written: OSError: disk full").to_json()
    assert failed["report"] is None and failed["warning"] == "frames missing; report not written: OSError: disk full"
    assert _build([]).with_report(None, problem="x").to_json()["warning"] == "x"
