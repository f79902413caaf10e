# Helpers shared by the rules: paths, env selection, input functions.
import json
import os
import shlex
import sys
from pathlib import Path

from snakemake import __version__ as snakemake_version
from snakemake.io import IOFile
from snakemake.logging import logger
from snakemake_interface_executor_plugins.settings import DeploymentMethod

SCRIPTS = Path(workflow.basedir) / "scripts"
TOOLS = Path(workflow.basedir) / "tools"
ENVS_DIR = Path(workflow.basedir) / "envs"
SCHEMAS_DIR = Path(workflow.basedir) / "schemas"
sys.path[:0] = [str(SCRIPTS), str(TOOLS)]

from build_env import pins_digest, read_env  # noqa: E402

from steps.download import (
    link_id,
    manual_reason,
    read_sources,
    url_filename,
)  # noqa: E402
from steps.tracking.engines import ENGINES, engine_family  # noqa: E402
from vidflow.errors import UserError  # noqa: E402
from vidflow.inputs import discover_projects, video_record  # noqa: E402
from vidflow.io import read_json  # noqa: E402
from vidflow.naming import archive_stem, unique_slugs  # noqa: E402
from vidflow.notify import notify, run_payload  # noqa: E402
from vidflow.summary import (
    DOWNLOAD_COLUMNS,
    download_rows,
    project_rows,
    tsv_text,
    write_text,
)  # noqa: E402
from steps.report import run_page  # noqa: E402


wildcard_constraints:
    project=r"[A-Za-z0-9._-]+",
    video=r"[A-Za-z0-9._-]+",
    env=r"[a-z0-9_]+",
    link=r"[0-9a-f]{12}",
    digest=r"[0-9a-f]{12}",


# --- environments: conda (--sdm conda) or the per-rule virtualenvs built from the same files ---
USE_CONDA = DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method
VENV_DIR = Path(config["venv_dir"]).resolve()


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


def env_python(env):
    """The interpreter a rule of env ``env`` runs its script with (conda's ``python`` under --sdm conda)."""
    return "python" if USE_CONDA else _from_workdir(VENV_DIR / env / "bin" / "python")


def script_path(name):
    return _from_workdir(SCRIPTS / name)


def env_ready(env):
    """Input that makes Snakemake build the virtualenv first (nothing under conda).

    The marker is named after a digest of the env file's pins, so only a real change of
    pins rebuilds the venv and reruns that env's jobs (touching the file does nothing).
    """
    if USE_CONDA:
        return []
    return str(
        VENV_DIR / env / f"ready-{pins_digest(read_env(ENVS_DIR / f'{env}.yaml'))[:12]}"
    )


# --- optional steps: extra inputs of finalize ---
def expressions_inputs(wildcards):
    """finalize validates and archives expressions.json when the step is on."""
    if not config["expressions"]["enabled"]:
        return {}
    return {
        "expressions": f"results/{wildcards.project}/{wildcards.video}/expressions.json"
    }


def expressions_finalize_args(wildcards, input):
    if "expressions" not in input.keys():
        return ""
    path = shlex.quote(input.expressions)
    return (
        f" --validate expressions={path}"
        f" --archive-as {wildcards.video}_expressions.json={path}"
    )


# --- provenance: the effective config and the envs of the steps that produce each archived video ---
STEP_CONFIG = {
    step: config[step]
    for step in ("extract", "convert", "scenes", "audio", "tracking", "link")
    + (("expressions",) if config["expressions"]["enabled"] else ())
}
STEP_ENVS = [
    "extract",
    "convert",
    "scenes",
    "pyannote" if config["audio"]["backend"] == "pyannote" else "diarization",
    f"tracking_{engine_family(config['tracking']['engine'])}",
    *(["expressions"] if config["expressions"]["enabled"] else []),
    "finalize",
]


