"""One self-contained HTML page per analysed input, plus an index page linking them.

A page answers, in order, what an analyst asks: what is the verdict, how sure, by which model, on which
file; then the evidence: the score of each face over time, each face track, and the most suspicious face
crops exactly as the model saw them. All text from the record is escaped (file names are untrusted).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import sys
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Sequence
from urllib.parse import quote

import numpy as np

from forensics.figures import score_timeline_figure
from forensics.io import atomic_write_text
from forensics.provenance import SYNTHETIC_ONLY
from forensics.report.template import (
    MISSING,
    fmt_score,
    fmt_seconds,
    image_png,
    png_data_uri,
    render,
    text,
    verdict_of,
)

INDEX_NAME = "index.html"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_NAME_CHARS = 60
_HASH_CHARS = 10
_RAW_LEAVE_OUT = ("frame_scores",)   # can be thousands of rows; they are in the JSONL and in the plot


# -- names ---------------------------------------------------------------------------------------------
def report_name(path: str | os.PathLike) -> str:
    """File name of an input's report: its readable name plus a hash of its absolute path.

    The hash keeps `a/clip.mp4` and `b/clip.mp4` apart; the readable part is reduced to safe characters
    so an input name can never escape the report folder or break a link.
    """
    full = os.path.abspath(os.fspath(path))
    digest = hashlib.sha256(full.encode("utf-8", "surrogateescape")).hexdigest()[:_HASH_CHARS]
    readable = _UNSAFE.sub("_", os.path.basename(full)).lstrip(".")[:_NAME_CHARS] or "input"
    return f"{readable}-{digest}.html"


# -- public writers ------------------------------------------------------------------------------------
def write_report(record: dict, thumbnails: Sequence[dict], out_dir: str | os.PathLike) -> Path:
    """Write the report page of one detect record (atomically) and return its path."""
    out_dir = Path(out_dir)
    target = out_dir / report_name(record["path"])
    return atomic_write_text(target, render_report(record, thumbnails))


def write_index(records: Iterable[dict], out_dir: str | os.PathLike) -> Path:
    """(Re)write index.html: one row per record, linking its report. No images, so cheap after every input."""
    out_dir = Path(out_dir)
    return atomic_write_text(out_dir / INDEX_NAME, render_index(list(records), out_dir))


# -- report page ---------------------------------------------------------------------------------------
def render_report(record: dict, thumbnails: Sequence[dict]) -> str:
    path = str(record.get("path"))
    headline, css = verdict_of(record)
    video = record.get("kind") == "video"
    model = record.get("model") or {}
    shown = {k: v for k, v in record.items() if k not in _RAW_LEAVE_OUT}
    return render(
        "report.html.j2", generated=_now(), path=path, name=os.path.basename(path), video=video,
        verdict={"word": headline, "css": css}, decision=decision_text(record), status=record.get("status"),
        error=record.get("error"),
        score=record.get("score"), threshold=record.get("threshold"), warning=record.get("warning"),
        synthetic_only=model.get("trained_on") == SYNTHETIC_ONLY, facts=_facts(record),
        timeline=_timeline(record) if video and record.get("frame_scores") else None,
        tracks=_tracks(record, video) if record.get("faces") else None,
        thumbnails=[{"caption": thumbnail_caption(t, video), "uri": png_data_uri(image_png(t["image"]))}
                    for t in thumbnails],
        left_out=len(record.get("frame_scores") or []), raw=json.dumps(shown, indent=2, default=str))


def decision_text(record: dict) -> str:
    """How the score and the threshold give the verdict, in words: "0.848, below this model's threshold 0.889,
    so REAL" cannot be read as a contradiction the way "REAL, score 0.848" can."""
    score, threshold = record.get("score"), record.get("threshold")
    if score is None or threshold is None:
        return ""
    side = "at or above" if score >= threshold else "below"
    digits = 3
    while digits < 6 and score != threshold and fmt_score(score, digits) == fmt_score(threshold, digits):
        digits += 1          # 0.4996 against 0.5 reads "0.4996, below ... 0.5000", never "0.500, below 0.500"
    return (f"{fmt_score(score, digits)}, {side} this model's threshold {fmt_score(threshold, digits)}, so "
            f"{verdict_of(record)[0]}")


