"""Step summary: a project's table of videos and their status (the logic: :mod:`vidflow.summary`)."""

from vidflow.job import settings_from
from vidflow.summary import ProjectSummarySettings, project_summary


def run(job):
    project_summary(job.input["manifest"], job.output["table"], settings_from(ProjectSummarySettings, job.settings))