# --- inputs: the input folder, plus links from config `sources` (downloaded by rules/download.smk) ---
DOWNLOAD_DIR = config["download"]["dir"]
LINKS, MANUAL_LINKS = {}, []
try:
    PROJECTS = discover_projects(
        config["input_dir"], config["extract"]["video_extensions"]
    )
    for link in read_sources(config["sources"]) if config["sources"] else []:
        if manual_reason(link["url"]):
            logger.warning(f"{link['url']}: {manual_reason(link['url'])}; skipped")
            MANUAL_LINKS.append(link["url"])
        else:
            LINKS[link_id(link["url"])] = link
except UserError as err:
    raise WorkflowError(str(err)) from None
# Each link is a project named after its file (made unique against the input folder's projects).
_names = [
    archive_stem(url_filename(link["url"])) or url_filename(link["url"])
    for link in LINKS.values()
]
for _slug, _link in zip(unique_slugs([*PROJECTS, *_names])[len(PROJECTS) :], LINKS):
    PROJECTS[_slug] = {"download": _link}


def link_args(link):
    args = ["--url", shlex.quote(link["url"])]
    args += ["--sha256", link["sha256"]] if link.get("sha256") else []
    args += ["--size", str(link["size"])] if link.get("size") is not None else []
    return " ".join(args)


def download_status(link):
    return Path(checkpoints.download.get(link=link).output[0]) / "status.json"


def earlier_links(link):
    """The links listed before ``link`` in ``sources`` (the first of identical contents is processed)."""
    order = list(LINKS)
    return order[: order.index(link)]


def extract_source(wildcards):
    source = PROJECTS[wildcards.project]
    if "download" in source:
        link = source["download"]
        return [download_status(l) for l in [*earlier_links(link), link]]
    return source.get("archive") or source["loose"]


def extract_source_args(wildcards):
    source = PROJECTS[wildcards.project]
    if "archive" in source:
        return f"--archive {shlex.quote(source['archive'])}"
    if "download" in source:
        link = source["download"]
        earlier = " ".join(str(download_status(l)) for l in earlier_links(link))
        return f"--download-status {download_status(link)} --earlier-status {earlier}"
    return " ".join(["--loose", *(shlex.quote(p) for p in source["loose"])])


def manifest(project):
    """The extraction manifest of ``project`` (waits for the checkpoint)."""
    folder = checkpoints.extract.get(project=project).output[0]
    return read_json(Path(folder) / "manifest.json")


def extracted_project(wildcards):
    """No file: waits for the project's extraction only (a job that takes the manifest itself would rerun
    whenever any video of the project is added or removed)."""
    checkpoints.extract.get(project=wildcards.project)
    return []


def video_record_arg(wildcards):
    try:
        record = video_record(manifest(wildcards.project), wildcards.video)
    except UserError as err:
        raise WorkflowError(str(err)) from None
    return shlex.quote(json.dumps(record, sort_keys=True))


def source_video(wildcards):
    for entry in manifest(wildcards.project)["videos"]:
        if entry["video"] == wildcards.video:
            return entry["path"]
    raise WorkflowError(
        f"video {wildcards.video!r} is not in project {wildcards.project!r}"
    )


# Per-video outputs the workflow delivers; each step's rule file appends its own.
VIDEO_OUTPUTS = ["results/{project}/{video}/video.mp4"]


def project_outputs(wildcards):
    """Everything the implemented steps produce for every video of one project."""
    videos = [entry["video"] for entry in manifest(wildcards.project)["videos"]]
    return expand(VIDEO_OUTPUTS, project=wildcards.project, video=videos)


def all_outputs(wildcards):
    """One summary per project; each waits only for its own checkpoint, so a bad archive stops nothing else."""
    downloads = ["results/downloads.tsv"] if config["sources"] else []
    return [
        *expand("results/{project}/videos.tsv", project=sorted(PROJECTS)),
        *downloads,
    ]


# --- the review report (rules/report.smk) and run notifications ---
def video_report_item(name, category, figure):
    return report(
        f"results/{{project}}/{{video}}/report/{name}",
        caption=f"../reports/{name.split('.')[0]}.rst",
        category=category,
        subcategory="{project}",
        labels={"project": "{project}", "video": "{video}", "figure": figure},
    )


def run_report_item(path, name, figure):
    return report(
        path,
        caption=f"../reports/{name}.rst",
        category="Run",
        labels={"project": "all", "video": "all", "figure": figure},
    )


