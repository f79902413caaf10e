#!/usr/bin/env python3
"""Quality on real recordings: run the real workflow on the dev set (tools/real_media.py), score it against the truth.

    .venvs/workflow/bin/python benchmarks/quality.py [--clips resources/real_media/clips] [--only NAME ...]
        [--backend segment_embed|pyannote] [--config diarization.min_silence=0.2 ...] [--cores 2] [--score-only]

The clips go into one input folder as loose videos (project ``_loose``); Snakemake builds, per clip,
diarization.json, scenes.json, faces.json and speakers.json in ``--work`` (default
results/benchmarks/quality/<backend>[_<config hash>]; reruns only redo what changed). Scores
(benchmarks/quality_scores.py) per clip:

  diarization, av  DER (pyannote.metrics, collar 0.25 s in total = +-0.125 s, and 0; overlap scored), missed
                   speech, false alarm and confusion (shares of the true speech, collar 0.25), JER, found - true
                   speakers
  av               per-frame speaking precision/recall (faces matched to truth faces by box centre), link
                   accuracy (truth faces whose every track got the right speaker; silent, voice-over and
                   real-video faces must get none), silent faces' false speaking share
  faces            face hit rate, id switches (track ids beyond one per scene), frames with more than one face
  cuts             cut precision/recall/F1 within +-2 frames (scenes.json)
  transcript       language found (and its probability), WER (normalised: case, punctuation, numbers, accents),
                   who-said-it on multi-speaker clips (share of words whose speaker maps, by the DER's optimal
                   mapping, to the true speaker of that moment), words on the no-speech clips (music, silence),
                   word times inside the audio and in order: benchmarks/transcript_scores.py, run in the
                   transcribe env

Prints one Markdown table per kind and writes quality.md and quality.json to the work folder.
"""

import argparse
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import quality_scores as scores  # noqa: E402

import common  # noqa: E402

CLIPS = common.ROOT / "resources" / "real_media" / "clips"
OUTPUTS = {"diarization": ("diarization.json",), "av": ("diarization.json", "faces.json", "speakers.json"),
           "faces": ("scenes.json", "faces.json"), "cuts": ("scenes.json",),
           "transcript": ("diarization.json", "transcript.json")}
DIARIZATION_COLUMNS = [("clip", "clip"), ("true_speakers", "speakers"), ("count_error", "count error"),
                       ("der@0.25", "DER c0.25"), ("der@0", "DER c0"), ("jer", "JER"), ("miss", "missed"),
                       ("false_alarm", "false alarm"), ("confusion", "confusion"), ("overlap_s", "overlap s"),
                       ("overlap_precision", "overlap P"), ("overlap_recall", "overlap R")]
COLUMNS = {
    "diarization": DIARIZATION_COLUMNS,
    "av": DIARIZATION_COLUMNS[:4] + [("speaking_precision", "speaking P"), ("speaking_recall", "speaking R"),
                                     ("link_accuracy", "link accuracy"),
                                     ("silent_false_speaking", "silent face speaking")],
    "faces": [("clip", "clip"), ("frames", "frames"), ("hit_rate", "face hit rate"), ("id_switches", "id switches"),
              ("extra_face_frames", "frames with 2+ faces")],
    "cuts": [("clip", "clip"), ("truth_cuts", "true cuts"), ("found_cuts", "found cuts"),
             ("cut_precision", "precision"), ("cut_recall", "recall"), ("cut_f1", "F1 (+-2 frames)")],
    "transcript": [("clip", "clip"), ("language_true", "language"), ("language_found", "found"),
                   ("language_probability", "p"), ("ref_words", "words"), ("hyp_words", "found words"),
                   ("wer", "WER"), ("who_said_it", "who-said-it"), ("der@0.25", "DER c0.25"),
                   ("times_ok", "times ok")],
}
TITLES = {"diarization": "Diarization clips", "av": "AV clips (speaker to face)", "faces": "Real face clips",
          "cuts": "Real cut clip", "transcript": "Transcripts (real speech with its text; music and silence)"}


def parse_overrides(pairs):
    """["diarization.min_silence=0.2", ...] -> nested dict (values read as YAML: numbers, booleans, lists)."""
    import yaml  # noqa: PLC0415

    config = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--config needs key=value, not {pair!r}")
        *parents, leaf = key.split(".")
        node = config
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(value)
    return config


def load_clips(folder, only=None):
    """{name: truth} of the clips in ``folder`` (each <name>.json next to <name>.mp4)."""
    clips = {}
    for path in sorted(Path(folder).glob("*.json")):
        if (only and path.stem not in only) or not path.with_suffix(".mp4").exists():
            continue
        clips[path.stem] = json.loads(path.read_text())
    missing = sorted(set(only or ()) - set(clips))
    if missing:
        raise SystemExit(f"ERROR: {folder}: no clip {', '.join(missing)} (build it with tools/real_media.py)")
    return clips


