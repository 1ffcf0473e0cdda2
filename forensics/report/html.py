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
from forensics.report.template import (
    MISSING,
    esc,
    fmt_score,
    fmt_seconds,
    image_png,
    page,
    png_data_uri,
    score_bar,
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
    sections = [
        f"<h1>{esc(os.path.basename(path) or path)}</h1>",
        f'<p class="sub mono">{esc(path)}</p>',
        _verdict_box(record),
    ]
    if record.get("warning"):
        sections.append(f'<div class="warning"><strong>Warning:</strong> {esc(record["warning"])}</div>')
    sections.append(_facts_table(record))
    is_video = record.get("kind") == "video"
    if is_video and record.get("frame_scores"):
        sections.append(_timeline_section(record))
    if record.get("faces"):
        sections.append(_tracks_table(record, video=is_video))
    if thumbnails:
        sections.append(_thumbnails_section(thumbnails, video=is_video))
    sections.append(_raw_record(record))
    headline, _ = verdict_of(record)
    return page(f"{headline} \u2013 {os.path.basename(path)}", "\n".join(sections), _now())


def _verdict_box(record: dict) -> str:
    headline, css = verdict_of(record)
    parts = [f'<span class="word">{esc(headline)}</span>']
    if record.get("status") == "ok":
        parts.append(f'<span class="score">score <strong>{fmt_score(record.get("score"))}</strong> '
                     f'(threshold {fmt_score(record.get("threshold"))}) '
                     f'{score_bar(record.get("score"), record.get("threshold"))}</span>')
        parts.append('<span class="reason">Score = calibrated probability that the media is manipulated; '
                     'FAKE when it reaches the threshold.</span>')
    elif record.get("status") == "error":
        parts.append(f'<span class="reason mono">{esc(record.get("error") or "unknown error")}</span>')
    elif record.get("status") == "no_face":
        parts.append('<span class="reason">No face was found in the analysed frames, so no verdict '
                     'can be given.</span>')
    return f'<div class="verdict {css}">{"".join(parts)}</div>'


def _facts_table(record: dict) -> str:
    model = record.get("model") or {}
    sha = model.get("sha256")
    rows = [
        ("File", f'<span class="mono">{esc(record.get("path"))}</span>'),
        ("Kind", esc(record.get("kind"))),
        ("Status", esc(record.get("status"))),
        ("Score", fmt_score(record.get("score"), 4)),
        ("Threshold", fmt_score(record.get("threshold"), 4)),
        ("Model", esc(model.get("name"))),
        *((f"{esc(m.get('role', '')).capitalize()} detector",
           f"{esc(m.get('name'))}: score {fmt_score(m.get('score'))}") for m in record.get("detectors") or []),
        ("Model sha256", f'<span class="mono" title="{esc(sha)}">{esc(sha[:16] if sha else None)}</span>'),
        ("Frames analysed", esc(record.get("frames_analyzed"))),
        ("Face tracks", str(len(record.get("faces") or []))),
        ("Elapsed", fmt_seconds(record.get("elapsed_s"))),
    ]
    body = "".join(f"<tr><th>{name}</th><td>{value}</td></tr>" for name, value in rows)
    return f'<h2>Summary</h2><table class="facts">{body}</table>'


def _timeline_section(record: dict) -> str:
    tracks = track_series(record["frame_scores"])
    temporal = track_series(record["frame_scores"], key="temporal")
    title = ("Frame detector (solid) and clip detector (dashed) per face track" if temporal
             else "Fake probability per face track")
    png = figure_png(score_timeline_figure(tracks, float(record.get("threshold") or 0.5), title,
                                           temporal=temporal or None))
    note = ('<p class="sub">Dashed: the clip detector\'s score for each frame of the clips it saw (which moments '
            'drove its verdict). The verdict is the bundle\'s fusion of both detectors.</p>' if temporal else "")
    return ('<h2>Score over time</h2>' + note +
            f'<img class="timeline" alt="fake probability over time per face track, threshold '
            f'{fmt_score(record.get("threshold"))}" src="{png_data_uri(png)}">')


def _tracks_table(record: dict, video: bool) -> str:
    threshold = record.get("threshold")
    spans = _track_spans(record.get("frame_scores") or [])
    has_detections = any("detections" in face for face in record["faces"])
    head = ["Face" if not video else "Track", "Frames"]
    head += ["Detected on"] if has_detections else []
    has_mean = any("mean_score" in face for face in record["faces"])
    roles = sorted({role for face in record["faces"] for role in (face.get("detectors") or {})})
    head += ["Score"] + [f"{role.capitalize()} detector" for role in roles] + (["Mean frame score"] if has_mean else [])
    head += ["Seen (s)", "Peak frame score"] if video else []
    rows = []
    for face in record["faces"]:
        score = face.get("score")
        css = "" if score is None or threshold is None else (" fake" if score >= threshold else " real")
        cells = [esc(face.get("id")), esc(face.get("frames"))]
        cells += [esc(face.get("detections"))] if has_detections else []
        cells += [f'<strong class="{css.strip()}">{fmt_score(score)}</strong>']
        cells += [fmt_score((face.get("detectors") or {}).get(role)) for role in roles]
        cells += [fmt_score(face.get("mean_score"))] if has_mean else []
        if video:
            first, last, peak = spans.get(face.get("id"), (None, None, None))
            cells += [MISSING if first is None else f"{first:.2f}\u2013{last:.2f}", fmt_score(peak)]
        rows.append("<tr>" + "".join(f'<td class="num">{c}</td>' for c in cells) + "</tr>")
    header = "".join(f'<th class="num">{h}</th>' for h in head)
    title = "Face tracks" if video else "Faces"
    return f"<h2>{title}</h2><table><thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _thumbnails_section(thumbnails: Sequence[dict], video: bool) -> str:
    cells = []
    for thumb in thumbnails:
        caption = thumbnail_caption(thumb, video)
        uri = png_data_uri(image_png(thumb["image"]))
        cells.append(f'<figure class="thumb"><img alt="{esc(caption)}" src="{uri}">'
                     f"<figcaption>{esc(caption)}</figcaption></figure>")
    title = "Most suspicious face crops" if video else "Face crops"
    note = ('<p class="sub">Aligned face crops as given to the detector, most suspicious first.</p>')
    return f'<h2>{title}</h2>{note}<div class="thumbs">{"".join(cells)}</div>'


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


def _raw_record(record: dict) -> str:
    shown = {k: v for k, v in record.items() if k not in _RAW_LEAVE_OUT}
    n = len(record.get("frame_scores") or [])
    text = json.dumps(shown, indent=2, default=str)
    return (f"<details><summary>Record (JSON; {n} per-frame scores left out, they are in the JSONL)</summary>"
            f"<pre>{esc(text)}</pre></details>")


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
    summary = ", ".join(f"{n} {esc(word)}" for word, n in sorted(counts.items())) or "no inputs yet"
    rows = [_index_row(i, r, out_dir) for i, r in enumerate(records, 1)]
    head = "".join(f"<th{c}>{h}</th>" for h, c in (
        ("#", ' class="num"'), ("Verdict", ""), ("Score", ' class="num"'), ("Threshold", ' class="num"'),
        ("Kind", ""), ("Faces", ' class="num"'), ("Frames", ' class="num"'), ("File", ""), ("Note", "")))
    body = (f"<h1>Detection results</h1><p class=\"sub\">{len(records)} inputs: {summary}</p>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")
    return page("Detection results", body, _now())


def _index_row(number: int, record: dict, out_dir: Path) -> str:
    headline, css = verdict_of(record)
    path = str(record.get("path"))
    name = report_name(path)
    link = (f'<a href="{esc(quote(name))}" class="mono">{esc(path)}</a>' if (out_dir / name).exists()
            else f'<span class="mono">{esc(path)}</span>')
    note = record.get("error") or record.get("warning") or ""
    cells = [
        (str(number), ' class="num"'), (f'<strong class="{css}">{esc(headline)}</strong>', ""),
        (fmt_score(record.get("score")), ' class="num"'), (fmt_score(record.get("threshold")), ' class="num"'),
        (esc(record.get("kind")), ""), (str(len(record.get("faces") or [])), ' class="num"'),
        (esc(record.get("frames_analyzed")), ' class="num"'), (link, ""), (esc(note), ""),
    ]
    return "<tr>" + "".join(f"<td{c}>{v}</td>" for v, c in cells) + "</tr>"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
