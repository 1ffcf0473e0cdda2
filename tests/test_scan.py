"""forensics.pipelines.scan: many inputs, one record each, resumable, with a real (untrained) detector and
real MTCNN on images made here."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from detectors import create_detector, promote, save_detector
from detectors.promote import NO_CHAMPION as NO_MODEL
from forensics.io import read_jsonl
from forensics.pipelines import (
    DetectConfig,
    DetectRecord,
    Findings,
    ModelInfo,
    ScanError,
    ScanResult,
    scan,
    summary_line,
)
from forensics.pipelines.demo import scan_videos
from forensics.report import ReportWriter
from forensics.synthetic import VideoConfig, render_video, sample_identity

KEYS = ["path", "kind", "status", "error", "score", "label", "threshold", "frames_analyzed", "faces",
        "frame_scores", "model", "elapsed_s", "warning"]
CONFIG = DetectConfig(device="cpu")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    model = create_detector("mobilenetv3-small", input_size=64)
    return save_detector(tmp_path_factory.mktemp("detector"), model, {"threshold": 0.5,
                                                                        "crop": {"size": 64, "margin": 0.25}})


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    """A face, a blank wall (no face) and a file that is not media: one input of each status."""
    folder = tmp_path_factory.mktemp("scan_media")
    frames, _ = render_video(sample_identity(np.random.default_rng(3), 3), seed=5,
                             config=VideoConfig(size=160, frames=1, fps=25, max_yaw=10, max_pitch=8))
    files = {"face": folder / "face.png", "blank": folder / "blank.png", "broken": folder / "broken.mp4"}
    Image.fromarray(frames[0]).save(files["face"])
    Image.fromarray(np.full((120, 160, 3), 90, np.uint8)).save(files["blank"])
    files["broken"].write_text("not a video\n" * 10)
    return files


class Recorder:
    """An on_record callback that keeps what it was given, and a model finder that counts its calls."""
    def __init__(self, model_dir: Path | None = None) -> None:
        self.records: list[DetectRecord] = []
        self.model_lookups = 0
        self.model_dir = model_dir

    def __call__(self, record: DetectRecord) -> None:
        self.records.append(record)

    def model(self) -> Path:
        self.model_lookups += 1
        if self.model_dir is None:
            raise ScanError(NO_MODEL)
        return self.model_dir


def test_scan_writes_one_record_per_input_in_order(tmp_path, media, model_dir):
    jsonl = tmp_path / "scan.jsonl"
    seen = Recorder()
    inputs = [media["face"], media["blank"], media["broken"]]
    result = scan(inputs, model_dir, CONFIG, jsonl=jsonl, progress=False, on_record=seen)
    assert [r["path"] for r in result.records] == [str(p) for p in inputs]
    assert result.statuses == ["ok", "no_face", "error"] and result.exit_status == 1
    assert result.counts == {"ok": 1, "no_face": 1, "error": 1} and result.resumed == 0
    assert read_jsonl(jsonl) == result.records == [r.to_json() for r in seen.records]
    assert all(list(r) == KEYS for r in result.records)
    assert summary_line(seen.records[2]) == f"ERROR  {result.records[2]['error']}"


def test_scan_prints_records_on_stdout_without_a_jsonl(media, model_dir, capsys):
    result = scan([media["blank"]], model_dir, CONFIG, progress=False)
    out, err = capsys.readouterr()
    assert [json.loads(line) for line in out.splitlines()] == result.records and err == ""
    assert result.exit_status == 0


def test_resume_skips_done_inputs_and_needs_no_model_once_finished(tmp_path, media, model_dir):
    jsonl = tmp_path / "scan.jsonl"
    first = scan([media["face"]], model_dir, CONFIG, jsonl=jsonl, progress=False)
    more = Recorder(model_dir)
    second = scan([media["face"], media["blank"]], more.model, CONFIG, jsonl=jsonl, resume=True, progress=False,
                  on_record=more)
    assert [r.path for r in more.records] == [str(media["blank"])] and more.model_lookups == 1
    assert second.records[0] == first.records[0] and second.resumed == 1       # kept as read back
    assert [r["path"] for r in read_jsonl(jsonl)] == [str(media["face"]), str(media["blank"])]

    finished = Recorder(model_dir=None)                      # no model anywhere: fine, nothing to analyse
    third = scan([media["blank"], media["face"]], finished.model, CONFIG, jsonl=jsonl, resume=True,
                 progress=False, on_record=finished)
    assert finished.model_lookups == 0 and finished.records == []
    assert [r["path"] for r in third.records] == [str(media["blank"]), str(media["face"])]
    assert third.resumed == 2 and third.exit_status == 0 and len(read_jsonl(jsonl)) == 2


def test_scan_refuses_to_start_before_writing_anything(tmp_path, media, model_dir):
    jsonl = tmp_path / "never.jsonl"
    with pytest.raises(ScanError, match="missing.mp4: no such file"):
        scan([tmp_path / "missing.mp4"], model_dir, CONFIG, jsonl=jsonl, progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ScanError, match="no media files found in"):
        scan([tmp_path / "empty"], model_dir, CONFIG, jsonl=jsonl, progress=False)
    with pytest.raises(ScanError, match="none is registered as forensics-detector@champion"):
        scan([media["face"]], Recorder(model_dir=None).model, CONFIG, jsonl=jsonl, progress=False)
    (tmp_path / "not_a_model").mkdir()
    with pytest.raises(ScanError, match="not_a_model"):
        scan([media["face"]], tmp_path / "not_a_model", CONFIG, jsonl=jsonl, progress=False)
    with pytest.raises(ScanError, match="JSONL"):
        scan([media["face"]], model_dir, CONFIG, resume=True, progress=False)
    assert not jsonl.exists()


def test_scan_with_reports_links_each_record_to_its_page(tmp_path, media, model_dir):
    result = scan([media["face"], media["broken"]], model_dir, CONFIG, jsonl=tmp_path / "r.jsonl",
                  reports=ReportWriter(tmp_path / "report"), progress=False)
    assert all(list(r) == KEYS + ["report"] and Path(r["report"]).is_file() for r in result.records)
    index = (tmp_path / "report" / "index.html").read_text()
    assert all(Path(r["report"]).name in index for r in result.records)


def test_a_report_that_cannot_be_written_becomes_a_warning(tmp_path):
    blocked = tmp_path / "a_file_not_a_folder"
    blocked.write_text("")
    record = DetectRecord.build("/clips/a.mp4", Findings(kind="video", warning="frames missing"),
                                ModelInfo("m", "0" * 64), 0.5, probability=np.asarray, aggregate=max, elapsed_s=0.1)
    reports = ReportWriter(blocked)
    out = reports.add(record, []).to_json()
    assert out["report"] is None and out["status"] == "no_face"
    assert out["warning"].startswith("frames missing; report not written: ")
    assert reports.records == []                             # no page, so nothing for the index to link


def test_exit_status_and_summary_lines():
    assert ScanResult([{"status": "ok"}, {"status": "no_face"}]).exit_status == 0
    assert ScanResult([{"status": "ok"}, {"status": "error"}]).exit_status == 1
    model = ModelInfo("m", "0" * 64)
    fake = DetectRecord(path="/c/x.mp4", kind="video", status="ok", model=model, threshold=0.5, score=0.91234,
                        label="fake", warning="frames missing")
    assert summary_line(fake) == "FAKE   0.912  /c/x.mp4  (warning: frames missing)"
    real = DetectRecord(path="/c/y.png", kind="image", status="ok", model=model, threshold=0.5, score=0.1,
                        label="real")
    assert summary_line(real) == "real   0.100  /c/y.png"
    assert summary_line(DetectRecord(path="/c/z.png", kind="image", status="no_face", model=model,
                                     threshold=0.5)) == "no face       /c/z.png"


def _loaded_after(imports: str, wanted: str) -> list[str]:
    """The module names in `wanted` (a Python expression over `names`, the loaded module names) after a fresh
    interpreter runs `import sys, <imports>`."""
    code = f"import sys, {imports}; names = list(sys.modules); print(sorted({wanted}))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return ast.literal_eval(result.stdout.strip())


def test_the_library_never_imports_the_cli():
    assert _loaded_after("forensics.pipelines, forensics.pipelines.scan, forensics.pipelines.demo",
                         "m for m in names if m.startswith('forensics.cli')") == []


def test_the_detect_path_imports_no_training_or_tracking_stack():
    # `forensics detect` starts in a fresh process for every command: scikit-learn (metrics), MLflow and
    # matplotlib (figures) cost seconds there and are only needed to train, track or report.
    assert _loaded_after("forensics.pipelines.scan, detectors.bundle",
                         "{m.split('.')[0] for m in names} & {'sklearn', 'mlflow', 'matplotlib'}") == []


def test_demo_scans_with_the_champion_and_needs_one(tmp_path, media, model_dir, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'empty_registry.db'}")
    with pytest.raises(ValueError, match="none is registered as forensics-detector@champion"):
        scan_videos([media["face"]], tmp_path)
    assert not (tmp_path / "detections.jsonl").exists()

    asked = []
    monkeypatch.setattr(promote, "resolve", lambda alias: asked.append(alias) or model_dir)
    records = scan_videos([media["face"], media["blank"]], tmp_path)
    assert asked == [promote.CHAMPION]
    assert records == read_jsonl(tmp_path / "detections.jsonl") and [r["status"] for r in records] == ["ok", "no_face"]
    assert all(Path(r["report"]).parent == tmp_path / "report" for r in records)
    assert (tmp_path / "report" / "index.html").is_file()
