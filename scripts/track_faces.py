"""Step 5 entry point: every face in every frame of one video, with track ids stable within a scene."""

import argparse
import json

from steps.tracking.pipeline import DEFAULTS, track_faces
from vidflow.logs import run_main, setup_logging


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--video", required=True, help="25 fps video from step 2")
    parser.add_argument("--scenes", required=True, help="scenes.json from step 3")
    parser.add_argument("--output", required=True, help="tracking.json to write")
    parser.add_argument("--log")
    parser.add_argument("--threads", type=int, default=1, help="worker processes at most")
    parser.add_argument("--engine", default=DEFAULTS["engine"])
    parser.add_argument("--detect-every", type=int, default=DEFAULTS["detect_every"])
    parser.add_argument("--min-score", type=float, default=DEFAULTS["min_score"])
    parser.add_argument("--max-faces", type=int, default=DEFAULTS["max_faces"])
    parser.add_argument("--refine-landmarks", type=int, choices=[0, 1], default=int(DEFAULTS["refine_landmarks"]))
    parser.add_argument("--max-gap", type=int, default=DEFAULTS["max_gap"])
    parser.add_argument("--min-iou", type=float, default=DEFAULTS["min_iou"])
    parser.add_argument("--max-center-dist", type=float, default=DEFAULTS["max_center_dist"])
    parser.add_argument("--min-track-frames", type=int, default=DEFAULTS["min_track_frames"])
    parser.add_argument("--chunk-frames", type=int, default=DEFAULTS["chunk_frames"])
    parser.add_argument("--task-model", default="", help="MediaPipe Tasks .task bundle (engine mediapipe_tasks)")
    parser.add_argument("--task-sha256", default="")
    parser.add_argument("--options", type=json.loads, default={},
                        help="the engine's own settings (its tracking.<engine> config section) as JSON")
    args = parser.parse_args(argv)
    setup_logging(args.log)
    settings = {k: getattr(args, k) for k in DEFAULTS}
    settings["refine_landmarks"] = bool(args.refine_landmarks)
    track_faces(args.video, args.scenes, args.output, settings, threads=args.threads)


if __name__ == "__main__":
    run_main(main)
