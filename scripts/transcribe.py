"""Optional step entry point: a speaker-attributed transcript of one video (transcript.json, .vtt, .srt)."""

from steps.transcribe import TranscribeSettings, transcribe_video
from vidflow.job import run_job, settings_from


def transcribe(job):
    settings = settings_from(TranscribeSettings, job.settings)
    transcribe_video(job.input["video"], job.input["diarization"], job.input["faces"], job.input["speakers"],
                     job.output["json"], job.output["vtt"], job.output["srt"], settings, job.threads, job.gpus)


if __name__ == "__main__":
    run_job(transcribe)
