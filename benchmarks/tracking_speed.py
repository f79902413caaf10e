#!/usr/bin/env python3
"""Benchmark step 5 (face tracking): every engine in ENGINES, frames per second of the whole script.

Runs the tracking step in each engine's venv (.venvs/tracking_<family>, built from
envs/tracking_<family>.yaml when missing) on the benchmark clips at 25 fps (benchmarks/common.py: real
astronaut faces, one and two per shot, a cut every 5 s) with 1 and 2 threads and
tracking.detect_every 1 and 5, next to the decode floor (``ffmpeg -i clip -f null -``) of the same
file. Engine settings are the project config's ``tracking.<engine>`` section with model files taken
from $VIDFLOW_TEST_MODELS (default ../shared/models); an engine whose models, env file or module are
missing, or whose env does not build, is listed as skipped with the reason. Peak RSS is the largest
sum over the script and its workers. Model loading and interpreter start-up are included.
Prints a table and writes results/benchmarks/tracking_speed.json. Run with the driver venv:

    .venvs/workflow/bin/python benchmarks/tracking_speed.py [--seconds 60] [--engines yunet,eos]
"""

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
from vidflow.job import job_command  # noqa: E402  (common puts scripts/ on the path)

COLUMNS = [("engine", "engine"), ("size", "size"), ("threads", "threads"), ("detect_every", "detect every"),
           ("wall_s", "wall s"), ("video_s_per_s", "video s / s"), ("fps", "fps"), ("floor_fps", "floor fps"),
           ("x_floor", "x floor"), ("peak_rss_mib", "peak RSS MiB"), ("note", "note")]


def track_command(python, engine, video, scenes, out, threads, detect_every):
    """The tracking rule's command for ``engine``: the project config's ``tracking`` section with the engine, its
    section (model paths resolved) and ``detect_every``."""
    settings = {**common.read_config()["tracking"], "engine": engine["name"], engine["name"]: engine["options"],
                "detect_every": detect_every}
    return job_command(python, "tracking", {"video": video, "scenes": scenes},
                       {"tracking": out / "tracking.json"}, settings, threads=threads, log=out / "tracking.log")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=60, help="clip length (a multiple of 10)")
    parser.add_argument("--engines", default="", help="comma-separated engines (default: every one in ENGINES)")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--sizes", default="640x360,1280x720")
    parser.add_argument("--detect-every", default="1,5", help="tracking.detect_every values to compare")
    parser.add_argument("--work", type=Path, default=common.WORK)
    args = parser.parse_args(argv)
    wanted = [e for e in args.engines.split(",") if e]
    engines = [e for e in common.tracking_engines() if not wanted or e["name"] in wanted]
    rows = []
    for engine in engines:
        if not engine["missing"]:
            try:
                engine["python"] = str(common.build_venv(engine["env"]))
            except Exception as err:  # noqa: BLE001 - reported as a skipped engine
                engine["missing"] = [f"env {engine['env']} did not build: {str(err).splitlines()[0][:200]}"]
        if engine["missing"]:
            rows.append({"engine": engine["name"], "note": "skipped: missing " + ", ".join(engine["missing"])})
            print(rows[-1], flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for size in map(common.parse_size, args.sizes.split(",")):
            video, scenes = common.clip_25fps(args.seconds, size, args.work)
            video_s, frames, _, _ = common.video_info(video)
            for threads in (int(t) for t in args.threads.split(",")):
                floor = common.decode_floor(video, threads)
                for engine in (e for e in engines if not e["missing"]):
                    for every in (int(n) for n in args.detect_every.split(",")):
                        out = Path(tempfile.mkdtemp(dir=tmp))
                        run = common.run_measured(track_command(engine["python"], engine, video, scenes, out,
                                                                threads, every))
                        row = {"engine": engine["name"], "size": f"{size[0]}x{size[1]}", "threads": threads,
                               "detect_every": every, "wall_s": round(run["wall_s"], 1),
                               "peak_rss_mib": round(run["peak_rss_mib"])}
                        if run["returncode"]:
                            log = (out / "tracking.log").read_text() if (out / "tracking.log").exists() else ""
                            row["note"] = "failed: " + (log or run["output"]).strip().splitlines()[-1][:200]
                        else:
                            row.update(common.rates(video_s, frames, run["wall_s"], floor))
                        rows.append(row)
                        print(row, flush=True)
    print(common.format_table(rows, COLUMNS, f"Face tracking, {args.seconds} s clips (script start-up and model "
                                             "loading included)"))
    path = common.write_result("tracking_speed", {"seconds": args.seconds, "models": str(common.MODELS), "rows": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