def _facts(record: dict) -> list[dict]:
    """The summary table: (name, value, shown in monospace, hover title)."""
    model = record.get("model") or {}
    sha = model.get("sha256")
    digest = record.get("sha256")

    def fact(name, value, mono=False, title=None):
        return {"name": name, "value": text(value), "mono": mono, "title": title}

    return [
        fact("File", record.get("path"), mono=True),
        fact("File sha256", digest, mono=True) if digest else fact("File sha256", "not read"),
        fact("Kind", record.get("kind")),
        fact("Status", record.get("status")),
        fact("Score", fmt_score(record.get("score"), 4)),
        fact("Threshold", fmt_score(record.get("threshold"), 4)),
        fact("Model", model.get("name")),
        fact("Trained on", model.get("trained_on") or "not recorded in the model"),
        fact("Model card", model.get("card") or "not recorded (forensics models show)"),
        *(fact(f"{str(m.get('role', '')).capitalize()} detector",
               f"{text(m.get('name'))}: score {fmt_score(m.get('score'))}") for m in record.get("detectors") or []),
        fact("Model sha256", sha[:16] if sha else None, mono=True, title=sha),
        fact("Runtime", {"onnx": "onnxruntime (the model's checked ONNX export)", "torch": "torch"}.get(
            model.get("runtime"), model.get("runtime") or "not recorded")),
        fact("Frames analysed", record.get("frames_analyzed")),
        fact("Face tracks", len(record.get("faces") or [])),
        fact("Elapsed", fmt_seconds(record.get("elapsed_s"))),
    ]


def _timeline(record: dict) -> dict:
    tracks = track_series(record["frame_scores"])
    temporal = track_series(record["frame_scores"], key="temporal")
    title = ("Frame detector (solid) and clip detector (dashed) per face track" if temporal
             else "Fake probability per face track")
    png = figure_png(score_timeline_figure(tracks, float(record.get("threshold") or 0.5), title,
                                           temporal=temporal or None))
    return {"uri": png_data_uri(png), "temporal": bool(temporal)}


def _tracks(record: dict, video: bool) -> dict:
    """The face-track table: its header, rows of cells (a cell's `strong` is the css class of a score shown in
    bold) and the legend under it."""
    threshold = record.get("threshold")
    faces = record["faces"]
    spans = _track_spans(record.get("frame_scores") or [])
    has_detections = any("detections" in face for face in faces)
    has_mean = any("mean_score" in face for face in faces)
    roles = sorted({role for face in faces for role in (face.get("detectors") or {})})
    head = ["Face" if not video else "Track", "Frames"] + (["Detected on"] if has_detections else [])
    head += ["Score"] + [f"{role.capitalize()} detector" for role in roles] + (["Mean frame score"] if has_mean else [])
    head += ["Seen (s)", "Peak frame score"] if video else []

    def cell(value, strong=None):
        return {"text": text(value), "strong": strong}

    rows = []
    for face in faces:
        score = face.get("score")
        css = "" if score is None or threshold is None else ("fake" if score >= threshold else "real")
        cells = [cell(face.get("id")), cell(face.get("frames"))]
        cells += [cell(face.get("detections"))] if has_detections else []
        cells += [cell(fmt_score(score), strong=css)]
        cells += [cell(fmt_score((face.get("detectors") or {}).get(role))) for role in roles]
        cells += [cell(fmt_score(face.get("mean_score")))] if has_mean else []
        if video:
            first, last, peak = spans.get(face.get("id"), (None, None, None))
            cells += [cell(MISSING if first is None else f"{first:.2f}\u2013{last:.2f}"), cell(fmt_score(peak))]
        rows.append(cells)
    return {"head": head, "rows": rows, "legend": _tracks_legend(video, has_detections, has_mean, roles)}


