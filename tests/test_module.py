"""The workflow used the catalog way: a `module` declaration in another folder's Snakefile, with that folder's config
(only what differs from the defaults), and nothing of this repository's working directory."""

import json
import shutil
import subprocess

import pytest

from conftest import ROOT, SNAKEMAKE, VENV_DIR, read_tsv

TRUTH = json.loads((ROOT / "resources" / "demo" / "truth.json").read_text())["clips"]

USER_SNAKEFILE = f"""\
configfile: "config/config.yaml"


module video_analysis:
    snakefile:
        "{ROOT / "Snakefile"}"
    config:
        config


use rule * from video_analysis
"""


@pytest.mark.slow
def test_demo_runs_as_a_module_from_another_folder(tmp_path):
    (tmp_path / "workflow").mkdir()
    (tmp_path / "workflow" / "Snakefile").write_text(USER_SNAKEFILE)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text(f"input_dir: videos\nvenv_dir: {VENV_DIR}\n")
    (tmp_path / "videos").mkdir()
    shutil.copy(ROOT / "resources" / "demo" / "demo_interviews.zip", tmp_path / "videos")
    run = [str(SNAKEMAKE), "--cores", "2", "--profile", str(ROOT / "profiles" / "default")]
    proc = subprocess.run(run, cwd=tmp_path, capture_output=True, text=True, timeout=1800, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]

    rows = read_tsv(tmp_path / "results" / "demo_interviews" / "videos.tsv")
    assert {row["original_name"]: row["status"] for row in rows} == {name: "done" for name in TRUTH}
    for row in rows:
        scenes = json.loads((tmp_path / "results" / "demo_interviews" / row["video"] / "scenes.json").read_text())
        cuts = [scene["start_frame"] for scene in scenes["scenes"][1:]]
        truth = TRUTH[row["original_name"]]["cuts"]
        assert len(cuts) == len(truth) and all(abs(c - t) <= 1 for c, t in zip(cuts, truth)), (row["video"], cuts)
        receipt = json.loads((tmp_path / "results" / "demo_interviews" / row["video"] / "archive.json").read_text())
        archived = tmp_path / receipt["archive"]
        assert {f"{row['video']}_tracking.json", f"{row['video']}_audio.json", "metadata.json"} <= {
            p.name for p in archived.iterdir()}
    assert not (tmp_path / "logs").joinpath("venv").exists()  # the given venvs were used, none built

    again = subprocess.run([*run, "--dry-run"], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr
