"""Step video_source: a video's source record (archive, member, download link) as its own file, for finalize."""

from vidflow.io import write_json


def run(job):
    write_json(job.output["record"], job.settings["record"])
