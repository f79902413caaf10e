#!/usr/bin/env python3
"""Benchmark the export step on a long video: its wall and CPU time against the whole workflow's.

The input is a finished video of a real workflow run (``--source``: a ``results/{project}/{video}`` folder with
video.mp4, faces.json, diarization.json, scenes.json, speakers.json; by default the 60 s 640x360 clip of the
``per_rule`` benchmark), repeated ``--repeat`` times: the video by FFmpeg's concat demuxer without re-encoding, the
JSON files with frames, times and track ids shifted, so a 10x repeat is a 10 min video with the same content per
second (faces.json keeps its landmarks: reading it is part of the cost). The step runs as its rule runs it (the
config's ``export`` section, its env), with and without the review video, next to the decode floor. The whole
workflow's time for the same length comes from ``--workflow-seconds`` (default: the README's scaling benchmark,
600 s of 640x360 video in 463 s on 2 idle cores). Prints a table and writes results/benchmarks/export_speed.json:

    .venvs/workflow/bin/python benchmarks/export_speed.py [--source DIR] [--repeat 10]
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
from vidflow.io import read_json, write_json  # noqa: E402  (common puts scripts/ on the path)
from vidflow.job import job_command  # noqa: E402
from vidflow.jsonstream import compact, read_document, write_object  # noqa: E402

DEFAULT_SOURCE = common.WORK / "per_rule_640x360" / "run" / "results" / "_loose" / "talk_640x360"
WORKFLOW_600S = 463.0  # s: the whole workflow on 600 s of 640x360 video (README, scaling benchmark)
COLUMNS = [("review", "review video"), ("video_s", "video s"), ("wall_s", "wall s"), ("cpu_s", "CPU s"),
           ("fps", "fps"), ("x_floor", "x floor"), ("peak_rss_mib", "peak RSS MiB"), ("share", "% of workflow")]


def repeat_inputs(source, folder, times):
    """The source's inputs repeated ``times`` times in ``folder`` (see the module doc); returns the frame count."""
    listing = folder / "concat.txt"
    listing.write_text("".join(f"file '{(source / 'video.mp4').resolve()}'\n" for _ in range(times)))
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy",
                    str(folder / "video.mp4")], check=True)
    header, items = read_document(source / "faces.json", "frames")
    frames = list(items)
    count, tracks = len(frames), 1 + max((f["track_id"] for fr in frames for f in fr["faces"]), default=0)
    seconds = count / header["fps"]

    def shifted():
        for k in range(times):
            for frame in frames:
                faces = [{**face, "track_id": face["track_id"] + k * tracks} for face in frame["faces"]]
                yield compact({"frame": frame["frame"] + k * count, "faces": faces})

    early = {**{k: v for k, v in header.items() if k < "frames"}, "frame_count": count * times}
    write_object(folder / "faces.json", early, "frames", shifted(), lambda: {k: v for k, v in header.items()
                                                                              if k > "frames"})
    diarization = read_json(source / "diarization.json")
    diarization["segments"] = [{**s, "start": round(s["start"] + k * seconds, 3), "end": round(s["end"] + k * seconds,
                                                                                                 3)}
                               for k in range(times) for s in diarization["segments"]]
    write_json(folder / "diarization.json", diarization)
    scenes = read_json(source / "scenes.json")
    scenes["scenes"] = [{**s, "start_frame": s["start_frame"] + k * count, "end_frame": s["end_frame"] + k * count}
                        for k in range(times) for s in scenes["scenes"]]
    write_json(folder / "scenes.json", scenes)
    speakers = read_json(source / "speakers.json")
    speakers["tracks"] = [{**t, "track_id": t["track_id"] + k * tracks} for k in range(times)
                          for t in speakers["tracks"]]
    write_json(folder / "speakers.json", speakers)
    return count * times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--workflow-seconds", type=float, help="the whole workflow's wall time for this length")
    args = parser.parse_args(argv)
    if not (args.source / "faces.json").exists():
        raise SystemExit(f"{args.source}: no finished video (run benchmarks/run_all.py --only per_rule first)")
    settings = common.read_config()["export"]
    python = common.build_venv("export")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        frames = repeat_inputs(args.source, tmp, args.repeat)
        video_s = frames / 25
        workflow = args.workflow_seconds or WORKFLOW_600S * video_s / 600
        floor = common.decode_floor(tmp / "video.mp4")
        for review in (True, False):
            out = tmp / ("export" if review else "export_no_review")
            names = {"eaf": "v.eaf", "textgrid": "v.TextGrid", "vtt": "v.vtt", "faces_parquet": "faces.parquet",
                     "faces_csv": "faces.csv", "turns_parquet": "turns.parquet", "turns_csv": "turns.csv"}
            if review:
                names["review"] = "review.mp4"
            inputs = {"video": tmp / "video.mp4", **{k: tmp / f"{k}.json" for k in ("diarization", "scenes", "faces",
                                                                                     "speakers")}}
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            run = common.run_measured(job_command(python, "export", inputs,
                                                  {k: out / v for k, v in names.items()},
                                                  {**settings, "review_video": review}, threads=settings["threads"],
                                                  log=tmp / f"{out.name}.log"))
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            if run["returncode"]:
                raise SystemExit(f"export failed: {(tmp / f'{out.name}.log').read_text()[-2000:]}")
            cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
            rows.append({"review": review, "video_s": video_s, "wall_s": round(run["wall_s"], 1),
                         "cpu_s": round(cpu, 1), "peak_rss_mib": round(run["peak_rss_mib"]),
                         "share": round(100 * run["wall_s"] / workflow, 1),
                         "sizes_mb": {p.name: round(p.stat().st_size / 1e6, 2) for p in sorted(out.iterdir())},
                         **common.rates(video_s, frames, run["wall_s"], floor)})
            print(json.dumps(rows[-1]), flush=True)
    print(common.format_table(rows, COLUMNS, f"Export, {video_s:.0f} s of video, workflow {workflow:.0f} s"))
    path = common.write_result("export_speed", {"source": str(args.source), "repeat": args.repeat,
                                                "workflow_s": workflow, "settings": settings, "rows": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