def video_summaries(wildcards):
    """The report summary of every video of every project (waits for each extraction)."""
    return [
        f"results/{project}/{entry['video']}/report/summary.json"
        for project in sorted(PROJECTS)
        for entry in manifest(project)["videos"]
    ]


def project_manifests(wildcards):
    return [
        str(Path(checkpoints.extract.get(project=p).output[0]) / "manifest.json")
        for p in sorted(PROJECTS)
    ]


# --- the run's tables: every item with its status, from what finished (vidflow.status) ---
def video_outputs_relative():
    """VIDEO_OUTPUTS relative to a video's folder: all of them there = the video is done."""
    return [p.removeprefix("results/{project}/{video}/") for p in VIDEO_OUTPUTS]


def video_outputs_arg(wildcards):
    return " ".join(shlex.quote(p) for p in video_outputs_relative())


def earlier_logs():
    """{project: {rule: log}}: the logs of the jobs before each project's extraction (a download's)."""
    return {
        project: (
            {"download": f"logs/download/{source['download']}.log"}
            if "download" in source
            else {}
        )
        for project, source in PROJECTS.items()
    }


def projects_arg(wildcards):
    return " ".join(
        shlex.quote(f"{p}=" + ",".join(f"{r}:{l}" for r, l in logs.items()))
        for p, logs in sorted(earlier_logs().items())
    )


def write_run_tables():
    """onerror: the tables whose rules wait for every job (videos.tsv, downloads.tsv, run.html), written from what
    finished with each item's status, by the functions those rules run. The failed jobs stay failed (Snakemake
    exits non-zero), and the next run remakes these tables, running the failed jobs again on the way: see
    write_table_after_failure."""
    expected = video_outputs_relative()
    manifests = [
        Path("results", p, "extracted", "manifest.json") for p in sorted(PROJECTS)
    ]
    try:
        for manifest_path in filter(Path.exists, manifests):
            rows = project_rows(read_json(manifest_path), "results", "logs", expected)
            write_table_after_failure(
                manifest_path.parent.parent / "videos.tsv",
                tsv_text(rows),
                [manifest_path],
            )
        if config["sources"]:
            links = {link: LINKS[link]["url"] for link in sorted(LINKS)}
            rows = download_rows(links, DOWNLOAD_DIR, "logs", MANUAL_LINKS)
            write_table_after_failure(
                "results/downloads.tsv",
                tsv_text(rows, DOWNLOAD_COLUMNS),
                [
                    *(f"{DOWNLOAD_DIR}/{l}" for l in links),
                    *as_list(env_ready("download")),
                ],
            )
        write_table_after_failure(
            "results/report/run.html",
            run_page(earlier_logs(), "results", "logs", expected, "results/benchmarks"),
            [*manifests, *as_list(env_ready("report"))],
        )
    except Exception as err:  # never hide the run's own error
        logger.error(f"the run's tables could not be written: {err}")
        return
    logger.warning(
        "some jobs failed: the run's tables list every item with its status"
        " (results/*/videos.tsv, results/report/run.html"
        + (", results/downloads.tsv)" if config["sources"] else ")")
    )


def write_table_after_failure(path, text, inputs):
    """Write a rule's output outside its rule, so that the next run still remakes it with the jobs it waits for.

    Snakemake remakes a missing intermediate file (the output of a failed job) only for a job that has to run, and a
    job whose output is newer than its inputs does not. So the file is dated just before the oldest of ``inputs``
    (its rule's inputs) that exists, and Snakemake's record of the rule's last run for it is dropped: its input
    checksums would say that those inputs did not change.
    """
    if write_text(path, text, older_than=inputs):
        workflow.persistence.cleanup_metadata(IOFile(str(path)))


def as_list(paths):
    return [paths] if isinstance(paths, str) else list(paths)


def notify_run(status, message=""):
    """onsuccess/onerror: POST a short JSON to report.webhook_url (off when empty); never fails the run."""
    notify(
        config["report"]["webhook_url"],
        run_payload(status, PROJECTS, Path.cwd(), message),
        config["report"]["webhook_timeout"],
    )
