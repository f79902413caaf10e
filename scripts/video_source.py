"""Step 1 entry point, per video: write the video's record (``source.json``), which the rule takes from the manifest."""

from vidflow.io import write_json
from vidflow.job import run_job


def video_source(job):
    write_json(job.output["record"], job.settings["record"])


if __name__ == "__main__":
    run_job(video_source)
