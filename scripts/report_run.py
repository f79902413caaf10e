"""Report entry point: the run summary (every project and video with its status, throughput) and every rule's
benchmark table."""

from steps.report_run import ReportRunSettings, report_run
from vidflow.job import run_job, settings_from


def report(job):
    report_run(settings_from(ReportRunSettings, job.settings), job.output)


if __name__ == "__main__":
    run_job(report)
