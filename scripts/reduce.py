"""Step 6 entry point: write {video}_tracking.json and {video}_audio.json in the seed's contract (streamed)."""

import logging

from steps.reduce import reduce_audio_file, reduce_tracking_file
from vidflow.io import read_json
from vidflow.job import run_job


def reduce(job):
    fps, total_frames = reduce_tracking_file(job.input["tracking"], job.output["tracking"])
    alignment = reduce_audio_file(read_json(job.input["diarization"]), total_frames, fps, job.output["audio"])
    for warning in alignment["warnings"]:
        logging.getLogger("reduce").warning("%s: %s", job.input["diarization"], warning)


if __name__ == "__main__":
    run_job(reduce)
