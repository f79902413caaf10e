"""Report entry point: one video's figures (timeline, contact sheet, scene probabilities) and tables."""

from steps.report_video import ReportVideoSettings, report_video
from vidflow.job import run_job, settings_from


def report(job):
    report_video(job.wildcards["project"], job.wildcards["video"], job.input, job.output,
                 settings_from(ReportVideoSettings, job.settings))


if __name__ == "__main__":
    run_job(report)
