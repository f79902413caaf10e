"""The transcribe step: real-time factor, peak memory (1 and 10 min of speech) and word error rate, per model, CPU.

    .venvs/workflow/bin/python benchmarks/transcribe_speed.py [--minutes 1,10] [--models base,tiny.en] [--threads 2]

Speech: the real LibriVox reader of pocketsphinx 5.1.1's test data (five utterances, 24.7 s, with their reference
text; fetched once into resources/real_media/cache), 1 s of silence after each utterance, repeated to the length.
The step runs as its rule runs it (scripts/run_step.py transcribe in .venvs/transcribe, one job), with the utterances as
its diarization. WER: benchmarks/transcript_scores.py (normalised: case, punctuation, numbers).

Models: ``transcribe.model`` values: base and tiny.en (the pinned wheels) or a CTranslate2 model folder. The wall
time includes everything the job does: start, model check and load, audio decoding, VAD, language detection.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import common

ROOT = common.ROOT
PYTHON = common.VENV_DIR / "transcribe" / "bin" / "python"
CACHE = ROOT / "resources" / "real_media" / "cache"
RATE = 16000


def librivox():
    """[(int16 samples, reference text)] of the five utterances."""
    import numpy as np
    from real_media_sources import unpacked

    folder = unpacked("pocketsphinx", CACHE) / "pocketsphinx-5.1.1" / "test" / "data" / "librivox"
    utterances = []
    for path in sorted(folder.glob("*.wav")):
        with wave.open(str(path)) as handle:
            utterances.append((np.frombuffer(handle.readframes(handle.getnframes()), np.int16),
                               path.with_suffix(".txt").read_text().strip()))
    return utterances


def make_clip(folder, minutes):
    """A video of ``minutes`` of the utterances in turn; returns (video, truth turns with text)."""
    import numpy as np
    from media_clips import make_video
    from media_shots import Shot
    from media_speech import write_wav

    pieces, truth, t, utterances, i = [], [], 0.0, librivox(), 0
    while t < minutes * 60:
        samples, text = utterances[i % len(utterances)]
        truth.append({"start": round(t, 3), "end": round(t + len(samples) / RATE, 3), "speaker": "SPEAKER_00",
                      "text": text})
        pieces += [samples, np.zeros(RATE, np.int16)]
        t += len(samples) / RATE + 1
        i += 1
    wav, video = folder / f"read_{minutes}.wav", folder / f"read_{minutes}.mp4"
    write_wav(wav, np.concatenate(pieces), RATE)
    make_video(video, [Shot("blank", int(t * 25))], size=(160, 90), audio=wav)
    diarization = {"duration": t, "backend": "truth", "speakers": ["SPEAKER_00"],
                   "segments": [{k: s[k] for k in ("start", "end", "speaker")} for s in truth]}
    (folder / f"diarization_{minutes}.json").write_text(json.dumps(diarization))
    return video, truth, t


def run(model, video, minutes, folder, threads):
    from conftest import schema_defaults
    from vidflow.job import job_command

    empty = folder / "faces.json"
    empty.write_text(json.dumps({"fps": 25, "frames": []}))
    (folder / "speakers.json").write_text(json.dumps({"speakers": []}))
    name = Path(model).name
    out = {ext: folder / f"{name}_{minutes}.{ext}" for ext in ("json", "vtt", "srt")}
    inputs = {"video": video, "diarization": folder / f"diarization_{minutes}.json", "faces": empty,
              "speakers": folder / "speakers.json"}
    settings = schema_defaults("transcribe", model=model)
    words = folder / f"{name}_{minutes}.words.json"
    speech = job_command(PYTHON, "transcribe:run_speech", {k: inputs[k] for k in ("video", "diarization")},
                         {"words": words}, settings, threads=threads, log=folder / f"{name}_{minutes}.log")
    measured = common.run_measured(speech, cwd=ROOT)  # the recogniser: the step's time
    if measured["returncode"] == 0:
        assemble = job_command(PYTHON, "transcribe", {**inputs, "words": words}, out, settings)
        measured["returncode"] = common.run_measured(assemble, cwd=ROOT)["returncode"]
    if measured["returncode"] != 0:
        raise SystemExit((folder / f"{name}_{minutes}.log").read_text()[-2000:])
    return measured, json.loads(out["json"].read_text())


def wer(truth, transcript):
    """WER of the whole clip (benchmarks/transcript_scores.py in the transcribe env)."""
    words = " ".join(w["word"] for s in transcript["segments"] for w in s["words"])
    code = ("import json, sys; sys.path.insert(0, 'benchmarks'); from transcript_scores import word_error_rate; "
            "r, h = json.load(sys.stdin); print(word_error_rate(r, h, 'en')[0])")
    out = subprocess.run([str(PYTHON), "-c", code], input=json.dumps([" ".join(t["text"] for t in truth), words]),
                         capture_output=True, text=True, check=True, cwd=ROOT)
    return float(out.stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", default="1,10")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--models", default="base,tiny.en", help="transcribe.model values, comma-separated")
    parser.add_argument("--out", type=Path, default=common.RESULTS / "transcribe_speed.json")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "tests"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for minutes in [float(m) for m in args.minutes.split(",")]:
            video, truth, seconds = make_clip(folder, minutes)
            for model in args.models.split(","):
                measured, transcript = run(model, video, minutes, folder, args.threads)
                rows.append({"model": transcript["engine"].get("model"), "minutes": minutes,
                             "audio_s": round(seconds, 1), "wall_s": round(measured["wall_s"], 1),
                             "rtf": round(measured["wall_s"] / seconds, 3),
                             "peak_rss_mib": round(measured["peak_rss_mib"]), "words": transcript["word_count"],
                             "wer": round(wer(truth, transcript), 3)})
                print(json.dumps(rows[-1]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"threads": args.threads, "rows": rows}, indent=2) + "\n")
    print(common.format_table(rows, [(key, key) for key in rows[0]]))


if __name__ == "__main__":
    main()
