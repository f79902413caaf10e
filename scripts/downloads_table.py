"""Aggregate entry point: downloads.tsv with one row per link (downloaded, duplicate, failed or skipped)."""

import argparse

from vidflow.logs import run_main, setup_logging
from vidflow.summary import DOWNLOAD_COLUMNS, download_rows, tsv_text, write_table


def link(text):
    link_id, _, url = text.partition("=")
    return link_id, url


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--links", nargs="*", type=link, default=[], help="ID=URL of each download job")
    parser.add_argument("--download-dir", required=True, help="folder of the download jobs' <ID>/status.json")
    parser.add_argument("--logs", default="logs", help="folder of the jobs' logs")
    parser.add_argument("--manual", nargs="*", default=[], help="links that need a manual download")
    parser.add_argument("--output", required=True)
    parser.add_argument("--log")
    args = parser.parse_args(argv)
    setup_logging(args.log)
    rows = download_rows(dict(args.links), args.download_dir, args.logs, args.manual)
    write_table(args.output, tsv_text(rows, DOWNLOAD_COLUMNS))


if __name__ == "__main__":
    run_main(main)
