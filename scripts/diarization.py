"""Step 4 entry point: who speaks when in one video (diarization.json + diarization.rttm)."""

import os

from vidflow.job import run_job


def diarization(job):
    os.environ["PYANNOTE_METRICS_ENABLED"] = "0"
    # BLAS and OpenMP threads are fixed before numpy and torch load: the cores the rule was given
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(max(1, job.threads))
    from steps.diarization import diarization_settings, diarize_video  # noqa: PLC0415 - numpy after BLAS threads

    settings = diarization_settings(job.settings)
    diarize_video(job.input["video"], job.output["json"], job.output["rttm"], settings, job.threads, job.gpus)


if __name__ == "__main__":
    run_job(diarization)
