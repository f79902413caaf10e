"""The workflow passes Snakemake's linter and snakefmt (as the snakemake-workflows catalogue requires)."""

import subprocess
import sys
from pathlib import Path

from conftest import ROOT, SNAKEMAKE, VENV_DIR


def test_snakemake_lint_is_clean():
    proc = subprocess.run([str(SNAKEMAKE), "--lint", "--configfile", "config/config.yaml", "--config",
                           f"venv_dir={VENV_DIR}"], cwd=ROOT, capture_output=True, text=True, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "Lints for" not in output, output


def test_snakefmt_check_passes():
    snakefmt = Path(sys.executable).with_name("snakefmt")
    proc = subprocess.run([str(snakefmt), "--check", "Snakefile", "rules"], cwd=ROOT, capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff_lint_is_clean():
    """pyflakes, pycodestyle, import order, bugbear and pyupgrade checks (ruff.toml) over every Python file."""
    ruff = Path(sys.executable).with_name("ruff")
    proc = subprocess.run([str(ruff), "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
