#!/usr/bin/env python3
"""Calibrate ``identity.voice_distance``: the identity step's voice embedding of every true speaker of the dev set.

    .venvs/identity/bin/python benchmarks/voice_calibration.py [--clips resources/real_media/clips] [--json OUT]

Each clip's truth turns (its RTTM-like JSON) stand in for the diarization, so the numbers measure the voice model,
not the diarization: per (clip, true speaker) the embedding of steps.identity.voices (its speech where nobody else
speaks, longest turns first, up to 60 s; at least 2 s). Prints the cosine similarity of the same voice in
different clips and of different voices, then the clusters that steps.identity.cluster makes across all clips
(cannot-link within a clip, as the persons step) at a range of thresholds, with purity and coverage.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from steps.identity.cluster import cluster, distances, purity_coverage  # noqa: E402
from steps.identity.voices import VoiceEmbedder, embed_speakers, load_audio  # noqa: E402


class Settings:
    min_voice_seconds = 2.0
    max_voice_seconds = 60.0


def speaker_embeddings(clips: Path) -> list:
    """``[{"clip", "voice", "embedding"}]`` for every true speaker with enough speech of every clip with truth."""
    embedder, items = VoiceEmbedder(), []
    for truth_path in sorted(clips.glob("*.json")):
        truth = json.loads(truth_path.read_text())
        segments = truth.get("segments") or []
        video = truth_path.with_suffix(".mp4")
        if not segments or not video.exists():
            continue
        voices = embed_speakers(load_audio(video), segments, Settings, embedder)
        for voice, entry in voices.items():
            if entry["embedding"] is not None:
                items.append({"clip": truth_path.stem, "voice": voice, "embedding": entry["embedding"]})
    return items


def similarity_ranges(items: list) -> dict:
    similarity = 1.0 - distances(np.array([i["embedding"] for i in items]), "cosine")
    same, different = [], []
    for a in range(len(items)):
        for b in range(a + 1, len(items)):
            if items[a]["clip"] == items[b]["clip"]:
                if items[a]["voice"] != items[b]["voice"]:
                    different.append(similarity[a, b])
            elif items[a]["voice"] == items[b]["voice"]:
                same.append(similarity[a, b])
            else:
                different.append(similarity[a, b])

    def summary(values):
        return {"pairs": len(values), "min": round(float(np.min(values)), 3),
                "median": round(float(np.median(values)), 3), "max": round(float(np.max(values)), 3)}

    return {"same voice, other clip": summary(same), "different voices": summary(different),
            "equal error rate": round(equal_error_rate(np.array(same), np.array(different)), 3)}


def equal_error_rate(same: np.ndarray, different: np.ndarray) -> float:
    """The error rate where as many same-voice pairs fall under a similarity threshold as different-voice pairs
    reach it (the threshold running over every pair's similarity)."""
    best = (2.0, 1.0)
    for threshold in np.unique(np.concatenate([same, different])):
        miss, false = float(np.mean(same < threshold)), float(np.mean(different >= threshold))
        best = min(best, (abs(miss - false), (miss + false) / 2))
    return best[1]


def sweep(items: list, thresholds) -> list:
    vectors = [i["embedding"] for i in items]
    truth = [i["voice"] for i in items]
    conflicts = [(a, b) for a in range(len(items)) for b in range(a + 1, len(items))
                 if items[a]["clip"] == items[b]["clip"]]
    rows = []
    for threshold in thresholds:
        labels = cluster(vectors, threshold, "cosine", conflicts)
        purity, coverage = purity_coverage(labels, truth)
        rows.append({"voice_distance": threshold, "clusters": len(set(labels)), "purity": round(purity, 3),
                     "coverage": round(coverage, 3)})
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=Path, default=ROOT / "resources" / "real_media" / "clips")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    items = speaker_embeddings(args.clips)
    voices = sorted({i["voice"] for i in items})
    print(f"{len(items)} speaker-clips of {len(voices)} voices")
    ranges = similarity_ranges(items)
    for name, summary in ranges.items():
        print(f"{name}: {summary}")
    rows = sweep(items, [round(t, 2) for t in np.arange(0.10, 0.61, 0.05)])
    print("| voice_distance | clusters | purity | coverage |\n|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['voice_distance']:.2f} | {row['clusters']} ({len(voices)} true) | {row['purity']:.3f} "
              f"| {row['coverage']:.3f} |")
    if args.json:
        args.json.write_text(json.dumps({"items": items, "ranges": ranges, "sweep": rows}, indent=1))


if __name__ == "__main__":
    main()
