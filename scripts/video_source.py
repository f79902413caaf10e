"""Step 1 entry point, per video: write the video's record (``source.json``) given as JSON by the rule."""

import argparse
import json

from vidflow.io import write_json
from vidflow.logs import run_main, setup_logging


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--record", required=True, help="the record as JSON (from the project's manifest)")
    parser.add_argument("--output", required=True)
    parser.add_argument("--log")
    args = parser.parse_args(argv)
    setup_logging(args.log)
    write_json(args.output, json.loads(args.record))


if __name__ == "__main__":
    run_main(main)
