#!/usr/bin/env python3
"""Benchmark step 2 (convert): video-seconds per wall-second next to the decode floor.

Runs the convert step (run_step.py) in the convert venv with the project config's settings on the benchmark clips
(benchmarks/common.py: real faces and speech, 30 fps, so the step must re-encode to 25 fps) at 640x360
and 1280x720, next to ``ffmpeg -i clip -f null -`` (the decode floor) of the same file. Peak RSS covers
the script and its FFmpeg child. Prints a table and writes results/benchmarks/convert_speed.json.
Run with the driver venv:

    .venvs/workflow/bin/python benchmarks/convert_speed.py [--seconds 60] [--threads 2]
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
from vidflow.job import job_command  # noqa: E402  (common puts scripts/ on the path)

COLUMNS = [("size", "size"), ("mode", "mode"), ("wall_s", "wall s"), ("video_s_per_s", "video s / s"),
           ("fps", "fps"), ("floor_fps", "floor fps"), ("x_floor", "x floor"), ("peak_rss_mib", "peak RSS MiB")]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=60, help="clip length (a multiple of 10)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sizes", default="640x360,1280x720")
    parser.add_argument("--work", type=Path, default=common.WORK)
    args = parser.parse_args(argv)
    settings = common.read_config()["convert"]
    python = common.build_venv("convert")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for size in map(common.parse_size, args.sizes.split(",")):
            source = common.clip(args.seconds, size, args.work)
            video_s, frames, _, _ = common.video_info(source)
            floor = common.decode_floor(source, args.threads)
            run = common.run_measured(job_command(
                python, "convert", {"video": source},
                {"video": tmp / "video.mp4", "info": tmp / "video.json"}, settings, threads=args.threads,
                log=tmp / "convert.log"))
            if run["returncode"]:
                raise SystemExit(f"convert failed: {(tmp / 'convert.log').read_text()[-2000:]}")
            rows.append({"size": f"{size[0]}x{size[1]}", "mode": json.loads((tmp / "video.json").read_text())["mode"],
                         "wall_s": round(run["wall_s"], 2), "peak_rss_mib": round(run["peak_rss_mib"]),
                         **common.rates(video_s, frames, run["wall_s"], floor)})
            print(rows[-1], flush=True)
    print(common.format_table(rows, COLUMNS, f"Convert, {args.seconds} s clips at 30 fps, {args.threads} threads"))
    path = common.write_result("convert_speed", {"seconds": args.seconds, "threads": args.threads,
                                                 "settings": settings, "rows": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
