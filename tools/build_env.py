#!/usr/bin/env python3
"""Build a virtualenv from the pip pins of a conda env file (``envs/<name>.yaml``).

Without conda, each rule runs its script with the interpreter of the virtualenv
built here from the *same* file that ``--sdm conda`` uses, so versions have one
source of truth. Standard library only (it runs before any venv exists).

    python3 tools/build_env.py envs/convert.yaml .venvs/convert [--ready .venvs/convert/ready]
"""

import argparse
import fcntl
import filecmp
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from vidflow.envfiles import pins_digest, read_env  # noqa: E402  (tests import them from here too)


def check_python(env):
    """The venv inherits this interpreter: its major.minor must match the env file's python pin."""
    wanted = env["conda"].get("python", "")
    have = f"{sys.version_info.major}.{sys.version_info.minor}"
    if wanted and not (wanted + ".").startswith(have + "."):
        sys.exit(f"ERROR: {env['name']}: needs python {wanted}, but this is python {have} ({sys.executable})")


def pip_install(python, requirements, *options):
    if not requirements:
        return
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as req:
        req.write("\n".join(requirements) + "\n")
    try:
        subprocess.run([str(python), "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "-q",
                        "--no-cache-dir", "--retries", "10", *options, "-r", req.name], check=True)
    finally:
        os.unlink(req.name)


def site_packages(venv_dir):
    return next(Path(venv_dir).glob("lib/python*/site-packages"), None)


def share_identical_files(venv_dir, min_size=1 << 16):
    """Hardlink each file of the venv that a finished sibling venv holds byte for byte at the same place.

    Several envs pin the same torch (0.75 GB on the CPU, 5 GB with its CUDA libraries); one copy on disk
    is enough. Safe because a venv is never edited in place: pip and `venv --clear` only unlink files.
    Returns the bytes saved.
    """
    site, saved = site_packages(venv_dir), 0
    finished = [d for d in sorted(Path(venv_dir).parent.iterdir())
                if d != Path(venv_dir) and (d / "pins.sha256").exists()]
    others = [other for other in map(site_packages, finished) if other]
    if site is None or not others:
        return 0
    for folder, _, names in os.walk(site):
        for name in names:
            path = Path(folder) / name
            size = path.lstat().st_size
            if path.is_symlink() or size < min_size:
                continue
            relative = path.relative_to(site)
            for other in others:
                twin = other / relative
                if (twin.is_file() and not twin.is_symlink() and twin.stat().st_size == size
                        and not twin.samefile(path) and filecmp.cmp(path, twin, shallow=False)):
                    link = path.with_name(f".{name}.shared")
                    try:
                        os.link(twin, link)
                    except OSError:  # a file system without hard links: keep the copies
                        return saved
                    os.replace(link, path)
                    saved += size
                    break
    return saved


def build(env_file, venv_dir):
    """Create or update the venv so that it holds exactly the pinned pip packages."""
    env = read_env(env_file)
    check_python(env)
    venv_dir = Path(venv_dir)
    venv_dir.parent.mkdir(parents=True, exist_ok=True)
    digest, stamp = pins_digest(env), venv_dir / "pins.sha256"
    with open(venv_dir.parent / f".{venv_dir.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent runs wait instead of racing
        python = venv_dir / "bin" / "python"
        if python.exists() and stamp.exists() and stamp.read_text().strip() == digest:
            print(f"{venv_dir}: up to date")
            return python
        print(f"{venv_dir}: building from {env_file}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv_dir)], check=True)
        pip_install(python, env["pip"])
        pip_install(python, env["nodeps"], "--no-deps")
        saved = share_identical_files(venv_dir)
        if saved:
            print(f"{venv_dir}: {saved / 1e9:.1f} GB shared with the other venvs (hardlinks)", flush=True)
        stamp.write_text(digest + "\n")
    return python


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("env_file")
    parser.add_argument("venv_dir")
    parser.add_argument("--ready", help="file to write once the venv is usable (Snakemake's output)")
    args = parser.parse_args()
    python = build(args.env_file, args.venv_dir)
    if args.ready:
        ready = Path(args.ready)
        for stale in ready.parent.glob("ready*"):
            stale.unlink()
        ready.write_text(f"{python}\n")


if __name__ == "__main__":
    main()
