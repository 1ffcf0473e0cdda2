"""HTML report: self-contained pages built from synthetic detect records and numpy-made face crops."""
from __future__ import annotations

import base64
import html as html_text
import io
import re

import numpy as np
import pytest
from PIL import Image

from forensics.pipelines import DetectRecord, Findings, ModelInfo, Observation
from forensics.report import report_name, track_series, write_index, write_report
from forensics.figures import score_timeline_figure
from forensics.report.html import figure_png

EVIL_NAME = "a<script>alert(1)</script>&b.mp4"   # "/" inside is fine: the record path is only a string
IMG_SRC = re.compile(r'src="([^"]*)"')


def _model() -> dict:
    return {"name": "mobilenetv3-small", "sha256": "ab12cd34" * 8}


def _video_record(path: str) -> dict:
    """Two tracks, 20 sampled frames each (40 frame scores); track 1 fake-looking, track 0 real-looking."""
    rng = np.random.default_rng(0)
    frame_scores = []
    for i in range(20):
        frame, t = i * 5, i * 5 / 25.0
        frame_scores.append({"frame": frame, "t": t, "track": 0, "box": [10, 10, 60, 60],
                             "score": float(rng.uniform(0.05, 0.3))})
        frame_scores.append({"frame": frame, "t": t, "track": 1, "box": [80, 10, 130, 60],
                             "score": float(rng.uniform(0.6, 0.95))})
    return {"path": path, "kind": "video", "status": "ok", "error": None, "score": 0.87, "label": "fake",
            "threshold": 0.5, "frames_analyzed": 20,
            "faces": [{"id": 0, "frames": 20, "score": 0.12}, {"id": 1, "frames": 20, "score": 0.87}],
            "frame_scores": frame_scores, "model": _model(), "elapsed_s": 3.21, "warning": None}


