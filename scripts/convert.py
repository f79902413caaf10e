"""Step 2 entry point: convert one video to 25 fps H.264/AAC."""

import argparse

from steps.convert import convert_video
from vidflow.logs import run_main, setup_logging


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--info", required=True, help="JSON record of the conversion")
    parser.add_argument("--log")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--gpus", type=int, default=0, help="GPUs the rule was given")
    parser.add_argument("--encoder", choices=["auto", "libx264", "h264_nvenc"], default="auto")
    parser.add_argument("--crf", type=int, required=True)
    parser.add_argument("--preset", required=True)
    parser.add_argument("--audio-bitrate", required=True)
    args = parser.parse_args(argv)
    setup_logging(args.log)
    settings = {"encoder": args.encoder, "crf": args.crf, "preset": args.preset, "audio_bitrate": args.audio_bitrate}
    convert_video(args.input, args.output, args.info, settings, threads=args.threads, gpus=args.gpus)


if __name__ == "__main__":
    run_main(main)
