"""What a config change reruns: only the steps that depend on it (dry run against ``odd_run``, the finished run of
tests/odd_inputs_run.py)."""

import json
import re

import pytest
from odd_inputs_run import ODD

from conftest import ROOT, run_snakemake

pytest_plugins = ["odd_inputs_run"]


def job_counts(proc):
    """``{rule: count}`` from the job stats table of a (dry) run."""
    table = (proc.stdout + proc.stderr).split("Job stats:", 1)[-1].split("total", 1)[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, flags=re.M)}


@pytest.mark.slow
def test_changing_the_tracking_engine_reruns_only_tracking_and_what_uses_it(odd_run, tmp_path):
    work, proc, _, _ = odd_run
    assert proc.returncode == 0
    config = {"input_dir": str(work / "input")}
    unchanged = run_snakemake(work, "-n", config=config)
    assert "Nothing to be done" in unchanged.stdout + unchanged.stderr
    task = ROOT.parent / "shared" / "models" / "mediapipe" / "face_landmarker_v2_with_blendshapes.task"
    override = tmp_path / "engine.yaml"  # same env family (mediapipe), so the same rule reruns
    override.write_text(json.dumps({"tracking": {"engine": "mediapipe_tasks",
                                                 "mediapipe_tasks": {"model": str(task), "sha256": ""}}}))
    jobs = job_counts(run_snakemake(work, "-n", config=config, configfiles=[override]))
    videos = len(ODD)
    assert jobs == {"tracking": videos, "link_speakers": videos, "reduce": videos, "export": videos,
                    "report_exports": videos, "finalize": videos, "report_video": videos, "project_summary": 1,
                    "report_run": 1, "diagnostics": 1, "all": 1,
                    # identity reads the faces: their embeddings, the project's persons and its page follow
                    "identity": videos, "identity_persons": 1, "report_persons": 1,
                    # the transcript links words to faces (faces.json): it and its page follow; its recognised words
                    # were an intermediate (deleted once the transcript was made), so Whisper runs again
                    "recognise_speech": videos, "transcribe": videos, "report_transcript": videos}