def _thumbnails(n: int = 4, size: int = 64) -> list[dict]:
    thumbs = []
    for i in range(n):
        image = np.zeros((size, size, 3), np.uint8)
        image[:, :, i % 3] = 200
        image[size // 4: size // 2, size // 4: 3 * size // 4] = 255
        thumbs.append({"frame": 5 * i, "t": 0.2 * i, "track": 1, "score": 0.95 - 0.05 * i, "image": image})
    return thumbs


def _other_record(path: str, kind: str, status: str, **fields) -> dict:
    record = {"path": path, "kind": kind, "status": status, "error": None, "score": None, "label": None,
              "threshold": 0.5, "frames_analyzed": 0, "faces": [], "frame_scores": [], "model": _model(),
              "elapsed_s": 0.4}
    record.update(fields)
    return record


def _images(html: str) -> list[bytes]:
    sources = IMG_SRC.findall(html)
    prefix = "data:image/png;base64,"
    assert all(s.startswith(prefix) for s in sources), "every image must be an inline PNG"
    return [base64.b64decode(s[len(prefix):]) for s in sources]


def _assert_self_contained(html: str) -> None:
    assert not re.search(r"https?://", html), "no external references"
    assert "<script" not in html.lower() and "<link" not in html.lower()


def test_video_report_is_self_contained_escaped_and_complete(tmp_path):
    path = str(tmp_path / "in" / EVIL_NAME)
    record = _video_record(path)
    warning = "decoding stopped at frame 97 <corrupt> & truncated"
    record["warning"] = warning
    out = write_report(record, _thumbnails(), tmp_path / "report")

    assert out.exists() and out.parent == tmp_path / "report" and out.suffix == ".html"
    assert "<" not in out.name and "&" not in out.name
    html = out.read_text(encoding="utf-8")
    _assert_self_contained(html)
    assert "<script>alert(1)" not in html
    assert "a&lt;script&gt;alert(1)&lt;/script&gt;&amp;b.mp4" in html
    assert 'class="word">FAKE<' in html
    assert "0.870" in html and "0.500" in html                     # score and threshold
    assert "mobilenetv3-small" in html and "ab12cd34ab12cd34" in html   # model name + sha prefix
    assert "decoding stopped at frame 97 &lt;corrupt&gt; &amp; truncated" in html
    assert "Score over time" in html and "Face tracks" in html
    assert "frame 15 \u00b7 0.60 s \u00b7 track 1 \u00b7 score 0.800" in html   # 4th thumbnail caption

    images = _images(html)
    assert len(images) == 1 + 4                                    # timeline + thumbnails
    assert all(png.startswith(b"\x89PNG\r\n\x1a\n") for png in images)
    timeline = Image.open(io.BytesIO(images[0]))
    assert timeline.width > 400 and timeline.height > 150
    crop = np.asarray(Image.open(io.BytesIO(images[1])).convert("RGB"))
    np.testing.assert_array_equal(crop, _thumbnails()[0]["image"])   # lossless: the crop the model saw
    assert [p.name for p in out.parent.iterdir()] == [out.name]       # atomic write left no temp file


def test_error_record_shows_error_line(tmp_path):
    record = _other_record("/data/broken.mp4", "video", "error",
                           error="/data/broken.mp4: cannot decode video (Invalid data found <moov>)")
    html = write_report(record, [], tmp_path).read_text(encoding="utf-8")
    _assert_self_contained(html)
    assert 'class="word">ERROR<' in html
    assert "/data/broken.mp4: cannot decode video (Invalid data found &lt;moov&gt;)" in html
    assert _images(html) == [] and "Score over time" not in html


def test_no_face_record(tmp_path):
    record = _other_record("/data/empty room.mp4", "video", "no_face", frames_analyzed=32)
    html = write_report(record, [], tmp_path).read_text(encoding="utf-8")
    assert 'class="word">NO FACE<' in html and "No face was found" in html
    assert "FAKE" not in html and "REAL<" not in html
    assert _images(html) == []


def test_image_record_shows_face_and_score(tmp_path):
    record = _other_record("/data/portrait.jpg", "image", "ok", score=0.2, label="real", frames_analyzed=1,
                           faces=[{"id": 0, "frames": 1, "score": 0.2}],
                           frame_scores=[{"frame": 0, "t": 0.0, "track": 0, "box": [1, 2, 3, 4], "score": 0.2}])
    thumb = _thumbnails(1)[0] | {"score": 0.2, "track": 0}
    html = write_report(record, [thumb], tmp_path).read_text(encoding="utf-8")
    _assert_self_contained(html)
    assert 'class="word">REAL<' in html and "0.200" in html
    assert "Score over time" not in html and "face 0 \u00b7 score 0.200" in html
    assert len(_images(html)) == 1


def test_same_name_in_different_folders_gets_distinct_reports(tmp_path):
    first = write_report(_video_record("/cases/a/clip.mp4"), [], tmp_path)
    second = write_report(_video_record("/cases/b/clip.mp4"), [], tmp_path)
    assert first != second and first.exists() and second.exists()
    assert first.name.startswith("clip.mp4-") and second.name.startswith("clip.mp4-")
    assert report_name("/cases/a/clip.mp4") == first.name            # stable: the index can find it
    assert report_name("/x/.hidden") [0] != "."


def test_index_lists_every_record_and_links_written_reports(tmp_path):
    records = [
        _video_record(str(tmp_path / EVIL_NAME)),
        _other_record("/data/broken.mp4", "video", "error", error="/data/broken.mp4: not a video"),
        _other_record("/data/empty.mp4", "video", "no_face"),
        _other_record("/data/portrait.jpg", "image", "ok", score=0.1, label="real"),
    ]
    for record in records[:3]:                                      # the last one has no report (yet)
        write_report(record, [], tmp_path)
    html = write_index(records, tmp_path).read_text(encoding="utf-8")
    _assert_self_contained(html)
    assert html.count("<tr>") == 1 + len(records)
    for word in ("FAKE", "ERROR", "NO FACE", "REAL"):
        assert f">{word}<" in html
    assert "&lt;script&gt;" in html and "<script>" not in html
    assert "/data/broken.mp4: not a video" in html
    links = re.findall(r'href="([^"]*)"', html)
    assert sorted(links) == sorted(report_name(r["path"]) for r in records[:3])
    assert all((tmp_path / link).exists() for link in links)
    assert "4 inputs" in html


def test_track_series_and_timeline_png():
    series = track_series(_video_record("/x.mp4")["frame_scores"][::-1])   # reversed: must be re-sorted
    assert list(series) == [0, 1]
    times, scores = series[1]
    assert len(times) == 20 and np.all(np.diff(times) > 0) and scores.min() >= 0.6
    png = figure_png(score_timeline_figure(series, 0.5, "test"))
    image = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    assert image.shape[1] > 400 and image.std() > 10                  # drawn, not blank


@pytest.mark.parametrize("name", ["../../etc/passwd", "con:<>|?*.mp4", "", "\u00e9t\u00e9 clip.mov"])
def test_report_name_is_a_safe_file_name(name):
    result = report_name(f"/some/dir/{name}")
    assert re.fullmatch(r"[A-Za-z0-9._-]+-[0-9a-f]{10}\.html", result)
    assert not result.startswith(".")


def test_track_table_shows_detections_and_mean_score_when_recorded(tmp_path):
    record = _video_record("/cases/tracks.mp4")
    plain = write_report(record, [], tmp_path / "plain").read_text(encoding="utf-8")
    assert "Detected on" not in plain and "Mean frame score" not in plain
    record["faces"] = [{"id": 0, "frames": 20, "detections": 7, "score": 0.12, "mean_score": 0.181},
                       {"id": 1, "frames": 20, "detections": 20, "score": 0.87, "mean_score": 0.764}]
    full = write_report(record, [], tmp_path / "full").read_text(encoding="utf-8")
    assert "Detected on" in full and "Mean frame score" in full
    assert '<td class="num">7</td>' in full and "0.764" in full
    # Every column is explained under the table, and only the columns shown.
    legend = full.split('<dl class="legend">')[1].split("</dl>")[0]
    assert "<dt>Score</dt>" in legend and "calibrated probability" in legend and "<dt>Detected on</dt>" in legend
    assert "<dt>Detected on</dt>" not in plain.split('<dl class="legend">')[1]


def test_report_of_a_record_built_by_detect(tmp_path):
    """The page of a record as detect builds it (DetectRecord.to_json): verdict, both tracks with their
    detections and mean scores, the timeline, and the raw record without its frame scores."""
    observations = [Observation(frame=i, t=i / 25, track=track, box=np.array([10.0, 10, 60, 60]) + 70 * track,
                                logit=logit, detected=i % 2 == 0)
                    for i in range(8) for track, logit in ((0, -2.0), (1, 1.5))]
    record = DetectRecord.build(
        str(tmp_path / "clip.mp4"), Findings(kind="video", frames_analyzed=8, observations=observations),
        ModelInfo(**_model()), 0.5, probability=lambda x: 1 / (1 + np.exp(-np.asarray(x, np.float64))),
        aggregate=lambda x: float(np.mean(x)), elapsed_s=0.5)
    html = write_report(record.to_json(), [], tmp_path / "report").read_text(encoding="utf-8")
    _assert_self_contained(html)
    assert 'class="word">FAKE<' in html and f"{record.score:.3f}" in html
    assert "Detected on" in html and "Mean frame score" in html and '<td class="num">4</td>' in html
    assert "Score over time" in html and len(_images(html)) == 1
    raw = html_text.unescape(html.split("<pre>", 1)[1].split("</pre>", 1)[0])   # the record shown as JSON
    assert '"frame_scores"' not in raw and '"mean_score"' in raw


@pytest.mark.parametrize("score,threshold,expected", [
    (0.848, 0.889, "0.848, below this model's threshold 0.889, so REAL"),
    (0.912, 0.5, "0.912, at or above this model's threshold 0.500, so FAKE"),
    (0.49996, 0.5, "0.49996, below this model's threshold 0.50000, so REAL"),
])
def test_the_verdict_says_how_the_score_and_the_threshold_give_it(tmp_path, score, threshold, expected):
    record = _other_record(str(tmp_path / "photo.jpg"), "image", "ok", score=score, threshold=threshold,
                           label="fake" if score >= threshold else "real")
    html = write_report(record, [], tmp_path / "report").read_text(encoding="utf-8")
    assert expected in html_text.unescape(html)
