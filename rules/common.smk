# Helpers shared by the rules: paths, env selection, input functions.
import shlex
import sys
from pathlib import Path

from snakemake_interface_executor_plugins.settings import DeploymentMethod

SCRIPTS = Path(workflow.basedir) / "scripts"
TOOLS = Path(workflow.basedir) / "tools"
sys.path.insert(0, str(SCRIPTS))

from vidflow.errors import UserError  # noqa: E402
from vidflow.inputs import discover_projects  # noqa: E402
from vidflow.io import read_json  # noqa: E402


wildcard_constraints:
    project=r"[A-Za-z0-9._-]+",
    video=r"[A-Za-z0-9._-]+",
    env=r"[a-z0-9_]+",


# --- environments: conda (--sdm conda) or the per-rule virtualenvs built from the same files ---
USE_CONDA = DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method
VENV_DIR = Path(config["venv_dir"]).resolve()


class EnvPython(dict):
    """``PY[name]``: the interpreter a rule of env ``name`` runs its script with."""

    def __missing__(self, env):
        return "python" if USE_CONDA else str(VENV_DIR / env / "bin" / "python")


PY = EnvPython()


def env_ready(env):
    """Input that makes Snakemake build the virtualenv first (nothing under conda)."""
    return [] if USE_CONDA else ancient(str(VENV_DIR / env / "ready"))


# --- inputs ---
try:
    PROJECTS = discover_projects(config["input_dir"], config["extract"]["video_extensions"])
except UserError as err:
    raise WorkflowError(str(err)) from None


def extract_source(wildcards):
    source = PROJECTS[wildcards.project]
    return source.get("archive") or source["loose"]


def extract_source_args(wildcards):
    source = PROJECTS[wildcards.project]
    if "archive" in source:
        return "--archive " + shlex.quote(source["archive"])
    return "--loose " + " ".join(shlex.quote(p) for p in source["loose"])


def manifest(project):
    """The extraction manifest of ``project`` (waits for the checkpoint)."""
    folder = checkpoints.extract.get(project=project).output[0]
    return read_json(Path(folder) / "manifest.json")


def source_video(wildcards):
    for entry in manifest(wildcards.project)["videos"]:
        if entry["video"] == wildcards.video:
            return entry["path"]
    raise WorkflowError(f"video {wildcards.video!r} is not in project {wildcards.project!r}")


# Per-video outputs the workflow delivers; each step's rule file appends its own.
VIDEO_OUTPUTS = ["results/{project}/{video}/video.mp4"]


def project_outputs(wildcards):
    """Everything the implemented steps produce for every video of one project."""
    videos = [entry["video"] for entry in manifest(wildcards.project)["videos"]]
    return expand(VIDEO_OUTPUTS, project=wildcards.project, video=videos)


def all_outputs(wildcards):
    """One summary per project; each waits only for its own checkpoint, so a bad archive stops nothing else."""
    return expand("results/{project}/videos.tsv", project=sorted(PROJECTS))
