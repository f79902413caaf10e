"""Diagnostics entry point: versions, GPU visibility and chosen devices -> diagnostics.json + an HTML view."""

import argparse
import json
import logging
import sys
from pathlib import Path

from steps.diagnostics import collect, diagnostics_rows
from steps.report import html_tables
from vidflow.io import atomic_path, read_json, write_json
from vidflow.logs import run_main, setup_logging


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--env-files", nargs="+", required=True)
    parser.add_argument("--summaries", nargs="*", default=[], help="per-video report/summary.json")
    parser.add_argument("--snakemake-version", required=True)
    parser.add_argument("--gpu-requests", default="{}", help="JSON {step: gpus requested}")
    parser.add_argument("--json", required=True)
    parser.add_argument("--html", required=True)
    parser.add_argument("--log")
    args = parser.parse_args(argv)
    setup_logging(args.log)
    diag = collect([Path(p) for p in args.env_files], [read_json(p) for p in args.summaries],
                   args.snakemake_version, json.loads(args.gpu_requests))
    write_json(args.json, diag)
    sections = [(h, rows, cols, "") for h, rows, cols in diagnostics_rows(diag)]
    with atomic_path(args.html) as tmp:
        tmp.write_text(html_tables("Run diagnostics", sections), encoding="utf-8")
    logging.getLogger("diagnostics").info("ffmpeg: %s; GPUs: %s", diag["ffmpeg"], diag["gpu"]["gpus"] or "none")


if __name__ == "__main__":
    run_main(main)
