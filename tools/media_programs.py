"""The programs the media factory runs (ffmpeg, espeak-ng): found on PATH, run with their errors raised."""

from __future__ import annotations

import shutil
import subprocess


def run_program(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run a command, raising with its stderr on failure."""
    proc = subprocess.run(cmd, capture_output=True, **kwargs)
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace") if isinstance(proc.stderr, bytes) else proc.stderr
        raise RuntimeError(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{err}")
    return proc


def require_program(binary: str) -> None:
    if shutil.which(binary) is None:
        raise RuntimeError(f"required program {binary!r} not found on PATH")
