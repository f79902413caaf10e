"""Step 2 entry point: convert one video to 25 fps H.264/AAC (video.mp4 + its record video.json)."""

from steps.convert import ConvertSettings, convert_video
from vidflow.job import run_job, settings_from


def convert(job):
    settings = settings_from(ConvertSettings, job.settings)
    convert_video(job.input["video"], job.output["video"], job.output["info"], settings, job.threads, job.gpus)


if __name__ == "__main__":
    run_job(convert)
