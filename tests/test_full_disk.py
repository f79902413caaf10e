"""A full or read-only disk: a clear one-line error naming the output, and no corrupt or half-written output."""

import contextlib
import json
import re
import resource
import shlex
import shutil
import subprocess
import zipfile

import pytest

from conftest import run_snakemake
from vidflow.errors import UserError
from vidflow.io import write_json

pytest_plugins = ["odd_inputs_run"]


def test_a_write_that_does_not_fit_names_the_output_and_leaves_nothing(tmp_path):
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))  # EFBIG (Python ignores SIGXFSZ)
    try:
        with pytest.raises(UserError) as err:
            write_json(tmp_path / "big.json", {"x": "y" * 10000})
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert str(err.value) == (f"{tmp_path / 'big.json'}: cannot write (File too large); "
                              f"free disk space or fix the output folder")
    assert list(tmp_path.iterdir()) == []


@contextlib.contextmanager
def full_disk(kind, folder):
    """``folder`` on a 32 KiB tmpfs (ENOSPC), read-only (EROFS), or writes capped at 32 KiB per file (RLIMIT_FSIZE:
    EFBIG in Python, SIGXFSZ kills FFmpeg). Mounting needs CAP_SYS_ADMIN (root in a plain container lacks it):
    those cases skip with the reason; the rlimit case works everywhere."""
    folder.mkdir()
    if kind == "tmpfs":
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32k", "tmpfs", str(folder)],
                                 capture_output=True, text=True, check=False)
        if mounted.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}); the rlimit case covers it")
        try:
            yield "No space left on device"
        finally:
            subprocess.run(["umount", str(folder)], check=True)
    elif kind == "readonly":
        where = shlex.quote(str(folder))
        mounted = subprocess.run(f"mount --bind {where} {where} && mount -o remount,ro,bind {where}", shell=True,
                                 capture_output=True, text=True, check=False)
        if mounted.returncode != 0:
            subprocess.run(["umount", str(folder)], capture_output=True, check=False)
            pytest.skip(f"cannot make a read-only bind mount here ({mounted.stderr.strip()})")
        try:
            yield "Read-only file system"
        finally:
            subprocess.run(["umount", str(folder)], check=True)
    else:
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (32 << 10, hard))  # inherited by the workflow's processes
        try:
            yield "File too large"
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


@pytest.mark.parametrize("kind", ["tmpfs", "rlimit", "readonly"])
def test_full_or_read_only_disk_gives_a_clear_error_and_no_corrupt_output(tmp_path, good_clip, kind):
    """An archive (extracted by Python) and a loose video (written by FFmpeg) whose outputs do not fit."""
    inputs = tmp_path / "input"
    inputs.mkdir()
    with zipfile.ZipFile(inputs / "clips.zip", "w") as zf:
        zf.write(good_clip[0], "clip.mp4")
    shutil.copy(good_clip[0], inputs / "loose.mp4")
    with full_disk(kind, tmp_path / "results") as reason:
        proc = run_snakemake(tmp_path, "--keep-going", config={"input_dir": str(inputs)}, check=False)
        files = sorted(str(p.relative_to(tmp_path)) for p in (tmp_path / "results").rglob("*") if p.is_file())
        manifest = tmp_path / "results" / "_loose" / "extracted" / "manifest.json"
        loose_manifest = json.loads(manifest.read_text()) if manifest.exists() else None
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    if kind == "readonly":  # Snakemake itself cannot create the output folders: its own one-line error
        assert re.search(r"Failed to create output directory results/\w+", proc.stderr)
        assert f"[Errno 30] {reason}" in proc.stderr and files == []
        return
    errors = sorted({line.split(" ERROR vidflow: ", 1)[1] for line in proc.stderr.splitlines()
                     if " ERROR vidflow: " in line})
    assert len(errors) == 2, errors
    if kind == "tmpfs":  # FFmpeg 5.1 exits 0 here (the unreadable output gives it away); newer ones fail
        assert re.fullmatch(rf"{re.escape(str(inputs / 'loose.mp4'))}: ffmpeg failed: .*{reason}"
                            r"|results/_loose/loose/video\.mp4: FFmpeg wrote an unreadable file \(.+\); "
                            r"the disk is full \(\d+ bytes free\)", errors[0]), errors[0]
    else:
        assert errors[0] == (f"{inputs / 'loose.mp4'}: ffmpeg failed: killed by SIGXFSZ "
                             f"(file size limit exceeded while writing the output)")
    assert errors[1] == f"results/clips/extracted: cannot write ({reason}); free disk space or fix the output folder"
    # only complete files: the loose manifest and video record (they fit), the tables that list the failure,
    # benchmarks; no video, no extracted folder, no temp files
    assert loose_manifest is not None and [v["video"] for v in loose_manifest["videos"]] == ["loose"]
    assert [f for f in files if not f.startswith("results/benchmarks/")] == [
        "results/_loose/extracted/.snakemake_timestamp", "results/_loose/extracted/manifest.json",
        "results/_loose/loose/source.json", "results/_loose/videos.tsv", "results/report/run.html"]
