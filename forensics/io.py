"""Small file helpers shared by every writer in the project.

Outputs are written to a temporary file beside the target and renamed into place, so a crash or
Ctrl-C never leaves a half-written file where a reader expects a whole one.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np


_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto `target` if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix or target.suffix or ".tmp",
                               dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs get the usual permissions
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_bytes(target: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def atomic_write_text(target: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(target, text.encode("utf-8"))


def atomic_write_json(target: str | os.PathLike, obj: Any, indent: int = 2) -> Path:
    return atomic_write_text(target, json.dumps(obj, indent=indent, sort_keys=False, default=_json_default) + "\n")


def append_jsonl(target: str | os.PathLike, record: dict) -> None:
    """Append one record and flush it to disk, so a crash after this call keeps it.

    A torn last line (a crash mid-write) is closed first, so the new record never glues onto it.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(strict_json(record), default=_json_default, allow_nan=False) + "\n"
    if _ends_torn(target):
        line = "\n" + line
    with open(target, "a", encoding="utf-8") as fh:
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())


def _ends_torn(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            fh.seek(-1, os.SEEK_END)
            return fh.read(1) != b"\n"
    except OSError:  # missing or empty file
        return False


def read_jsonl(path: str | os.PathLike, skipped: list[int] | None = None) -> list[dict]:
    """Read records, skipping lines that are not a JSON record (a torn last line left by a crash mid-write,
    bytes that are not UTF-8, an edit gone wrong); their line numbers go into `skipped` when given."""
    out: list[dict] = []
    path = Path(path)
    if not path.is_file():
        return out
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                out.append(json.loads(raw.decode("utf-8")))
            except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
                if skipped is not None:
                    skipped.append(number)
    return out


def unicode_text(text: str) -> str:
    """`text` as valid Unicode: each byte of a file name that was not UTF-8 (kept by Python as a lone surrogate,
    which strict JSON parsers and UTF-8 writers reject) becomes U+FFFD."""
    if not any(0xD800 <= ord(ch) <= 0xDFFF for ch in text):
        return text
    return "".join("\ufffd" if 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in text)


def strict_json(value: Any) -> Any:
    """`value` with every NaN or infinite float replaced by None (records are strict JSON, which has no NaN)
    and every string valid Unicode (see unicode_text)."""
    if isinstance(value, str):
        return unicode_text(value)
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    if isinstance(value, np.floating):
        return float(value) if np.isfinite(value) else None
    return value


def printable(text: str) -> str:
    """`text` safe to print on a terminal: control and format characters (escape sequences, carriage
    returns, bidi overrides) and lone surrogates (undecodable bytes in file names) written as escapes, so a
    file named "\\x1b[2K\\rreal 0.031 x.avi" cannot redraw the line it is printed on. JSON records keep the
    exact text; this is for lines meant for people."""
    return "".join(map(_escape_unprintable, str(text)))


def _escape_unprintable(ch: str) -> str:
    if ch == " " or ch.isprintable():
        return ch
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _json_default(obj: Any):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


MAX_CONFIG_BYTES = 4 << 20      # a checkpoint's config.json is a few KB; anything this large is not one


def read_json_object(path: Path, error: type[ValueError]) -> dict[str, Any]:
    """A checkpoint's config.json as a dict; invalid, unreadable, oversized or too deeply nested files, and
    non-object ones, fail in one line. (NaN is read, as older saves wrote it into metrics; the loaders check
    the fields they use.)"""
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise error(f"{path}: too large for a config file ({path.stat().st_size} bytes)")
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise error(f"{path}: invalid JSON (line {exc.lineno}: {exc.msg})") from None
    except RecursionError:
        raise error(f"{path}: invalid JSON (nested too deeply)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: unreadable ({one_line(exc)})") from None
    if not isinstance(data, dict):
        raise error(f"{path}: expected a JSON object")
    return data


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (library errors often span several), capped for log lines."""
    return (" ".join(str(exc).split()) or type(exc).__name__)[:300]
