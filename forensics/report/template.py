"""Page skeleton, style sheet and small formatting helpers shared by the report and the index.

Everything a page needs is inline (style sheet included from templates/report.css, images as data URIs): a
report is evidence that gets mailed, archived and opened years later on machines with no network, so it must not
depend on anything outside its own file. Plain black-on-white type and a print style keep it legible on paper too.

The pages are Jinja2 templates (templates/*.html.j2) with autoescaping on: every value from a record (file
names, error lines, warnings are untrusted) is escaped by the engine, not by hand at each concatenation, and a
value the template names but the page does not pass is an error (StrictUndefined), not an empty cell.
"""
from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from PIL import Image

VERDICTS = {
    # status/label -> (headline, css class)
    "fake": ("FAKE", "fake"),
    "real": ("REAL", "real"),
    "no_face": ("NO FACE", "noface"),
    "error": ("ERROR", "error"),
}
MISSING = "\u2014"  # em dash: "not applicable", distinct from a zero



def text(value: Any) -> str:
    """A value as page text: None is "not applicable" (an em dash), distinct from a zero."""
    return MISSING if value is None else str(value)


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


def _clamp01(value: Any) -> float:
    return min(max(float(value), 0.0), 1.0)


def environment() -> Environment:
    """The report templates, autoescaped, with the formatting filters the pages use."""
    env = Environment(loader=PackageLoader("forensics.report", "templates"),
                      autoescape=select_autoescape(["html", "html.j2"], default=True),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update(score=fmt_score, seconds=fmt_seconds, dash=text, clamp01=_clamp01)
    return env


ENV = environment()


def render(template: str, **context: Any) -> str:
    return ENV.get_template(template).render(**context)
