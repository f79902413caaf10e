"""Step 5b entry point: faces.json (tracking.json + speaking/speaker per face) and speakers.json (the links).

Streams tracking.json (two passes); the audio of video.mp4 gives the loudness the mouths are compared with.
"""

import argparse

from steps.link_speakers import link_speakers_files
from vidflow.logs import run_main, setup_logging


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tracking", required=True, help="tracking.json (faces per frame)")
    parser.add_argument("--diarization", required=True, help="diarization.json (speaker segments)")
    parser.add_argument("--video", required=True, help="video.mp4 (its audio's loudness)")
    parser.add_argument("--out-faces", required=True, help="faces.json to write")
    parser.add_argument("--out-speakers", required=True, help="speakers.json to write")
    parser.add_argument("--min-sync", type=float, default=0.2, help="mouth-voice correlation needed to link")
    parser.add_argument("--min-z", type=float, default=2.0, help="significance (Fisher z) of that correlation")
    parser.add_argument("--min-margin", type=float, default=0.1, help="lead over the track's other speakers")
    parser.add_argument("--max-lag", type=int, default=3, help="frames the voice may lag or lead the mouth")
    parser.add_argument("--min-turn-frames", type=int, default=12, help="frames of turns a track must be seen in")
    parser.add_argument("--log")
    args = parser.parse_args(argv)
    setup_logging(args.log)
    settings = {"min_sync": args.min_sync, "min_z": args.min_z, "min_margin": args.min_margin,
                "max_lag": args.max_lag, "min_turn_frames": args.min_turn_frames}
    link_speakers_files(args.tracking, args.diarization, args.video, args.out_faces, args.out_speakers, settings)


if __name__ == "__main__":
    run_main(main)
