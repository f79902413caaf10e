"""Identity entry point, per video: face embeddings per track and voice embeddings per speaker -> identity.json."""

from steps.identity import IdentitySettings, describe_video
from vidflow.job import run_job, settings_from


def identity(job):
    settings = settings_from(IdentitySettings, job.settings)
    describe_video(job.input["video"], job.input["faces"], job.input["diarization"], job.input["speakers"],
                   job.output["identity"], settings, job.threads)


if __name__ == "__main__":
    run_job(identity)
