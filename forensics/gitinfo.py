"""Which commit produced a result: the one git helper the run tags, the benchmark records and the machine
record share."""
from __future__ import annotations

import os
import subprocess


def git_state(where: str | os.PathLike = ".", exclude: str | os.PathLike | None = None) -> dict:
    """{"commit": full hash, "dirty": uncommitted changes to tracked files outside `exclude`}; both None when
    `where` is not in a git checkout (or git is missing)."""
    def git(*args: str) -> str | None:
        try:
            return subprocess.run(["git", "-C", os.fspath(where), *args], capture_output=True, text=True,
                                  check=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    commit = git("rev-parse", "HEAD") or None
    pathspec = ["--", ".", f":(exclude){os.fspath(exclude)}"] if exclude is not None else []
    status = git("status", "--porcelain", "--untracked-files=no", *pathspec) if commit else None
    return {"commit": commit, "dirty": bool(status) if status is not None else None}
