#!/usr/bin/env python3
"""Benchmark step 4 (diarization): real-time factor and peak memory on 1, 10 and 60 min of speech.

The speech is two espeak-ng voices (en-us+m3, en+f3) taking turns with pauses (tools/media_factory),
five minutes of varied sentences rendered once and looped to the wanted length (cheap to make, the
truth is known), muxed under a tiny still video. Each run is the real script in its env on the project config's
diarization settings (a fresh process: imports and model loading included); peak RSS is the process's maximum
resident set. DER against the truth is printed too (benchmarks/quality_scores.py: pyannote.metrics, a collar of
0.25 s in total). The pyannote backend runs too (1 min only) when its env
exists, with a pipeline of pyannote's classes and random weights (speed only: its output is noise).
Prints a table and writes results/benchmarks/diarization_speed.json. Run with the driver venv:

    .venvs/workflow/bin/python benchmarks/diarization_speed.py [--minutes 1 10 60] [--no-pyannote]
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402, I001 - first: it puts scripts/ and tools/ on the path
from media_speech import layout_turns, make_speech, write_wav  # noqa: E402
from quality_scores import diarization_scores  # noqa: E402
from vidflow.job import job_command  # noqa: E402  (common puts scripts/ on the path)

ROOT = common.ROOT
VENVS = common.VENV_DIR
SUBJECTS = ["The committee", "My neighbour", "A young doctor", "Our director", "The old farmer", "Every student",
            "The reporter"]
VERBS = ["discussed", "remembered", "described", "questioned", "photographed"]
OBJECTS = ["the new bridge", "a difficult winter", "the election results", "her first novel", "the river",
           "a strange letter"]
ENDINGS = ["last Tuesday.", "in the evening.", "after the storm.", "for many years.", "without a word."]
BASE_MINUTES = 5


def sentence(i):
    """Deterministic, varied sentences: no exact repeats inside the base recording."""
    return (f"{SUBJECTS[i % 7]} {VERBS[(i // 7) % 5]} {OBJECTS[(i // 3) % 6]} {ENDINGS[(i // 11) % 5]}")


def speech_base():
    """``BASE_MINUTES`` of two voices taking turns (each says every kind of line): (int16 at 16 kHz, truth)."""
    seconds = 60 * BASE_MINUTES
    turns = layout_turns([(("en-us+m3", "en+f3")[(i // 1 + i // 5) % 2], sentence(i)) for i in range(200)],
                         start=0.3, gap=0.6)
    turns = [t for t in turns if t[0] < seconds - 5]
    with tempfile.TemporaryDirectory() as tmp:
        truth = make_speech(Path(tmp) / "base.wav", turns, float(seconds))
        import wave

        with wave.open(str(Path(tmp) / "base.wav")) as w:
            samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return samples, truth["segments"]


def bench_media(minutes):
    """A cached clip of ``minutes`` of looped speech under a 64x64 still video, and its truth."""
    media = common.media_dir()
    path, truth_path = media / f"speech_{minutes}min.mp4", media / f"speech_{minutes}min.truth.json"
    if path.exists() and truth_path.exists():
        return path, json.loads(truth_path.read_text())
    base, segments = speech_base()
    loops = -(-minutes // BASE_MINUTES)
    samples = np.tile(base, loops)[:minutes * 60 * 16000]
    truth = [{"start": round(s["start"] + 60 * BASE_MINUTES * k, 3), "end": round(s["end"] + 60 * BASE_MINUTES * k, 3),
              "speaker": s["speaker"]} for k in range(loops) for s in segments]
    truth = [s for s in truth if s["end"] <= minutes * 60]
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        write_wav(wav, samples, 16000)
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "color=c=gray:size=64x64:rate=25",
                        "-i", str(wav), "-map", "0:v", "-map", "1:a", "-shortest", "-c:v", "libx264", "-preset",
                        "ultrafast", "-c:a", "aac", "-b:a", "64k", str(path)], check=True)
    truth_path.write_text(json.dumps(truth))
    return path, truth


def run_measured(cmd):
    """(wall seconds, peak RSS MiB) of one run of the script (its children included)."""
    run = common.run_measured(cmd)
    if run["returncode"] != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed: {run['output'][-2000:]}")
    return run["wall_s"], run["peak_rss_mib"]


def diarize_cmd(env, video, out, settings, threads=1):
    return job_command(VENVS / env / "bin" / "python", "diarization", {"video": video},
                       {"json": out / "diarization.json", "rttm": out / "diarization.rttm"}, settings,
                       threads=threads, log=out / "log.txt")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=int, nargs="+", default=[1, 10, 60])
    parser.add_argument("--no-pyannote", action="store_true")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        section = common.read_config()["diarization"]
        runs = [("segment_embed", "diarization", m, {**section, "backend": "segment_embed"}, section["threads"])
                for m in args.minutes]
        pyannote_python = VENVS / "diarization_pyannote" / "bin" / "python"
        if not args.no_pyannote and pyannote_python.exists():
            code = ("import sys; sys.path.insert(0, sys.argv[1]); from steps.diarization.pyannote_backend import "
                    "build_random_pipeline; build_random_pipeline(sys.argv[2])")
            subprocess.run([str(pyannote_python), "-c", code, str(ROOT / "scripts"), str(tmp / "pipeline")],
                           check=True)
            pyannote = {**section["pyannote"], "pipeline": str(tmp / "pipeline")}
            runs.append(("pyannote (random weights)", "diarization_pyannote", min(args.minutes),
                         {**section, "backend": "pyannote", "pyannote": pyannote}, 2))
        for name, env, minutes, settings, threads in runs:
            video, truth = bench_media(minutes)
            out = tmp / f"{env}_{minutes}"
            out.mkdir()
            wall, rss = run_measured(diarize_cmd(env, video, out, settings, threads))
            record = json.loads((out / "diarization.json").read_text())
            der = diarization_scores(truth, record["segments"], 60 * minutes)["der@0.25"]
            log_tail = [line.split(": ", 1)[-1] for line in (out / "log.txt").read_text().splitlines()
                        if " INFO " in line][-4:-1]
            rows.append({"backend": name, "audio_min": minutes, "wall_s": round(wall, 1),
                         "real_time_factor": round(wall / (60 * minutes), 4), "peak_rss_mib": round(rss),
                         "speakers": len(record["speakers"]), "der": der, "steps": log_tail})
            print(f"{name} {minutes} min: {wall:.1f} s, RTF {wall / (60 * minutes):.4f}, {rss:.0f} MiB, "
                  f"{len(record['speakers'])} speakers, DER {der:.3f}", flush=True)
    print(common.format_table(rows, [("backend", "backend"), ("audio_min", "audio min"), ("wall_s", "wall s"),
                                     ("real_time_factor", "real-time factor"), ("peak_rss_mib", "peak RSS MiB"),
                                     ("speakers", "speakers"), ("der", "DER")], "Diarization (fresh process each)"))
    path = common.write_result("diarization_speed", {"rows": rows})
    print(f"wrote {path}")

if __name__ == "__main__":
    main()
