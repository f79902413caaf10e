"""Step 5b entry point: faces.json (tracking.json + speaking/speaker per face) and speakers.json (the links).

Streams tracking.json (two passes); the audio of video.mp4 gives the loudness the mouths are compared with.
"""

from steps.link_speakers import LinkSpeakersSettings, link_speakers_files
from vidflow.job import run_job, settings_from


def link_speakers(job):
    settings = settings_from(LinkSpeakersSettings, job.settings)
    link_speakers_files(job.input["tracking"], job.input["diarization"], job.input["video"], job.output["faces"],
                        job.output["speakers"], settings)


if __name__ == "__main__":
    run_job(link_speakers)
