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
    command = job_command("python", "step.py", {"video": tmp_path / "a b.mp4", "frames": [1, 2]},
                          {"json": tmp_path / "out.json"}, {"rate": 0.5}, {"video": "a_b"}, threads=3, gpus=1,
                          log=tmp_path / "step.log")
    job = parse_job(command[2:])
    assert job.input == {"video": str(tmp_path / "a b.mp4"), "frames": ["1", "2"]}
    assert job.output == {"json": str(tmp_path / "out.json")} and job.settings == {"rate": 0.5}
    assert (job.wildcards, job.threads, job.gpus, job.log) == ({"video": "a_b"}, 3, 1, str(tmp_path / "step.log"))


def test_a_failing_step_ends_with_one_line_naming_the_file(tmp_path):
    script = tmp_path / "step.py"
    script.write_text("from vidflow.errors import UserError\nfrom vidflow.job import run_job\n\n"
                      "def step(job):\n    raise UserError(job.input['video'], 'no video stream')\n\n"
                      "run_job(step)\n")
    command = job_command(sys.executable, script, {"video": "clip.mp4"}, {}, {}, log=tmp_path / "step.log")
    proc = subprocess.run(command, capture_output=True, text=True, check=False,
                          env={"PYTHONPATH": str(ROOT / "scripts")})
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and "clip.mp4: no video stream" in proc.stderr
    assert "clip.mp4: no video stream" in (tmp_path / "step.log").read_text()


def test_unknown_job_keys_are_refused():
    with pytest.raises(SystemExit):
        parse_job([json.dumps({"input": {}, "outputs": {}})])
