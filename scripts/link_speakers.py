"""Step 5b entry point: faces.json (tracking.json + speaking/speaker per face) and speakers.json (the links).

Streams tracking.json (two passes): memory does not grow with the video's length.
"""

import argparse

from steps.link_speakers import link_speakers_files
from vidflow.logs import run_main, setup_logging


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tracking", required=True, help="tracking.json (faces per frame)")
    parser.add_argument("--diarization", required=True, help="diarization.json (speaker segments)")
    parser.add_argument("--out-faces", required=True, help="faces.json to write")
    parser.add_argument("--out-speakers", required=True, help="speakers.json to write")
    parser.add_argument("--window", type=int, default=5, help="half window (frames) of the mouth-motion measure")
    parser.add_argument("--lip-motion", type=float, default=0.012, help="lip-gap std (face heights) = moving")
    parser.add_argument("--jaw-motion", type=float, default=0.06, help="jawOpen std = moving")
    parser.add_argument("--min-fraction", type=float, default=0.4, help="moving share of a speaker's turns to link")
    parser.add_argument("--min-margin", type=float, default=0.2, help="lead over other speakers and silence")
    parser.add_argument("--min-turn-frames", type=int, default=12, help="frames of turns a track must be seen in")
    parser.add_argument("--log")
    args = parser.parse_args(argv)
    setup_logging(args.log)
    settings = {"window": args.window, "lip_motion": args.lip_motion, "jaw_motion": args.jaw_motion,
                "min_fraction": args.min_fraction, "min_margin": args.min_margin,
                "min_turn_frames": args.min_turn_frames}
    link_speakers_files(args.tracking, args.diarization, args.out_faces, args.out_speakers, settings)


if __name__ == "__main__":
    run_main(main)
