# The end of a run. onerror: the tables whose rules wait for every job, written from what finished (vidflow.status);
# onsuccess/onerror: the webhook notification.
from snakemake.io import IOFile

from steps.report.pages import run_page
from vidflow.notify import notify, run_payload
from vidflow.summary import (
    DOWNLOAD_COLUMNS,
    download_rows,
    project_rows,
    tsv_text,
    write_table,
)


def video_outputs_relative():
    """VIDEO_OUTPUTS relative to a video's folder: all of them there = the video is done."""
    return [p.removeprefix("results/{project}/{video}/") for p in VIDEO_OUTPUTS]


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


def project_summary_settings(wildcards):
    """The job settings of project_summary (vidflow.summary.ProjectSummarySettings), built when its jobs are: by then
    every rule file has added its outputs to VIDEO_OUTPUTS."""
    return {"expected": video_outputs_relative(), "results": "results", "logs": "logs"}


def report_run_settings(wildcards):
    """The job settings of report_run (steps.report.run_summary.ReportRunSettings)."""
    return {
        **project_summary_settings(wildcards),
        "projects": earlier_logs(),
        "benchmarks": "results/benchmarks",
    }


def write_run_tables():
    """onerror: the tables whose rules wait for every job (videos.tsv, downloads.tsv, run.html), written from what
    finished with each item's status, by the functions those rules run. The failed jobs stay failed (Snakemake
    exits non-zero), and the next run remakes these tables, running the failed jobs again on the way: see
    write_table_after_failure."""
    run = report_run_settings(None)  # what the rules of these tables get
    manifests = [
        Path("results", p, "extracted", "manifest.json") for p in sorted(PROJECTS)
    ]
    try:
        for manifest_path in filter(Path.exists, manifests):
            rows = project_rows(
                read_json(manifest_path), run["results"], run["logs"], run["expected"]
            )
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
            run_page(
                run["projects"],
                run["results"],
                run["logs"],
                run["expected"],
                run["benchmarks"],
            ),
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
    if write_table(path, text, older_than=inputs):
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
