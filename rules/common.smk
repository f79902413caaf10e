# Helpers shared by the rules: paths, wildcard constraints, the job a rule hands its step, the run's outputs.
# Environments: rules/envs.smk; inputs and checkpoints: rules/inputs.smk; the end of a run (its tables and
# notifications): rules/run_end.smk; provenance: rules/finalize.smk; report items: rules/report.smk.
import json
import os
import shlex
import sys
from pathlib import Path

ROOT = Path(
    workflow.current_basedir
).parent  # the repository (also when used as a module elsewhere)
SCRIPTS = ROOT / "scripts"
TOOLS = ROOT / "tools"
ENVS_DIR = ROOT / "envs"
SCHEMAS_DIR = ROOT / "schemas"
sys.path.insert(0, str(SCRIPTS))

from vidflow.job import job_json


wildcard_constraints:
    project=r"[A-Za-z0-9._-]+",
    video=r"[A-Za-z0-9._-]+",
    env=r"[a-z0-9_]+",
    link=r"[0-9a-f]{12}",
    digest=r"[0-9a-f]{12}",


def _from_workdir(path):
    """``path`` relative to the working directory when inside it (stable params), else absolute.

    Symlinks are kept: a venv's ``bin/python`` is a link to the base interpreter.
    """
    path = Path(os.path.abspath(path))
    return (
        str(path.relative_to(Path.cwd()))
        if path.is_relative_to(Path.cwd())
        else str(path)
    )


def step_command(step):
    """The one runner (scripts/run_step.py) and the step it starts: ``scenes``, ``identity.persons``,
    ``report.video:run_persons`` (a module under scripts/steps, and the function when not ``run``).
    """
    return f"{_from_workdir(SCRIPTS / 'run_step.py')} {step}"


def branch_threads(wanted):
    """The ``threads`` of a job that can run beside another job of its video: what its config section asks for, but
    at most half the cores of a local run (at least one). After convert, a video's audio jobs (diarization, then the
    recogniser, which has one thread by default) need no frames and run beside its video jobs (scenes, then
    tracking, which adds the rest of its threads as spare ones: vidflow.job), and identity beside export; on 2
    cores two one-thread jobs side by side use the machine better than one two-thread job after another
    (benchmarks/README.md: the 60 s clip 56.9 -> 42-45 s, the 600 s clip 326 -> 289 s). Only for steps whose
    output is the same for any thread count. Cluster jobs (a non-local executor, and the job's own run on its node)
    get what they ask for: a callable, evaluated when the job is made, once the executor is known. Convert, which
    all of them wait for, keeps its threads."""

    def threads(wildcards):
        if not (workflow.is_main_process and workflow.local_exec):
            return wanted
        try:
            cores = workflow.cores
        except WorkflowError:  # no --cores given: nothing to share
            return wanted
        return max(1, min(int(wanted), int(cores) // 2))

    return threads


# Keys of a config section that say what the machine gives a job (its rule's threads and gpu resource), not what the
# step computes: they are left out of the job, so a run with more cores or a GPU never reruns a step.
MACHINE_KEYS = ("threads", "gpu")


def step_job(settings):
    """The params that hand a step its one job, as ``**step_job(section)``. ``job`` is what the step
    (scripts/vidflow/job.py) receives, and ``settings`` is there for Snakemake's params rerun trigger.

    ``job`` holds the named inputs (but the venv marker ``env``) and outputs, its wildcards and ``settings`` (the
    step's config section, or a function of the wildcards that returns it). A params function of inputs or outputs
    is not tracked by the params trigger, so ``settings`` (a function of the wildcards only) is, and a changed setting
    reruns the step. Threads, GPUs and the log are not in the job (they go as flags), so other hardware never reruns
    a step.
    """

    def section(wildcards):
        value = settings(wildcards) if callable(settings) else settings
        return {k: v for k, v in value.items() if k not in MACHINE_KEYS}

    def job(wildcards, input, output):
        inputs = {k: v for k, v in input.items() if k != "env"}
        return shlex.quote(
            job_json(inputs, output.items(), section(wildcards), wildcards.items())
        )

    def tracked(wildcards):
        return json.dumps(section(wildcards), sort_keys=True)

    return {"job": job, "settings": tracked}


# Per-video outputs the workflow delivers; each step's rule file appends its own.
VIDEO_OUTPUTS = ["results/{project}/{video}/video.mp4"]


def project_outputs(wildcards):
    """Everything the implemented steps produce for every video of one project."""
    videos = [entry["video"] for entry in manifest(wildcards.project)["videos"]]
    return expand(VIDEO_OUTPUTS, project=wildcards.project, video=videos)


def project_identity(wildcards):
    """Every video's identity.json of one project, in the manifest's order (the persons step reads them all)."""
    videos = [entry["video"] for entry in manifest(wildcards.project)["videos"]]
    return expand(
        "results/{project}/{video}/identity.json",
        project=wildcards.project,
        video=videos,
    )


def project_transcripts(wildcards):
    """Every video's transcript.json of one project (manifest order) when transcribe runs: words per person."""
    if not config["transcribe"]["enabled"]:
        return []
    return [
        path.replace("identity.json", "transcript.json")
        for path in project_identity(wildcards)
    ]


def all_outputs(wildcards):
    """One summary per project; each waits only for its own checkpoint, so a bad archive stops nothing else."""
    downloads = ["results/downloads.tsv"] if config["sources"] else []
    return [
        *expand("results/{project}/videos.tsv", project=sorted(PROJECTS)),
        *downloads,
    ]


def as_list(paths):
    return [paths] if isinstance(paths, str) else list(paths)