def _tracks_legend(video: bool, has_detections: bool, has_mean: bool, roles: list[str]) -> list[tuple[str, str]]:
    """What each column of the tracks table means, under it."""
    items = [("Frames", "frames of the sample in which this face was present (found or carried between detections)")]
    items += [("Detected on", "frames on which the face detector found it (the rest carried its position)")] \
        if has_detections else []
    items += [("Score", "the track's calibrated probability that the face is manipulated: an aggregate of its frame "
                        "scores that a few outlier frames (blur, a turn of the head) cannot decide; the highest "
                        "track score that counts is the media score, compared with the threshold")]
    items += [(f"{role.capitalize()} detector", f"the same, from the {role} detector of the bundle alone")
              for role in roles]
    items += [("Mean frame score", "the plain mean of the track's frame scores, for comparison")] if has_mean else []
    items += [("Seen (s)", "first and last second at which the track appears"),
              ("Peak frame score", "its highest single-frame score")] if video else []
    return items


def thumbnail_caption(thumb: dict, video: bool) -> str:
    parts = []
    if video:
        parts.append(f"frame {thumb.get('frame', MISSING)}")
        if thumb.get("t") is not None:
            parts.append(f"{float(thumb['t']):.2f} s")
        parts.append(f"track {thumb.get('track', MISSING)}")
    else:
        parts.append(f"face {thumb.get('track', MISSING)}")
    parts.append(f"score {fmt_score(thumb.get('score'))}")
    return " \u00b7 ".join(parts)


# -- timeline --------------------------------------------------------------------------------------------
def track_series(frame_scores: Sequence[dict], key: str = "score") -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """{track: (times, values of `key`)} in time order, the input of a score-timeline figure; rows without
    a value for `key` (a frame in no clip) are left out."""
    by_track: dict[int, list[tuple[float, float]]] = {}
    for row in frame_scores:
        t = row.get("t")
        if row.get(key) is None:
            continue
        by_track.setdefault(row.get("track"), []).append(
            (float(row["frame"] if t is None else t), float(row[key])))
    series = {}
    for track, points in sorted(by_track.items(), key=lambda item: _track_order(item[0])):
        points.sort()
        series[track] = (np.array([p[0] for p in points]), np.array([p[1] for p in points]))
    return series


def _track_order(track) -> tuple:
    return (0, track, "") if isinstance(track, (int, float)) else (1, 0, str(track))


def _track_spans(frame_scores: Sequence[dict]) -> dict:
    """{track: (first t, last t, peak frame score)}."""
    return {track: (float(times[0]), float(times[-1]), float(scores.max()))
            for track, (times, scores) in track_series(frame_scores).items() if len(times)}


def figure_png(fig, dpi: int = 110) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:  # a pyplot-made figure stays registered (and in memory) until closed
        pyplot.close(fig)
    return buffer.getvalue()


# -- index ---------------------------------------------------------------------------------------------
def render_index(records: list[dict], out_dir: Path) -> str:
    counts = Counter(verdict_of(r)[0] for r in records)
    summary = ", ".join(f"{n} {word}" for word, n in sorted(counts.items()))
    return render("index.html.j2", generated=_now(), summary=summary,
                  rows=[_index_row(r, out_dir) for r in records])


def _index_row(record: dict, out_dir: Path) -> dict:
    headline, css = verdict_of(record)
    path = str(record.get("path"))
    name = report_name(path)
    return {"verdict": {"word": headline, "css": css}, "score": record.get("score"),
            "threshold": record.get("threshold"), "kind": record.get("kind"),
            "faces": len(record.get("faces") or []), "frames": record.get("frames_analyzed"), "path": path,
            "href": quote(name) if (out_dir / name).exists() else None,
            "note": record.get("error") or record.get("warning") or ""}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
