"""Aggregate entry point: one TSV row per video of a project with its status (and per skipped candidate)."""

import argparse
import logging
from collections import Counter

from vidflow.logs import run_main, setup_logging
from vidflow.io import read_json
from vidflow.summary import project_rows, tsv_text, write_table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--results", default="results", help="folder of results/<project>/<video>/")
    parser.add_argument("--logs", default="logs", help="folder of the jobs' logs")
    parser.add_argument("--expect", nargs="+", required=True,
                        help="a video's outputs, relative to its folder ({video}: its name): all there = done")
    parser.add_argument("--log")
    args = parser.parse_args(argv)
    setup_logging(args.log)
    rows = project_rows(read_json(args.manifest), args.results, args.logs, args.expect)
    write_table(args.output, tsv_text(rows))
    counts = Counter(row["status"] for row in rows)
    logging.getLogger("summary").info("%s: %s", args.output, ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))


if __name__ == "__main__":
    run_main(main)
