"""The one way a rule enters a step: ``scripts/<step>.py JOB [--threads N] [--gpus N] [--log FILE]``.

JOB is JSON written by the rule's ``params.job`` (``step_job`` in ``rules/jobs.smk``): the rule's named inputs and
outputs, its wildcards and the step's config section, whose keys and defaults live only in ``config/schema.yaml``
(Snakemake's ``validate`` fills the defaults in). What the machine gave the job (threads, GPUs) and the log file are
flags: they are not part of the job, so running on other hardware never reruns a step (params are a rerun trigger).
"""

import argparse
import json
from dataclasses import dataclass, field, fields

from .logs import run_main, setup_logging


@dataclass(frozen=True)
class Job:
    input: dict = field(default_factory=dict)  # name -> path (or list of paths)
    output: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)  # the step's config section
    wildcards: dict = field(default_factory=dict)
    threads: int = 1
    gpus: int = 0
    log: str | None = None


def settings_from(cls, section):
    """``cls`` (a frozen dataclass of a step's settings) from its config section; keys it does not know are left."""
    return cls(**{f.name: section[f.name] for f in fields(cls) if f.init})


def parse_job(argv=None):
    parser = argparse.ArgumentParser(description="Run one step's job (see scripts/vidflow/job.py)")
    parser.add_argument("job", type=json.loads, help="the job as JSON: input, output, wildcards, settings")
    parser.add_argument("--threads", type=int, default=1, help="cores the rule was given")
    parser.add_argument("--gpus", type=int, default=0, help="GPUs the rule was given")
    parser.add_argument("--log", help="the rule's log file (stderr when absent)")
    args = parser.parse_args(argv)
    known = {"input", "output", "settings", "wildcards"}
    unknown = set(args.job) - known
    if unknown:
        parser.error(f"unknown job keys: {', '.join(sorted(unknown))}")
    return Job(**args.job, threads=args.threads, gpus=args.gpus, log=args.log)


def run_job(step, argv=None):
    """Parse the job, log to the rule's log and run ``step(job)`` under the one-line error contract (run_main)."""

    def main(argv):
        job = parse_job(argv)
        setup_logging(job.log)
        step(job)

    run_main(main, argv)
