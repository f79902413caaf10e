"""Identity entry point, per project: the persons across all its videos -> persons.json."""

from steps.identity import PersonsSettings
from steps.identity_persons import find_persons
from vidflow.job import run_job, settings_from


def identity_persons(job):
    settings = settings_from(PersonsSettings, job.settings)
    find_persons(job.input["identity"], job.output["persons"], settings, job.threads,
                 job.input.get("transcripts") or None)


if __name__ == "__main__":
    run_job(identity_persons)