def score_clip(truth, results):
    """The scores of one clip from its workflow outputs in ``results`` (raises FileNotFoundError if missing)."""
    kind, read = truth["kind"], lambda name: json.loads((results / name).read_text())  # noqa: E731
    row = {"clip": truth["name"], "kind": kind}
    if kind in ("diarization", "av"):
        row.update(scores.diarization_scores(truth["segments"], read("diarization.json")["segments"],
                                             truth["duration"]))
    if kind == "av":
        links = {t["track_id"]: t["speaker"] for t in read("speakers.json")["tracks"]}
        row.update(scores.av_scores(truth, read("faces.json")["frames"], links, row["mapping"]))
    if kind == "faces":
        faces = read("faces.json")
        row.update(scores.face_scores(faces["frames"], faces["frame_count"], read("scenes.json")["scenes"]))
        row["frames"] = faces["frame_count"]
    if kind == "transcript":
        mapping = {}
        if truth["segments"]:
            found = read("diarization.json")["segments"]
            diarization = scores.diarization_scores(truth["segments"], found, truth["duration"])
            row["der@0.25"], mapping = diarization["der@0.25"], diarization["mapping"]
        row.update(transcript_scores(truth, read("transcript.json"), mapping))
    if kind == "cuts":
        found = [s["start_frame"] for s in read("scenes.json")["scenes"][1:]]
        row.update(scores.cut_scores(truth["cuts"], found), truth_cuts=truth["cuts"])
    return row


def transcript_scores(truth, transcript, mapping):
    """benchmarks/transcript_scores.py's scores, run in the transcribe env (jiwer, num2words)."""
    job = json.dumps({"truth": truth, "transcript": transcript, "mapping": mapping})
    proc = subprocess.run([str(common.VENV_DIR / "transcribe" / "bin" / "python"),
                           str(Path(__file__).with_name("transcript_scores.py"))], input=job, capture_output=True,
                          text=True, check=True)
    return json.loads(proc.stdout)


def cell(value):
    return " ".join(map(str, value)) if isinstance(value, list) else value


def tables(rows, title):
    out = [f"## {title}", ""]
    for kind, columns in COLUMNS.items():
        chosen = [{k: cell(v) for k, v in r.items()} for r in rows if r["kind"] == kind]
        if chosen:
            out += [common.format_table(chosen, columns, TITLES[kind]), ""]
    failed = [r for r in rows if r.get("error")]
    out += [f"- {r['clip']}: {r['error']}" for r in failed]
    return "\n".join(out).rstrip() + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=Path, default=CLIPS, help="the dev set's clips folder")
    parser.add_argument("--only", nargs="+", help="clip names (default: every clip in --clips)")
    parser.add_argument("--backend", default="segment_embed", help="diarization backend (diarization.backend)")
    parser.add_argument("--config", nargs="+", default=[], metavar="KEY=VALUE",
                        help="config overrides passed to Snakemake, dotted keys: tracking.engine=yunet")
    parser.add_argument("--work", type=Path, help="work folder (default results/benchmarks/quality/<label>)")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--score-only", action="store_true", help="score the outputs already in --work")
    args = parser.parse_args(argv)
    overrides = parse_overrides([f"diarization.backend={args.backend}", *args.config])
    label = args.backend + (f"_{hashlib.sha256(' '.join(sorted(args.config)).encode()).hexdigest()[:8]}"
                            if args.config else "")
    work = args.work or common.RESULTS / "quality" / label
    clips = load_clips(args.clips, args.only)
    if not clips:
        raise SystemExit(f"ERROR: {args.clips}: no clips (build them: python tools/real_media.py)")
    run = None
    if not args.score_only:
        inputs = common.link_input(work / "input", {f"{n}.mp4": args.clips / f"{n}.mp4" for n in clips})
        overlay = work / "config_overrides.json"
        overlay.write_text(json.dumps(overrides, indent=1, sort_keys=True) + "\n")
        targets = [f"results/_loose/{n}/{out}" for n, t in clips.items() for out in OUTPUTS[t["kind"]]]
        run = common.run_workflow(work / "run", inputs, "--keep-going", "--rerun-incomplete", check=False,
                                  cores=args.cores, configfiles=[overlay], targets=targets)
        print(f"workflow: {run['wall_s']:.0f} s, exit {run['returncode']}", file=sys.stderr, flush=True)
    rows = []
    for name, truth in clips.items():
        try:
            rows.append(score_clip(truth, work / "run" / "results" / "_loose" / name))
        except FileNotFoundError as error:
            rows.append({"clip": name, "kind": truth["kind"], "error": f"no output: {Path(error.filename).name}"})
    title = f"Quality on real recordings (backend {args.backend}" + (
        f"; {' '.join(args.config)}" if args.config else "") + ")"
    text = tables(rows, title)
    print(text)
    (work / "quality.md").write_text(text)
    payload = {"backend": args.backend, "config": args.config, "clips": rows, "machine": common.machine(),
               "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "workflow_wall_s": round(run["wall_s"], 1) if run else None}
    (work / "quality.json").write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")
    return 0 if run is None or run["returncode"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
