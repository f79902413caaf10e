"""Report entry point: one video's transcript page (transcript.html), when the transcribe step runs."""

from steps.report_video import report_transcript
from vidflow.job import run_job


def report(job):
    report_transcript(job.wildcards["project"], job.wildcards["video"], job.input["transcript"], job.output["page"])


if __name__ == "__main__":
    run_job(report)
