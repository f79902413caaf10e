"""Optional step entry point: py-feat action units and emotions of every tracked face of one video."""

from steps.expressions import ExpressionsSettings, analyse_expressions
from vidflow.job import run_job, settings_from


def expressions(job):
    settings = settings_from(ExpressionsSettings, job.settings)
    analyse_expressions(job.input["video"], job.input["tracking"], job.output["json"], settings, job.threads,
                        job.gpus)


if __name__ == "__main__":
    run_job(expressions)
