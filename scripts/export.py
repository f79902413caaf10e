"""Step export entry point: ELAN, Praat, WebVTT, tables and the review video of one video's results."""

from steps.export import ExportSettings, export_results
from vidflow.job import run_job, settings_from


def export(job):
    settings = settings_from(ExportSettings, job.settings)
    export_results(job.input["video"], job.input["diarization"], job.input["scenes"], job.input["faces"],
                   job.input.get("speakers"), job.output, settings, job.input.get("transcript"), job.threads)


if __name__ == "__main__":
    run_job(export)
