"""Aggregate entry point: one TSV row per video of a project, once all its videos are done."""

import argparse
import logging
from pathlib import Path

from vidflow.io import read_json
from vidflow.logs import run_main, setup_logging
from vidflow.summary import project_rows, write_tsv


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--log")
    args = parser.parse_args(argv)
    setup_logging(args.log)
    rows = project_rows(read_json(Path(args.manifest)), Path(args.output).parent)
    write_tsv(args.output, rows)
    logging.getLogger("summary").info("%d video(s) in %s", len(rows), args.output)


if __name__ == "__main__":
    run_main(main)
