"""Step 3 entry point: shot boundaries of one 25 fps video with TransNetV2."""

from steps.scenes import ScenesSettings, detect_scenes
from vidflow.job import run_job, settings_from


def scenes(job):
    settings = settings_from(ScenesSettings, job.settings)
    detect_scenes(job.input["video"], job.output["json"], job.output["csv"], job.output["probs"], settings,
                  job.threads, job.gpus)


if __name__ == "__main__":
    run_job(scenes)
