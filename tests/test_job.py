"""The shared runner (scripts/vidflow/job.py): a step's job in, one function called, the one-line error contract."""

import json
import subprocess
import sys
from dataclasses import dataclass, field

import pytest

from conftest import ROOT
from vidflow.job import job_command, parse_job, settings_from


@dataclass(frozen=True)
class Settings:
    rate: float
    count: int
    extra: dict = field(default_factory=dict)


def test_settings_come_from_the_section_with_numbers_as_the_schema_means_them():
    settings = settings_from(Settings, {"rate": 1, "count": 3, "threads": 2, "gpu": 0})
    assert settings == Settings(rate=1.0, count=3) and type(settings.rate) is float  # YAML `1` for a number
    assert settings_from(Settings, {"rate": 0.5, "count": 1, "extra": {"a": 1}}).extra == {"a": 1}
    with pytest.raises(KeyError):  # a key without a default must be in the section (the schema fills it)
        settings_from(Settings, {"rate": 0.5})


def test_a_job_round_trips_from_the_command_to_the_step(tmp_path):
    command = job_command("python", "scenes", {"video": tmp_path / "a b.mp4", "frames": [1, 2]},
                          {"json": tmp_path / "out.json"}, {"rate": 0.5}, {"video": "a_b"}, threads=3, gpus=1,
                          log=tmp_path / "step.log")
    assert command[1:3] == [str(ROOT / "scripts" / "run_step.py"), "scenes"]
    job = parse_job(command[3:])
    assert job.input == {"video": str(tmp_path / "a b.mp4"), "frames": ["1", "2"]}
    assert job.output == {"json": str(tmp_path / "out.json")} and job.settings == {"rate": 0.5}
    assert (job.wildcards, job.threads, job.gpus, job.log) == ({"video": "a_b"}, 3, 1, str(tmp_path / "step.log"))
    assert job.spare_threads == 0 and "--spare-threads" not in command
    spare = job_command("python", "tracking", {}, {}, {}, threads=1, spare_threads=1)
    assert (parse_job(spare[3:]).threads, parse_job(spare[3:]).spare_threads) == (1, 1)
    assert parse_job(["{}", "--threads", "4", "--spare-threads", "-2"]).spare_threads == 0  # more cores than asked


def test_the_runner_finds_a_step_by_its_name():
    from run_step import step_function

    from steps.download import run_table
    from steps.scenes import pipeline

    assert step_function("scenes") is pipeline.run  # a package: its pipeline module
    assert step_function("download:run_table") is run_table
    with pytest.raises(ModuleNotFoundError):
        step_function("no_such_step")


def test_a_failing_step_ends_with_one_line_naming_the_file(tmp_path):
    bad = tmp_path / "tracking.json"
    bad.write_text("{not json")
    (tmp_path / "d.json").write_text('{"duration": 1.0, "segments": []}')
    outputs = {"tracking": tmp_path / "t.json", "audio": tmp_path / "a.json"}
    command = job_command(sys.executable, "reduce", {"tracking": bad, "diarization": tmp_path / "d.json"}, outputs,
                          {}, log=tmp_path / "step.log")
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and str(bad) in proc.stderr
    assert str(bad) in (tmp_path / "step.log").read_text() and not (tmp_path / "t.json").exists()


def test_a_job_run_by_hand_gets_the_blas_threads_its_rule_gets(tmp_path):
    """Snakemake sets OMP_NUM_THREADS & co. to a rule's threads; the runner does too, so tests compute the same."""
    command = job_command(sys.executable, "video_source", {}, {"record": tmp_path / "r.json"}, {"record": {}},
                          threads=3)
    code = ("import os, runpy, sys; import steps.video_source as s; "
            "s.write_json = lambda *a: print(os.environ['OMP_NUM_THREADS'], os.environ['OPENBLAS_NUM_THREADS']); "
            "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')")
    proc = subprocess.run([sys.executable, "-c", code, *command[1:]], capture_output=True, text=True, check=True,
                          env={"PYTHONPATH": str(ROOT / "scripts"), "OMP_NUM_THREADS": "8"})
    assert proc.stdout.split() == ["3", "3"]


def test_unknown_job_keys_are_refused():
    with pytest.raises(SystemExit):
        parse_job([json.dumps({"input": {}, "outputs": {}})])
