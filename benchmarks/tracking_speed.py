#!/usr/bin/env python3
"""Benchmark step 5 (face tracking): frames per second of the whole script (decode included) per engine.

Makes 60 s, 25 fps clips of real faces (scikit-image astronaut: zoomed, a pair side by side, no face,
a small face) at 640x360 and 1280x720, writes their scenes.json from the known cuts, then runs
scripts/track_faces.py in the tracking_mediapipe venv with 1 and 2 threads, next to the decode floor
(``ffmpeg -i clip -f null -``), with tracking.detect_every 1 (default) and 5. Peak RSS is the largest
sum over the script and its workers.
Prints a table and writes results/benchmarks/tracking_speed.json. Run with the driver venv:

    .venvs/workflow/bin/python benchmarks/tracking_speed.py [--seconds 60] [--engines mediapipe,mediapipe_tasks]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "scripts"), str(ROOT / "tools")]

import media_factory as mf  # noqa: E402
from build_env import build  # noqa: E402

MEDIA = ROOT / "results" / "benchmarks" / "media"
MODELS = Path(os.environ.get("VIDFLOW_TEST_MODELS", ROOT.parent / "shared" / "models"))
TASK = MODELS / "mediapipe" / "face_landmarker_v2_with_blendshapes.task"


def bench_clip(size, seconds):
    """A cached 25 fps clip with four shots and its scenes.json."""
    path = MEDIA / f"faces_{size[0]}x{size[1]}_{seconds}s_25fps.mp4"
    scenes = path.with_suffix(".scenes.json")
    if path.exists() and scenes.exists():
        return path, scenes
    MEDIA.mkdir(parents=True, exist_ok=True)
    per_shot = seconds * 25 // 4
    shots = [mf.Shot("astronaut", per_shot, zoom=(1.0, 1.5), pan=(0.4, 0.4, 0.5, 0.3)),
             mf.Shot("astronaut_pair", per_shot, zoom=(1.0, 1.2)), mf.Shot("blank", per_shot),
             mf.Shot("astronaut", seconds * 25 - 3 * per_shot, face_scale=0.1, pan=(0.4, 0.5, 0.6, 0.5))]
    truth = mf.make_video(path, shots, fps=25, size=size, crf=20)
    scenes.write_text(json.dumps({"fps": 25, "frame_count": truth["frame_count"], "scenes": [
        {"start_frame": s["start_frame"], "end_frame": s["end_frame"]} for s in truth["shots"]]}))
    return path, scenes


def tree_rss(pid):
    """Resident memory (bytes) of ``pid`` and all its descendants."""
    children, rss = {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        children.setdefault(int(fields["PPid"].strip()), []).append(int(entry.name))
        rss[int(entry.name)] = int(fields.get("VmRSS", "0 kB").split()[0]) * 1024
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo += children.get(p, [])
    return total


def run_tracking(python, clip, scenes, engine, threads, out, detect_every=1):
    cmd = [str(python), str(ROOT / "scripts" / "track_faces.py"), "--video", str(clip), "--scenes", str(scenes),
           "--output", str(out), "--log", str(out.with_suffix(".log")), "--threads", str(threads),
           "--engine", engine, "--detect-every", str(detect_every)]
    if engine == "mediapipe_tasks":
        cmd += ["--task-model", str(TASK)]
    start, peak = time.monotonic(), 0
    proc = subprocess.Popen(cmd)
    while proc.poll() is None:
        peak = max(peak, tree_rss(proc.pid))
        time.sleep(0.2)
    if proc.returncode != 0:
        raise SystemExit(f"tracking failed: {out.with_suffix('.log').read_text()[-2000:]}")
    return time.monotonic() - start, peak


def decode_floor(path, threads):
    start = time.monotonic()
    subprocess.run(["ffmpeg", "-v", "error", "-threads", str(threads), "-i", str(path), "-f", "null", "-"], check=True)
    return time.monotonic() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--engines", default="mediapipe,mediapipe_tasks")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--sizes", default="640x360,1280x720")
    parser.add_argument("--detect-every", default="1,5", help="tracking.detect_every values to compare")
    args = parser.parse_args()
    python = build(ROOT / "envs" / "tracking_mediapipe.yaml", ROOT / ".venvs" / "tracking_mediapipe")
    engines = [e for e in args.engines.split(",") if e != "mediapipe_tasks" or TASK.exists()]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes.split(","):
            width, height = (int(v) for v in size.split("x"))
            clip, scenes = bench_clip((width, height), args.seconds)
            frames = args.seconds * 25
            for threads in (int(t) for t in args.threads.split(",")):
                floor = decode_floor(clip, threads)
                for engine, every in [(e, int(n)) for e in engines for n in args.detect_every.split(",")]:
                    wall, peak = run_tracking(python, clip, scenes, engine, threads, Path(tmp) / f"{engine}.json",
                                              every)
                    rows.append({"engine": engine, "detect_every": every, "size": size, "threads": threads,
                                 "frames": frames,
                                 "decode_floor_fps": round(frames / floor), "fps": round(frames / wall, 1),
                                 "wall_s": round(wall, 1), "peak_rss_mb": round(peak / 2**20)})
                    print(rows[-1], flush=True)
    header = list(rows[0])
    print(" | ".join(header))
    for row in rows:
        print(" | ".join(str(row[h]) for h in header))
    out = ROOT / "results" / "benchmarks" / "tracking_speed.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"seconds": args.seconds, "cpus": os.cpu_count(), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
