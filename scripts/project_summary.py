"""Aggregate entry point: one TSV row per video of a project with its status (and per skipped candidate)."""

from vidflow.job import run_job, settings_from
from vidflow.summary import ProjectSummarySettings, project_summary


def summarize(job):
    project_summary(job.input["manifest"], job.output["table"], settings_from(ProjectSummarySettings, job.settings))


if __name__ == "__main__":
    run_job(summarize)
