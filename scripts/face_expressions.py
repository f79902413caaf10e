"""Optional step entry point: py-feat action units and emotions of every tracked face of one video."""

import argparse

from steps.expressions import BATCH_FRAMES, analyse_expressions
from vidflow.logs import run_main, setup_logging


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--video", required=True, help="the 25 fps video (results/.../video.mp4)")
    parser.add_argument("--tracking", required=True, help="its tracking.json (face boxes and track ids)")
    parser.add_argument("--output", required=True, help="expressions.json to write")
    parser.add_argument("--model-dir", required=True, help="HuggingFace cache folder holding py-feat's models")
    parser.add_argument("--landmark-model", default="mobilefacenet")
    parser.add_argument("--au-model", default="xgb")
    parser.add_argument("--emotion-model", default="resmasknet")
    parser.add_argument("--batch-frames", type=int, default=BATCH_FRAMES, help="frames with faces per forward pass")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--gpus", type=int, default=0, help="GPUs the rule was given")
    parser.add_argument("--log")
    args = parser.parse_args(argv)
    setup_logging(args.log)
    models = {"landmark_model": args.landmark_model, "au_model": args.au_model, "emotion_model": args.emotion_model}
    analyse_expressions(args.video, args.tracking, args.output, args.model_dir, models, threads=args.threads,
                        gpus=args.gpus, batch_frames=args.batch_frames)


if __name__ == "__main__":
    run_main(main)
