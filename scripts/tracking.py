"""Step 5 entry point: every face in every frame of one video, with track ids stable within a scene."""

from steps.tracking.pipeline import TrackingSettings, track_faces
from vidflow.job import run_job, settings_from


def tracking(job):
    settings = settings_from(TrackingSettings, job.settings)
    track_faces(job.input["video"], job.input["scenes"], job.output["tracking"], settings, threads=job.threads,
                gpus=job.gpus)


if __name__ == "__main__":
    run_job(tracking)
