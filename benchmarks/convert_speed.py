#!/usr/bin/env python3
"""Benchmark step 2 (convert): video-seconds per wall-second next to the decode floor.

Makes 60 s clips of real material (scikit-image photos panned and zoomed, espeak-ng speech) at
1280x720 and 640x360, 30 fps (so conversion must re-encode to 25 fps), then times
``ffmpeg -i clip -f null -`` (the decode floor) and the conversion itself with the configured settings.
Prints a table and writes results/benchmarks/convert_speed.json. Run with the driver venv:

    .venvs/workflow/bin/python benchmarks/convert_speed.py [--seconds 60] [--threads 2]
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "scripts"), str(ROOT / "tools")]

import media_factory as mf  # noqa: E402
from steps.convert import convert_video  # noqa: E402

SETTINGS = {"encoder": "auto", "crf": 20, "preset": "fast", "audio_bitrate": "128k"}
MEDIA = ROOT / "results" / "benchmarks" / "media"


def bench_clip(size, seconds, fps=30):
    """A cached benchmark clip: shots of real photos with a moving camera, with speech."""
    path = MEDIA / f"talk_{size[0]}x{size[1]}_{seconds}s_{fps}fps.mp4"
    if path.exists():
        return path
    MEDIA.mkdir(parents=True, exist_ok=True)
    per_shot = int(seconds * fps / 4)
    shots = [mf.Shot("astronaut", per_shot, zoom=(1.0, 1.3)), mf.Shot("coffee", per_shot, pan=(0.3, 0.5, 0.7, 0.5)),
             mf.Shot("astronaut_pair", per_shot, zoom=(1.0, 1.2)), mf.Shot("rocket", per_shot, zoom=(1.2, 1.0))]
    voices = ["en-us+m3", "en+f3"]
    lines = ["We recorded this interview in the studio.", "Thank you, it is a pleasure to be here."]
    turns = mf.layout_turns([(voices[i % 2], lines[i % 2]) for i in range(int(seconds / 2.5))], start=0.3, gap=0.4)
    turns = [t for t in turns if t[0] < seconds - 3]
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        mf.make_speech(wav, turns, seconds)
        mf.make_video(path, shots, fps=fps, size=size, audio=wav, crf=20)
    return path


def decode_floor(path, threads):
    start = time.monotonic()
    subprocess.run(["ffmpeg", "-v", "error", "-threads", str(threads), "-i", str(path), "-f", "null", "-"], check=True)
    return time.monotonic() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    rows = []
    demo = ROOT / "resources" / "demo" / "demo_interviews.zip"
    clips = [bench_clip(size, args.seconds) for size in ((1280, 720), (640, 360))]
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["unzip", "-q", "-o", str(demo), "-d", tmp], check=False)
        clips += sorted(Path(tmp).glob("*.mp4"))
        for clip in clips:
            floor = decode_floor(clip, args.threads)
            start = time.monotonic()
            record = convert_video(clip, Path(tmp) / "out.mp4", Path(tmp) / "out.json", SETTINGS, args.threads)
            wall = time.monotonic() - start
            duration = record["source"]["duration"]
            rows.append({"clip": clip.name, "size": f"{record['source']['video']['width']}x"
                         f"{record['source']['video']['height']}", "duration_s": round(duration, 2),
                         "mode": record["mode"], "decode_floor_s": round(floor, 2), "convert_s": round(wall, 2),
                         "video_s_per_wall_s": round(duration / wall, 2), "ratio_to_floor": round(wall / floor, 1)})
    header = list(rows[0])
    print(" | ".join(header))
    for row in rows:
        print(" | ".join(str(row[h]) for h in header))
    out = ROOT / "results" / "benchmarks" / "convert_speed.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"threads": args.threads, "settings": SETTINGS, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
