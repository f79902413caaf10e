"""Step 7 entry point: validate one video's JSON outputs, then archive them under the video's SHA-256."""

from steps.finalize import FinalizeSettings, finalize_outputs
from vidflow.job import run_job, settings_from


def finalize(job):
    settings = settings_from(FinalizeSettings, job.settings)
    finalize_outputs(job.wildcards["video"], job.wildcards["project"], job.input, job.output["receipt"], settings)


if __name__ == "__main__":
    run_job(finalize)
