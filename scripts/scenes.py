"""Step 3 entry point: shot boundaries of one 25 fps video with TransNetV2."""

import argparse

from steps.scenes import PRECISIONS, RUNTIMES, detect_scenes
from vidflow.logs import run_main, setup_logging


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--input", required=True, help="the 25 fps video (results/.../video.mp4)")
    parser.add_argument("--json", required=True, help="scenes.json to write")
    parser.add_argument("--csv", required=True, help="seed-format scenes.csv to write")
    parser.add_argument("--probs", required=True, help="per-frame transition probabilities (JSON) to write")
    parser.add_argument("--log")
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--min-scene-frames", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=0, help="windows per forward pass (0: device default)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--gpus", type=int, default=0, help="GPUs the rule was given")
    parser.add_argument("--runtime", choices=RUNTIMES, default="auto",
                        help="auto: OpenVINO on CPU, PyTorch on CUDA; openvino; torch")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="OpenVINO inference precision: auto (the CPU's best, bf16 where supported) or f32")
    args = parser.parse_args(argv)
    setup_logging(args.log)
    detect_scenes(args.input, args.json, args.csv, args.probs, threshold=args.threshold,
                  min_scene_frames=args.min_scene_frames, threads=args.threads, gpus=args.gpus,
                  batch_size=args.batch_size, runtime=args.runtime, precision=args.precision)


if __name__ == "__main__":
    run_main(main)
