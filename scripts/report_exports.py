"""Report entry point: one video's exports page (exports.html), when the export step runs."""

from pathlib import Path

from steps.report_video import report_exports
from vidflow.job import run_job


def report(job):
    report_exports(job.wildcards["project"], job.wildcards["video"], str(Path(job.input["eaf"]).parent),
                   job.output["page"], job.settings["review_video"])


if __name__ == "__main__":
    run_job(report)
