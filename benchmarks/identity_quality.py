#!/usr/bin/env python3
"""Score identity on the real project of tools/identity_clips.py: purity and coverage of the persons.

    python tools/identity_clips.py --clips resources/real_media/clips --out DIR
    (zip DIR/identity_real/*.mp4 into INPUT/identity_real.zip and run the workflow on INPUT up to
     results/identity_real/persons.json)
    .venvs/workflow/bin/python benchmarks/identity_quality.py RESULTS/identity_real DIR/identity_real_truth.json

Items are the face tracks (the truth person of the shot a track starts in; in the av clips, the face whose box is
nearest) and the diarization speakers (the truth voice they overlap most, and the person whose face that voice
drives, in any clip of the project). Purity: share of items whose person holds mostly their truth identity;
coverage: share of items in their identity's largest person (unassigned items count against coverage). Prints one
row per item kind.
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from steps.identity.cluster import purity_coverage  # noqa: E402


def face_truth(truth_video, track, first_box):
    shots = [s for s in truth_video["faces"] if s["start_frame"] <= track["first_frame"] <= s["end_frame"]]
    if any(s["bbox"] for s in shots):
        return min(shots, key=lambda s: abs(s["bbox"][0] - first_box[0]))["person"]
    return shots[0]["person"] if shots else None


def first_box(faces_path, track):
    header = json.loads(Path(faces_path).read_text())
    frame = header["frames"][track["first_frame"]]
    return next(f["bbox"] for f in frame["faces"] if f["track_id"] == track["track_id"])


def voice_truth(truth_video, turns, persons_of_voices):
    overlap = {}
    for seg in truth_video.get("segments", []):
        for start, end in turns:
            overlap[seg["voice"]] = overlap.get(seg["voice"], 0) + max(0.0, min(end, seg["end"]) - max(start,
                                                                                                      seg["start"]))
    voice = max(overlap, key=overlap.get) if overlap else None
    return persons_of_voices.get(voice, voice)


def score(results: Path, truth: dict) -> dict:
    persons = json.loads((results / "persons.json").read_text())
    items = {"faces": ([], []), "voices": ([], [])}
    # A voice that drives a face in one clip is that face's person in every clip of the project.
    persons_of_voices = {voice: person for video in truth.values() for voice, person in video["voices"].items()}
    for video in persons["videos"]:
        identity = json.loads((results / video / "identity.json").read_text())
        mapping = persons["mapping"][video]
        for track in identity["tracks"]:
            items["faces"][0].append(mapping["tracks"].get(str(track["track_id"])))
            items["faces"][1].append(face_truth(truth[video], track, first_box(results / video / "faces.json",
                                                                                track)))
        for speaker in identity["speakers"]:
            items["voices"][0].append(mapping["speakers"].get(speaker["speaker"]))
            items["voices"][1].append(voice_truth(truth[video], speaker["turns"], persons_of_voices))
    rows = {}
    for kind, (labels, people) in {**items, "all": (items["faces"][0] + items["voices"][0],
                                                      items["faces"][1] + items["voices"][1])}.items():
        purity, coverage = purity_coverage(labels, people)
        rows[kind] = {"items": len(labels), "persons": len({lab for lab in labels if lab}),
                      "true": len(set(people)), "purity": round(purity, 3), "coverage": round(coverage, 3)}
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path)
    parser.add_argument("truth", type=Path)
    args = parser.parse_args(argv)
    for kind, row in score(args.results, json.loads(args.truth.read_text())).items():
        print(f"{kind:7s} " + " ".join(f"{k}={v}" for k, v in row.items()))


if __name__ == "__main__":
    main()
