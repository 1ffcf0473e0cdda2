"""Page skeleton, style sheet and small formatting helpers shared by the report and the index.

Everything a page needs is inline (style sheet here, images as data URIs): a report is evidence that gets
mailed, archived and opened years later on machines with no network, so it must not depend on anything
outside its own file. Plain black-on-white type and a print style keep it legible on paper too.
"""
from __future__ import annotations

import base64
import html
import io
from typing import Any

import numpy as np
from PIL import Image

VERDICTS = {
    # status/label -> (headline, css class)
    "fake": ("FAKE", "fake"),
    "real": ("REAL", "real"),
    "no_face": ("NO FACE", "noface"),
    "error": ("ERROR", "error"),
}
MISSING = "\u2014"  # em dash: "not applicable", distinct from a zero

CSS = """
:root { --fake: #b00020; --real: #1b6e20; --noface: #6b6b6b; --error: #8a5a00; --rule: #c8c8c8; }
* { box-sizing: border-box; }
body { font: 15px/1.45 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: #111; background: #fff; margin: 0 auto; max-width: 980px; padding: 24px; }
h1 { font-size: 20px; margin: 0 0 4px; word-break: break-all; }
h2 { font-size: 16px; margin: 28px 0 8px; border-bottom: 1px solid var(--rule); padding-bottom: 4px; }
.sub { color: #555; font-size: 13px; margin: 0 0 16px; }
.mono, code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 13px; }
.verdict { border: 3px solid currentColor; border-radius: 6px; padding: 12px 18px; margin: 12px 0 8px;
           display: flex; align-items: baseline; gap: 24px; flex-wrap: wrap; }
.verdict .word { font-size: 44px; font-weight: 800; letter-spacing: 2px; }
.verdict .score { font-size: 18px; color: #111; }
.verdict .reason { font-size: 15px; color: #111; flex-basis: 100%; word-break: break-word; }
.fake { color: var(--fake); } .real { color: var(--real); }
.noface { color: var(--noface); } .error { color: var(--error); }
.bar { position: relative; height: 14px; border: 1px solid #888; background: #f2f2f2; width: 320px;
       display: inline-block; vertical-align: middle; }
.bar .fill { position: absolute; left: 0; top: 0; bottom: 0; background: currentColor; opacity: .55; }
.bar .thr { position: absolute; top: -4px; bottom: -4px; width: 2px; background: #000; }
.warning { border-left: 4px solid var(--error); background: #fff6e0; padding: 8px 12px; margin: 12px 0; }
table { border-collapse: collapse; margin: 4px 0; }
th, td { text-align: left; padding: 4px 12px 4px 0; border-bottom: 1px solid #e4e4e4; vertical-align: top; }
th { font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
table.facts th { width: 170px; color: #444; font-weight: normal; }
table.facts td { word-break: break-all; }
.timeline { max-width: 100%; height: auto; border: 1px solid #e4e4e4; }
.thumbs { display: flex; flex-wrap: wrap; gap: 12px; }
figure.thumb { margin: 0; width: 168px; }
figure.thumb img { width: 168px; height: 168px; object-fit: contain; border: 1px solid #999;
                   image-rendering: auto; background: #000; }
figure.thumb figcaption { font-size: 12px; line-height: 1.3; margin-top: 2px; }
details pre { white-space: pre-wrap; word-break: break-all; font-size: 12px; background: #f7f7f7;
              padding: 8px; border: 1px solid #e4e4e4; }
.foot { color: #666; font-size: 12px; margin-top: 32px; border-top: 1px solid var(--rule); padding-top: 6px; }
a { color: #0645ad; }
@media print {
  body { max-width: none; padding: 0; font-size: 11pt; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  h2, figure.thumb, table, .verdict, img { break-inside: avoid; }
  details > summary { display: none; }
  a { color: #111; text-decoration: none; }
}
"""


def esc(value: Any) -> str:
    """Escape anything for HTML text or a quoted attribute; file names and error lines are untrusted."""
    return html.escape(MISSING if value is None else str(value), quote=True)


def fmt_score(value: Any, digits: int = 3) -> str:
    return MISSING if value is None else f"{float(value):.{digits}f}"


def fmt_seconds(value: Any) -> str:
    return MISSING if value is None else f"{float(value):.2f} s"


def verdict_of(record: dict) -> tuple[str, str]:
    """(headline, css class) of a record: the label when analysed, else the status."""
    status = record.get("status")
    if status == "ok":
        return VERDICTS.get(str(record.get("label")), (str(record.get("label")).upper(), "noface"))
    return VERDICTS.get(str(status), (str(status).upper(), "error"))


def score_bar(score: float | None, threshold: float | None) -> str:
    """A bar filled to the score with a tick at the threshold: where the decision fell, at a glance."""
    if score is None:
        return ""
    fill = min(max(float(score), 0.0), 1.0) * 100
    thr = "" if threshold is None else \
        f'<span class="thr" style="left:{min(max(float(threshold), 0.0), 1.0) * 100:.1f}%"></span>'
    return f'<span class="bar" title="score {fill / 100:.3f}"><span class="fill" style="width:{fill:.1f}%"></span>{thr}</span>'


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def image_png(image: np.ndarray) -> bytes:
    """Encode a uint8 RGB (or grey) array as PNG: lossless, so the analyst sees the crop the model saw."""
    array = np.asarray(image)
    if array.dtype != np.uint8:
        array = np.clip(array, 0, 255).astype(np.uint8)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def page(title: str, body: str, generated: str) -> str:
    """A complete document; `title` is escaped here, `body` must already be safe HTML."""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n{body}\n"
        f"<p class=\"foot\">forensics deepfake detection report \u00b7 generated {esc(generated)}</p>\n"
        "</body>\n</html>\n"
    )
