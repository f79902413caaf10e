#!/usr/bin/env python3
"""Benchmark step 3 (scenes): TransNetV2 through PyTorch against OpenVINO (f32 and the CPU's own precision).

Takes the 60 s benchmark clips at 25 fps (benchmarks/common.py: real astronaut faces panned and zoomed, a
cut every 5 s) at 640x360 and 1280x720 and runs the step as its rule does (run_step.py scenes, in the scenes venv,
on the project config's scenes settings) once per runtime variant in turn, ``--repeats`` rounds, so that load
from other users of the machine hits every variant alike; reports medians of wall time, CPU seconds (the process
and FFmpeg), the inference time the step logs, and per variant the scenes and the largest difference of its
probabilities from PyTorch's (scenes_probs.json, 3 decimals). One OpenVINO run before the rounds fills the
export cache (its time is reported apart). Prints a table and writes results/benchmarks/scenes_speed.json. Run
with the driver venv:

    .venvs/workflow/bin/python benchmarks/scenes_speed.py [--seconds 60] [--threads 2] [--repeats 3]
        [--sizes 640x360,1280x720]
"""

import argparse
import json
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
from vidflow.job import job_command  # noqa: E402  (common puts scripts/ on the path)

ROOT = common.ROOT
SCENES_PYTHON = common.VENV_DIR / "scenes" / "bin" / "python"
SCRIPT = "scenes"
VARIANTS = {"torch": ("torch", "auto"), "openvino f32": ("openvino", "f32"), "openvino auto": ("openvino", "auto")}
DONE = re.compile(r"done: (\d+) frames, .* (?:inference|model wait) ([\d.]+) s")


def children_cpu_s():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_step(clip, runtime, precision, threads):
    """One run of the step: wall and CPU seconds, logged inference seconds, model block, scene starts, probs."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        settings = {**common.read_config()["scenes"], "runtime": runtime, "precision": precision}
        cmd = job_command(SCENES_PYTHON, SCRIPT, {"video": clip}, {"json": out / "scenes.json",
                          "csv": out / "scenes.csv", "probs": out / "probs.json"}, settings, threads=threads,
                          log=out / "log")
        cpu, start = children_cpu_s(), time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        wall, cpu = time.perf_counter() - start, children_cpu_s() - cpu
        log = (out / "log").read_text() if (out / "log").exists() else ""
        done = DONE.search(log)
        if proc.returncode or not done:
            raise SystemExit(f"scenes step failed ({runtime}, {precision}):\n{proc.stderr[-2000:]}\n{log[-2000:]}")
        doc = json.loads((out / "scenes.json").read_text())
        probs = json.loads((out / "probs.json").read_text())["probabilities"]
    return {"wall_s": wall, "cpu_s": cpu, "inference_s": float(done.group(2)), "frames": int(done.group(1)),
            "model": doc["model"], "starts": [s["start_frame"] for s in doc["scenes"][1:]], "probs": probs}


def summarize_runs(size, name, runs, reference):
    """One table row: medians over the runs, and agreement with the reference (PyTorch) runs."""
    wall, cpu = statistics.median(r["wall_s"] for r in runs), statistics.median(r["cpu_s"] for r in runs)
    inference = statistics.median(r["inference_s"] for r in runs)
    frames, model = runs[0]["frames"], runs[0]["model"]
    diff = max(abs(a - b) for r in runs for a, b in zip(r["probs"], reference[0]["probs"]))
    ref_wall = statistics.median(r["wall_s"] for r in reference)
    ref_inference = statistics.median(r["inference_s"] for r in reference)
    return {"size": size, "variant": name, "precision": model["precision"], "runtime": model["runtime"],
            "runtime_version": model["runtime_version"], "wall_s": round(wall, 2), "fps": round(frames / wall, 1),
            "cpu_s": round(cpu, 1), "inference_s": round(inference, 2),
            "inference_fps": round(frames / inference, 1), "x_wall": round(ref_wall / wall, 2),
            "x_inference": round(ref_inference / inference, 2), "scenes": len(runs[0]["starts"]) + 1,
            "same_cuts": all(r["starts"] == reference[0]["starts"] for r in runs),
            "identical_reruns": all(r["probs"] == runs[0]["probs"] for r in runs), "max_diff": round(diff, 3),
            "walls_s": [round(r["wall_s"], 2) for r in runs]}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=60, help="clip length (a multiple of 10)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", default="640x360,1280x720")
    args = parser.parse_args()
    if not SCENES_PYTHON.exists():
        sys.exit(f"build the scenes venv first: python tools/build_env.py envs/scenes.yaml {SCENES_PYTHON.parents[1]}")
    sizes = args.sizes.split(",")
    clips = {size: common.clip_25fps(args.seconds, common.parse_size(size))[0] for size in sizes}
    first = run_step(clips[sizes[0]], "openvino", "f32", args.threads)  # fills the export cache if empty
    runs = {(size, name): [] for size in sizes for name in VARIANTS}
    names = list(VARIANTS)
    for repeat in range(args.repeats):
        order = names[repeat % len(names):] + names[:repeat % len(names)]  # each variant leads one round
        for size in sizes:
            for name in order:
                runs[size, name].append(run_step(clips[size], *VARIANTS[name], args.threads))
                print(f"round {repeat + 1} {size} {name}: {runs[size, name][-1]['wall_s']:.1f} s", flush=True)
    rows = [summarize_runs(size, name, runs[size, name], runs[size, "torch"]) for size in sizes for name in names]
    print(common.format_table(rows, [
        ("size", "size"), ("variant", "variant"), ("precision", "precision"), ("wall_s", "wall s"),
        ("fps", "fps"), ("x_wall", "x torch"), ("cpu_s", "CPU s"), ("inference_s", "inference s"),
        ("inference_fps", "inference fps"), ("x_inference", "x torch (inference)"), ("scenes", "scenes"),
        ("same_cuts", "same cuts"), ("identical_reruns", "reruns identical"), ("max_diff", "max |prob diff|")],
        f"Scene detection, threads={args.threads}, medians of {args.repeats} interleaved runs (whole process; "
        f"first OpenVINO run, export cache as found: {first['wall_s']:.1f} s)"))
    path = common.write_result("scenes_speed", {"seconds": args.seconds, "threads": args.threads,
                                                "repeats": args.repeats, "rows": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
