"""Aggregate entry point: downloads.tsv with one row per link (downloaded, duplicate, failed or skipped)."""

from steps.download import DownloadsTableSettings, write_downloads_table
from vidflow.job import run_job, settings_from


def downloads_table(job):
    write_downloads_table(job.output["table"], settings_from(DownloadsTableSettings, job.settings))


if __name__ == "__main__":
    run_job(downloads_table)
