#!/usr/bin/env python3
"""Benchmark the identity step on a 10 min video: wall time, CPU time and peak memory of the per-video job
(face embeddings per track + voice embeddings per speaker) and of the per-project clustering.

The input is a finished video of a real workflow run (``--source``: a ``results/{project}/{video}`` folder with
video.mp4, faces.json, diarization.json, scenes.json, speakers.json; e.g. the real ``av3_dialogue`` clip of
tools/identity_clips.py: two real faces, two real voices, 40 s), repeated ``--repeat`` times as export_speed.py
repeats it (video concatenated without re-encoding, frames, times and track ids shifted): 15 x 40 s = 10 min
with 30 face tracks and a dialogue of two speakers. Prints a table and writes results/benchmarks/identity_speed.json:

    .venvs/workflow/bin/python benchmarks/identity_speed.py --source RESULTS/identity_real/av3_dialogue [--repeat 15]
"""

import argparse
import json
import resource
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from export_speed import repeat_inputs  # noqa: E402

import common  # noqa: E402
from vidflow.job import job_command  # noqa: E402

COLUMNS = [("job", "job"), ("video_s", "video s"), ("wall_s", "wall s"), ("cpu_s", "CPU s"),
           ("peak_rss_mib", "peak RSS MiB"), ("tracks", "tracks"), ("speakers", "speakers")]


def measured(python, step, inputs, outputs, settings, threads, log):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    run = common.run_measured(job_command(python, step, inputs, outputs, settings,
                                          threads=threads, log=log))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if run["returncode"]:
        raise SystemExit(f"{step} failed: {Path(log).read_text()[-2000:]}")
    return run, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, required=True)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args(argv)
    settings = common.read_config()["identity"]
    threads = settings.pop("threads")
    python = common.build_venv("identity")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        video = tmp / "long"
        video.mkdir()
        frames = repeat_inputs(args.source, video, args.repeat)
        inputs = {"video": video / "video.mp4", **{k: video / f"{k}.json" for k in ("faces", "speakers",
                                                                                     "diarization")}}
        run, cpu = measured(python, "identity", inputs, {"identity": video / "identity.json"}, settings, threads,
                            tmp / "identity.log")
        document = json.loads((video / "identity.json").read_text())
        rows.append({"job": "identity (per video)", "video_s": frames / 25, "wall_s": round(run["wall_s"], 1),
                     "cpu_s": round(cpu, 1), "peak_rss_mib": round(run["peak_rss_mib"]),
                     "tracks": len(document["tracks"]), "speakers": len(document["speakers"])})
        run, cpu = measured(python, "identity.persons", {"identity": [video / "identity.json"]},
                            {"persons": tmp / "persons.json"}, settings, threads, tmp / "persons.log")
        persons = json.loads((tmp / "persons.json").read_text())
        rows.append({"job": f"identity_persons ({len(persons['persons'])} persons)", "video_s": frames / 25,
                     "wall_s": round(run["wall_s"], 1), "cpu_s": round(cpu, 1),
                     "peak_rss_mib": round(run["peak_rss_mib"]), "tracks": len(document["tracks"]),
                     "speakers": len(document["speakers"])})
    print(common.format_table(rows, COLUMNS, f"Identity, {frames / 25:.0f} s of video"))
    path = common.write_result("identity_speed", {"source": str(args.source), "repeat": args.repeat,
                                                  "settings": settings, "rows": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
