"""Aggregate entry point: downloads.tsv with one row per link (downloaded, duplicate or manual)."""

import argparse

from vidflow.io import read_json
from vidflow.logs import run_main, setup_logging
from vidflow.summary import write_tsv

COLUMNS = ["url", "status", "reason", "file", "sha256", "size"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--status", nargs="*", default=[], help="status.json of each download job")
    parser.add_argument("--manual", nargs="*", default=[], help="links that need a manual download")
    parser.add_argument("--output", required=True)
    parser.add_argument("--log")
    args = parser.parse_args(argv)
    setup_logging(args.log)
    rows = [{**{c: "" for c in COLUMNS}, **read_json(path)} for path in args.status]
    rows += [{**{c: "" for c in COLUMNS}, "url": url, "status": "skipped", "reason": "manual download required"}
             for url in args.manual]
    write_tsv(args.output, sorted(rows, key=lambda r: r["url"]), COLUMNS)


if __name__ == "__main__":
    run_main(main)
