"""Report entry point: one project's persons page (persons.html), when the identity step runs."""

from steps.report_video import report_persons
from vidflow.job import run_job


def report(job):
    report_persons(job.wildcards["project"], job.input["persons"], job.input["identity"], job.output["page"])


if __name__ == "__main__":
    run_job(report)
