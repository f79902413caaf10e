"""Step 6 entry point: write {video}_tracking.json and {video}_audio.json in the seed's contract (streamed)."""

import argparse
import logging

from steps.reduce import reduce_audio_file, reduce_tracking_file
from vidflow.io import read_json
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
    fps, total_frames = reduce_tracking_file(args.tracking, args.out_tracking)
    alignment = reduce_audio_file(read_json(args.diarization), total_frames, fps, args.out_audio)
    for warning in alignment["warnings"]:
        logging.getLogger("reduce").warning("%s: %s", args.diarization, warning)


if __name__ == "__main__":
    run_main(main)
