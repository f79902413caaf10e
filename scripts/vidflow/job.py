"""The job a rule hands its step: ``run_step.py STEP JOB [--threads N] [--spare-threads N] [--gpus N] [--log FILE]``.

JOB is JSON written by the rule's ``params.job`` (``step_job`` in ``rules/common.smk``): the rule's named inputs and
outputs, its wildcards and the step's config section, whose keys and defaults live only in ``config/schema.yaml``
(Snakemake's ``validate`` fills the defaults in). What the machine gave the job (threads, GPUs) and the log file are
flags: they are not part of the job, so running on other hardware never reruns a step (params are a rerun trigger).
Spare threads are what the step's config asked for beyond the rule's threads on a local run with few cores (the
``spare_threads`` resource of rules/tracking.smk): a step that can use them runs them at the lowest CPU priority (nice
19), so they take only the CPU that Snakemake's other jobs leave idle.
"""

import argparse
import json
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path

from .logs import run_main, setup_logging

RUNNER = Path(__file__).resolve().parents[1] / "run_step.py"  # the one way in: scripts/run_step.py


@dataclass(frozen=True)
class Job:
    input: dict = field(default_factory=dict)  # name -> path (or list of paths)
    output: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)  # the step's config section
    wildcards: dict = field(default_factory=dict)
    threads: int = 1
    spare_threads: int = 0  # beyond ``threads``, at the lowest CPU priority (the module's docstring)
    gpus: int = 0
    log: str | None = None


def settings_from(cls, section):
    """``cls`` (a frozen dataclass of a step's settings) from its config section; keys it does not know are left.

    A field with a default (e.g. another engine's section, which a job does not carry) may be absent. A float field
    given an integer (YAML ``1``) gets ``1.0``, as the schema's ``number`` means.
    """
    values = {}
    for f in fields(cls):
        if not f.init or (f.name not in section and (f.default is not MISSING or f.default_factory is not MISSING)):
            continue
        value = section[f.name]
        values[f.name] = float(value) if f.type in (float, "float") and type(value) is int else value
    return cls(**values)


def job_json(input, output, settings, wildcards=None):
    """The job as the rules write it (``step_job`` in rules/common.smk) and as tests and benchmarks build it."""
    document = {"input": dict(input), "output": dict(output), "settings": settings, "wildcards": dict(wildcards or {})}
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


def job_command(python, step, input, output, settings, wildcards=None, threads=1, gpus=0, log=None, spare_threads=0):
    """argv that runs ``step`` (as rules/*.smk name it, e.g. ``scenes``) on one job, as its rule does."""
    command = [str(python), str(RUNNER), step, job_json({k: _plain(v) for k, v in input.items()},
                                                   {k: _plain(v) for k, v in output.items()}, settings, wildcards)]
    command += ["--threads", str(threads), "--gpus", str(gpus)]
    command += ["--spare-threads", str(spare_threads)] if spare_threads else []
    return command + (["--log", str(log)] if log else [])


def _plain(value):
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else str(value)


def parse_job(argv=None):
    parser = argparse.ArgumentParser(description="Run one step's job (see scripts/vidflow/job.py)")
    parser.add_argument("job", type=json.loads, help="the job as JSON: input, output, wildcards, settings")
    parser.add_argument("--threads", type=int, default=1, help="cores the rule was given")
    parser.add_argument("--spare-threads", type=int, default=0, help="threads beyond --threads, at nice 19")
    parser.add_argument("--gpus", type=int, default=0, help="GPUs the rule was given")
    parser.add_argument("--log", help="the rule's log file (stderr when absent)")
    args = parser.parse_args(argv)
    known = {"input", "output", "settings", "wildcards"}
    unknown = set(args.job) - known
    if unknown:
        parser.error(f"unknown job keys: {', '.join(sorted(unknown))}")
    return Job(**args.job, threads=args.threads, spare_threads=max(0, args.spare_threads), gpus=args.gpus,
               log=args.log)


def run_job(step, argv=None):
    """Parse the job, log to the rule's log and run ``step(job)`` under the one-line error contract (run_main)."""

    def main(argv):
        job = parse_job(argv)
        setup_logging(job.log)
        step(job)

    run_main(main, argv)
