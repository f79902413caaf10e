"""Step 6 entry point: write {video}_tracking.json and {video}_audio.json in the seed's contract."""

import argparse
import logging

from steps.reduce import reduce_audio, reduce_tracking
from vidflow.io import read_json, write_json
from vidflow.logs import run_main, setup_logging


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tracking", required=True, help="tracking.json (faces per frame, with speakers)")
    parser.add_argument("--diarization", required=True, help="diarization.json")
    parser.add_argument("--out-tracking", required=True)
    parser.add_argument("--out-audio", required=True)
    parser.add_argument("--log")
    args = parser.parse_args(argv)
    setup_logging(args.log)
    tracking = reduce_tracking(read_json(args.tracking))
    audio = reduce_audio(read_json(args.diarization), tracking["total_frames"], tracking["fps"])
    write_json(args.out_tracking, tracking, compact=True)
    write_json(args.out_audio, audio, compact=True)
    for warning in audio["temporal_alignment"]["warnings"]:
        logging.getLogger("reduce").warning("%s: %s", args.diarization, warning)


if __name__ == "__main__":
    run_main(main)
