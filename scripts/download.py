"""Download entry point: fetch one link into its folder and record it in the shared history."""

from steps.download import DownloadSettings, download_link
from vidflow.job import run_job, settings_from


def download(job):
    download_link(job.settings["link"], job.output["folder"], settings_from(DownloadSettings, job.settings))


if __name__ == "__main__":
    run_job(download)
