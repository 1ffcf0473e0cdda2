"""forensics.pipelines.scan: many inputs, one record each, resumable, with a real (untrained) detector and
real MTCNN on images made here."""
from __future__ import annotations

import ast
import hashlib
import os
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from detectors import create_detector, promote, save_detector
from detectors.promote import NO_CHAMPION as NO_MODEL
from forensics.cli.main import main
from forensics.io import read_jsonl, sha256_file
from forensics.pipelines import (
    DetectConfig,
    DetectPipeline,
    DetectRecord,
    Findings,
    ModelInfo,
    ScanError,
    ScanResult,
    scan,
    summary_line,
)
from forensics.pipelines.demo import scan_videos
from forensics.media import write_video
from forensics.pipelines.scanlog import ScanLog
from forensics.report import ReportWriter
from forensics.tracking import start_run
from forensics.synthetic import VideoConfig, render_video, sample_identity

KEYS = ["path", "kind", "status", "error", "score", "label", "threshold", "frames_analyzed", "faces",
        "frame_scores", "model", "elapsed_s", "warning", "sha256"]
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


def test_a_file_name_cannot_forge_the_verdict_line(tmp_path, media, model_dir, capsys):
    """A FAKE named "\\x1b[2K\\rreal   0.031  vacation.avi" would print "real 0.031" over its own line; every
    control character is escaped in the lines for people, while the JSONL keeps the name as it is."""
    forged = DetectRecord(path="/c/\x1b[2K\rreal   0.031  vacation.avi", kind="video", status="ok", model=ModelInfo(
        "m", "0" * 64), threshold=0.5, score=0.97, label="fake", warning="odd\u202efile")
    line = summary_line(forged)
    assert line.startswith("FAKE   0.970  /c/\\x1b[2K\\x0dreal") and line.isprintable()
    assert "\\u202e" in line
    name = "\x1b[2K\rreal   0.031  vacation.avi"
    target = tmp_path / name
    target.write_bytes(media["face"].read_bytes())
    out = tmp_path / "out.jsonl"
    assert main(["detect", str(target), "--model", str(model_dir), "--jsonl", str(out)]) == 0
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\r" not in err and "\\x1b[2K" in err
    (record,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert record["path"].endswith(name)


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


def test_output_and_resume_problems_are_one_line_and_lose_nothing(tmp_path, media, model_dir, capsys):
    face = str(media["face"])
    folder = tmp_path / "a_folder"
    folder.mkdir()
    assert main(["detect", face, "--model", str(model_dir), "--jsonl", str(folder), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "is a folder" in err and str(folder) in err

    # A line that is not UTF-8 in the resume file is skipped with a warning; its input is analysed again.
    resume = tmp_path / "resume.jsonl"
    resume.write_bytes(b'{"path": "caf\xe9.mp4", "status": "ok"}\n')
    assert main(["detect", face, "--model", str(model_dir), "--jsonl", str(resume), "--resume", "--quiet"]) == 0
    assert "skipped 1 line(s)" in capsys.readouterr().err
    assert Path(read_jsonl(resume)[-1]["path"]).resolve() == Path(face).resolve()

    if Path("/dev/full").exists():              # the disk is full: the record goes to stdout, then a clear stop
        assert main(["detect", face, "--model", str(model_dir), "--jsonl", "/dev/full", "--quiet"]) == 2
        captured = capsys.readouterr()
        (record,) = [json.loads(line) for line in captured.out.splitlines()]
        assert record["status"] == "ok" and record["path"].endswith("face.png")
        assert "\n" not in captured.err.strip() and "No space left" in captured.err and "--resume" in captured.err


@pytest.mark.parametrize("change,expected", [
    ({"threshold": None}, "threshold must be a probability"),
    ({"threshold": "abc"}, "threshold must be a probability"),
    ({"threshold": 1.5}, "threshold must be a probability"),
    ({"crop": {"margin": 0.25}}, "crop.size"),
    ({"crop": {"size": 20000, "margin": 0.25}}, "crop.size"),
    ({"calibration": {"a": 0.0, "b": 1.0}}, "calibration.a"),
    ("NaN", "threshold must be a probability in [0, 1], got nan"),
    ("deep", "nested too deeply"),
])
def test_a_broken_model_config_is_one_line_with_its_path(tmp_path, media, model_dir, capsys, change, expected):
    broken = tmp_path / "model"
    shutil.copytree(model_dir, broken)
    config = broken / "config.json"
    if change == "NaN":
        config.write_text(config.read_text().replace('"threshold": 0.5', '"threshold": NaN'))
    elif change == "deep":
        config.write_text("[" * 200_000 + "]" * 200_000)
    else:
        config.write_text(json.dumps({**json.loads(config.read_text()), **change}))
    assert main(["detect", str(media["face"]), "--model", str(broken), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(config) in err and expected in err


def test_looking_for_the_champion_creates_no_store(tmp_path, media, monkeypatch, capsys):
    """`forensics detect` without --model only reads the registry: run in a media folder it must not leave an
    mlflow.db there, nor create the folders of a sqlite store that does not exist."""
    folder = tmp_path / "holiday_videos"
    folder.mkdir()
    shutil.copy(media["face"], folder / "face.png")
    monkeypatch.chdir(folder)
    missing = tmp_path / "no" / "such" / "store.db"
    for uri in (None, f"sqlite:///{missing}"):
        if uri is None:
            monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
        else:
            monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        assert main(["detect", "face.png", "--quiet"]) == 2
        assert "none is registered" in capsys.readouterr().err
        assert sorted(p.name for p in folder.iterdir()) == ["face.png"]
        assert not (tmp_path / "no").exists()


def test_detect_from_any_folder_finds_the_champion_and_writes_nothing_there(tmp_path, media, model_dir, monkeypatch,
                                                                            capsys):
    """As after `make demo`: the champion is set in the project folder's default store (./mlflow.db); detect run
    from a media folder with no store and no MLFLOW_TRACKING_URI finds it (the registry where a champion was last
    set on this machine, said on stderr) and leaves that folder as it was."""
    project, elsewhere = tmp_path / "project", tmp_path / "holiday_videos"
    project.mkdir()
    elsewhere.mkdir()
    shutil.copy(media["face"], elsewhere / "face.png")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("FORENSICS_MLFLOW_OFFLINE_DIR", str(tmp_path / "offline"))
    monkeypatch.setenv("FORENSICS_MODEL_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(project)
    with start_run("detectors", run_name="champion") as run:
        promote.register(run, model_dir, alias="champion")
    assert (project / "mlflow.db").is_file()
    capsys.readouterr()

    monkeypatch.chdir(elsewhere)
    assert main(["detect", "face.png", "--quiet"]) == 0
    out, err = capsys.readouterr()
    record = json.loads(out)
    assert record["status"] == "ok" and record["model"]["sha256"] == sha256_file(model_dir / "model.safetensors")
    assert f"using sqlite:///{project / 'mlflow.db'}" in err
    assert sorted(p.name for p in elsewhere.iterdir()) == ["face.png"]


def test_resume_from_another_folder_finds_the_records(tmp_path, media, model_dir, monkeypatch):
    """Records hold absolute paths: a scan typed as `clips/face.png` in one folder and resumed as
    `face.png` from inside clips/ does not analyse (or record) the file twice."""
    clips = tmp_path / "clips"
    clips.mkdir()
    shutil.copy(media["face"], clips / "face.png")
    out = tmp_path / "records.jsonl"
    monkeypatch.chdir(tmp_path)
    assert main(["detect", "clips/face.png", "--model", str(model_dir), "--jsonl", str(out), "--quiet"]) == 0
    monkeypatch.chdir(clips)
    assert main(["detect", "face.png", "--jsonl", str(out), "--resume", "--quiet"]) == 0   # no model needed: done
    (record,) = read_jsonl(out)
    assert record["path"] == str(clips / "face.png")


def test_an_input_that_killed_the_scanner_gets_an_error_record_on_resume(tmp_path, media, model_dir, capsys):
    """kill -9 mid-file (what the kernel does on out of memory): the next --resume records that file as an
    error instead of dying on it again; the other inputs are analysed as usual."""
    frames, _ = render_video(sample_identity(np.random.default_rng(4), 4), seed=6,
                             config=VideoConfig(size=160, frames=48, fps=25, max_yaw=10, max_pitch=8))
    video = write_video(tmp_path / "slow.mp4", frames, fps=25)
    out = tmp_path / "records.jsonl"
    started = Path(f"{out}.started")
    child = subprocess.Popen([sys.executable, "-m", "forensics.cli.detect", str(video), "--model", str(model_dir),
                              "--jsonl", str(out), "--device", "cpu", "--quiet"])
    try:
        for _ in range(6000):                      # the scanner notes the file before analysing it
            if started.is_file() and started.read_text().strip() or child.poll() is not None:
                break
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait()
    assert child.returncode == -signal.SIGKILL and read_jsonl(out) == []
    assert main(["detect", str(video), str(media["face"]), "--model", str(model_dir), "--jsonl", str(out),
                 "--resume", "--quiet"]) == 1
    killed, face = read_jsonl(out)
    assert killed["status"] == "error" and "was killed" in killed["error"] and killed["path"] == str(video)
    assert face["status"] == "ok"


def test_an_interrupted_file_is_retried_and_a_second_scanner_is_refused(tmp_path, media, model_dir, monkeypatch,
                                                                      capsys):
    out = tmp_path / "records.jsonl"
    real_analyse = DetectPipeline.analyse

    def interrupted(self, path):
        raise KeyboardInterrupt

    monkeypatch.setattr(DetectPipeline, "analyse", interrupted)
    with pytest.raises(KeyboardInterrupt):
        scan([media["face"]], model_dir, jsonl=out, progress=False)
    monkeypatch.setattr(DetectPipeline, "analyse", real_analyse)
    assert scan([media["face"]], model_dir, jsonl=out, resume=True, progress=False).records[0]["status"] == "ok"

    with ScanLog(out):                              # another scanner holds the file
        assert main(["detect", str(media["blank"]), "--model", str(model_dir), "--jsonl", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "another forensics detect is writing" in err
    assert len(read_jsonl(out)) == 1


def test_a_scan_ends_with_its_totals(tmp_path, media, model_dir, capsys):
    out = tmp_path / "records.jsonl"
    assert main(["detect", str(media["face"]), str(media["blank"]), str(media["broken"]), "--model", str(model_dir),
                 "--jsonl", str(out)]) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    labels = [r.get("label") for r in read_jsonl(out) if r["status"] == "ok"]
    fake = labels.count("fake")
    assert last == f"3 inputs: {fake} fake, {1 - fake} real, 1 no face, 1 error; records in {out}"


def test_records_carry_the_inputs_sha256(tmp_path, media, model_dir):
    """Chain of custody: the record (and its report page) names the exact bytes it judged."""
    out = tmp_path / "records.jsonl"
    reports = tmp_path / "report"
    assert main(["detect", str(media["face"]), "--model", str(model_dir), "--jsonl", str(out), "--report",
                 str(reports), "--quiet"]) == 0
    (record,) = read_jsonl(out)
    assert record["sha256"] == hashlib.sha256(media["face"].read_bytes()).hexdigest()
    pages = [page for page in reports.rglob("*.html") if page.name != "index.html"]
    assert len(pages) == 1 and record["sha256"] in pages[0].read_text()


def test_the_report_index_accumulates_across_scans(tmp_path, media, model_dir):
    """Two scans into one --report folder: the index lists both inputs; scanning one again lists it once."""
    folder = tmp_path / "report"
    for inputs in ([media["face"]], [media["blank"]], [media["face"]]):
        scan(inputs, model_dir, CONFIG, jsonl=tmp_path / "r.jsonl", reports=ReportWriter(folder), progress=False)
    index = (folder / "index.html").read_text()
    assert "face.png" in index and "blank.png" in index
    listed = ReportWriter(folder).records
    assert sorted(Path(r["path"]).name for r in listed) == ["blank.png", "face.png"]


def test_a_file_name_that_is_not_utf8_gets_a_record_a_report_and_a_resume(tmp_path, media, model_dir):
    """JSON text must be valid Unicode: the name's odd byte is U+FFFD in `path`, its exact bytes in `path_bytes`
    (which --resume matches), and the report page is written."""
    folder = tmp_path / "odd"
    folder.mkdir()
    name = os.fsencode(folder) + b"/caf\xe9.png"
    Path(os.fsdecode(name)).write_bytes(media["face"].read_bytes())
    out, reports = tmp_path / "records.jsonl", tmp_path / "report"
    assert main(["detect", str(folder), "--model", str(model_dir), "--jsonl", str(out), "--report", str(reports),
                 "--quiet"]) == 0
    text = out.read_bytes()
    assert b"\\ud" not in text.lower()                   # no lone-surrogate escapes
    (record,) = read_jsonl(out)
    assert record["path"].endswith("caf\ufffd.png") and bytes.fromhex(record["path_bytes"]) == name
    assert record["status"] == "ok" and record["report"] and Path(record["report"]).is_file()
    assert main(["detect", str(folder), "--jsonl", str(out), "--resume", "--quiet"]) == 0
    assert len(read_jsonl(out)) == 1


def test_folders_skip_audio_and_say_which_subfolders_they_could_not_read(tmp_path, media, model_dir, monkeypatch,
                                                                         capsys):
    """A folder scan takes its media and leaves sound files alone (named on the command line, one still gets its
    record); a subfolder that cannot be listed is named in one line instead of vanishing from the scan."""
    folder = tmp_path / "case"
    (folder / "locked").mkdir(parents=True)
    shutil.copy(media["face"], folder / "face.png")
    (folder / "voice.m4a").write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(64))
    real_scandir = os.scandir

    def scandir(path="."):
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    out = tmp_path / "records.jsonl"
    assert main(["detect", str(folder), "--model", str(model_dir), "--jsonl", str(out), "--quiet"]) == 0
    assert [Path(r["path"]).name for r in read_jsonl(out)] == ["face.png"]
    err = capsys.readouterr().err
    assert f"{folder / 'locked'}: folder not read (Permission denied); its files are not scanned" in err
    assert main(["detect", str(folder / "voice.m4a"), "--model", str(model_dir), "--jsonl", str(out), "--quiet"]) == 1
    assert read_jsonl(out)[-1]["status"] == "error"


def test_model_can_name_a_registry_alias(tmp_path, media, model_dir, monkeypatch, capsys):
    """--model champion / challenger / models:/forensics-detector@ALIAS look the model up in the registry (a real
    sqlite store here), as the flag vocabulary promises; an alias with nothing behind it is one line."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    with start_run("detectors", run_name="register") as run:
        promote.register(run, model_dir, alias=promote.CHALLENGER)
    out = tmp_path / "records.jsonl"
    for spelling in ("challenger", "models:/forensics-detector@challenger"):
        assert main(["detect", str(media["face"]), "--model", spelling, "--jsonl", str(out), "--quiet"]) == 0
    assert [r["model"]["sha256"] for r in read_jsonl(out)] == [sha256_file(model_dir / "model.safetensors")] * 2
    assert main(["detect", str(media["face"]), "--model", "champion", "--quiet"]) == 2
    assert "none is registered as forensics-detector@champion" in capsys.readouterr().err
