"""Diagnostics entry point: versions, GPU visibility and chosen devices -> diagnostics.json + an HTML view."""

from steps.diagnostics import DiagnosticsSettings, diagnostics
from vidflow.job import run_job, settings_from


def diagnose(job):
    diagnostics(settings_from(DiagnosticsSettings, job.settings), job.input["manifests"], job.output["json"],
                job.output["html"])


if __name__ == "__main__":
    run_job(diagnose)
