#!/usr/bin/env python3
"""The one way a rule enters a step: ``run_step.py STEP JOB [--threads N] [--gpus N] [--log FILE]``.

STEP is a module under ``scripts/steps`` (``scenes``, ``identity.persons``, ``report.video``; a package's entry is its
``pipeline`` module), with ``:function`` where the module runs more than one job (``report.video:run_persons``;
``run`` by default). The function gets the job (:mod:`vidflow.job`); the rest is :func:`vidflow.job.run_job`: the
log, interrupts and the one-line error. As Snakemake does for a rule's shell, the BLAS and OpenMP libraries get the
job's threads before the step imports them, so a job run by hand (tests, benchmarks) computes what its rule does.
"""

import importlib
import os
import sys
from pathlib import Path

from vidflow.job import run_job

THREAD_VARIABLES = ("OMP_NUM_THREADS", "GOTO_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


STEPS = Path(__file__).resolve().parent / "steps"


def entry(step):
    """``(module, function)`` that run one job of ``step`` (``module[:function]`` under ``steps``), found without
    importing anything (tests check each rule's entry module against its env)."""
    name, _, function = step.partition(":")
    package = (STEPS / Path(*name.split("."))).is_dir()  # a package: its entry module
    return f"steps.{name}.pipeline" if package else f"steps.{name}", function or "run"


def step_function(step):
    """The function that runs one job of ``step``."""
    module, function = entry(step)
    return getattr(importlib.import_module(module), function)


def run_step(step, argv=None):
    def run(job):
        for variable in THREAD_VARIABLES:
            os.environ[variable] = str(max(1, job.threads))
        step_function(step)(job)

    run_job(run, argv)


if __name__ == "__main__":
    run_step(sys.argv[1], sys.argv[2:])
