"""Step 1 entry point: extract one archive, or register loose videos or what a link delivered, as a project."""

from steps.extract import ExtractSettings, extract_project
from vidflow.job import run_job, settings_from


def extract(job):
    settings = settings_from(ExtractSettings, job.settings)
    extract_project(job.input, job.output["extracted"], job.wildcards["project"], settings)


if __name__ == "__main__":
    run_job(extract)
