#!/usr/bin/env python3
"""Rebuild the bundled demo input ``resources/demo/`` (byte-reproducible).

Writes
  resources/demo/demo_interviews.zip   two short clips + one non-video member
  resources/demo/truth.json            their ground truth (at the source fps)

Clips:
  ``interview one.mp4``  25 fps, astronaut (slow pan) -> hard cut -> coffee,
                         two espeak-ng voices alternating (en-us+m3 male,
                         en+f3 female British; note espeak-ng 1.51 ignores
                         the variant in 'en-gb+f3'); the astronaut's mouth
                         moves with the male voice (the female one is off
                         screen).
  ``Lecture-2.mp4``      30 fps, two astronaut faces side by side, slow zoom,
                         one voice, which the left face's mouth follows.

Usage: python tools/build_demo.py [--out DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import tempfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from media_clips import make_video, open_mouth  # noqa: E402
from media_shots import Shot  # noqa: E402
from media_speech import layout_turns, make_speech, speech_envelope  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ARCHIVE = "demo_interviews.zip"
ZIP_DATE = (2024, 1, 1, 0, 0, 0)
SIZE = (320, 180)
CRF = 28
MAX_OPENING = 0.12  # face heights the talking mouth opens at its voice's loudest moment

README = """\
Demo input for the video-analysis workflow.

Two short synthetic clips made from scikit-image's bundled photos and
espeak-ng speech, with known ground truth in ../truth.json (next to this zip):

  interview one.mp4  25 fps, hard cut at frame 175, two alternating voices
  Lecture-2.mp4      30 fps, two faces side by side, one voice

This file exists so the workflow can show that it skips non-video members.
Rebuild everything with: python tools/build_demo.py
"""

# (member name, fps, shots, utterances, first speech start, gap between turns, talker: the voice whose face talks)
# The talker's face (the leftmost face on screen) opens its mouth with that voice's loudness; the other voice has no
# face on screen (interview one: the off-screen interviewer; the coffee shot has no face).
CLIPS = [
    ("interview one.mp4", 25,
     [Shot("astronaut", 175, zoom=(1.15, 1.3), pan=(0.40, 0.30, 0.52, 0.28)),
      Shot("coffee", 175, zoom=(1.0, 1.1), pan=(0.46, 0.5, 0.54, 0.5))],
     [("en-us+m3", "Welcome to the show, we are glad you could join us."),
      ("en+f3", "Thank you for having me, it is a pleasure to be here."),
      ("en-us+m3", "Tell us about your journey into space."),
      ("en+f3", "It was amazing, the earth looked small and very blue.")],
     0.3, 0.5, "en-us+m3"),
    ("Lecture-2.mp4", 30,
     [Shot("astronaut_pair", 150, zoom=(1.0, 1.2), pan=(0.5, 0.35, 0.5, 0.3))],
     [("en+f3", "Today we talk about rockets."),
      ("en+f3", "They need a lot of fuel to fly.")],
     0.4, 0.6, "en+f3"),
]


def _shot_summary(shot: Shot, info: dict, faces: list) -> dict:
    """Shot truth with its parameters and the face boxes of its first/last frame."""
    first, last = info["start_frame"], info["end_frame"]
    return {
        **info,
        "zoom": list(shot.zoom),
        "pan": list(shot.pan),
        "face_count": len(faces[first]),
        "faces_first_frame": [f["bbox"] for f in faces[first]],
        "faces_last_frame": [f["bbox"] for f in faces[last]],
    }


def build_clip(tmp: Path, name: str, fps: int, shots, utterances, start: float, gap: float,
               talker: str) -> tuple[Path, dict]:
    """Render one clip with speech, the leftmost face's mouth moving with ``talker``'s voice; return its path and
    truth summary."""
    frames = sum(s.frames for s in shots)
    duration = frames / fps
    wav = tmp / (Path(name).stem + ".wav")
    turns = layout_turns(utterances, start=start, gap=gap)
    speech = make_speech(wav, turns, duration)
    envelope = speech_envelope(wav, speech["segments"], talker, frames, fps)

    def talk(index, frame, faces):
        if not faces:
            return frame
        return open_mouth(frame, min(faces, key=lambda f: f["bbox"][0])["bbox"], MAX_OPENING * envelope[index])

    video = tmp / name
    truth = make_video(video, shots, fps, SIZE, audio=wav, crf=CRF, frame_hook=talk)
    summary = {key: truth[key] for key in ("fps", "width", "height", "frame_count", "duration", "cuts")}
    summary["shots"] = [_shot_summary(s, info, truth["faces"]) for s, info in zip(shots, truth["shots"])]
    summary["speech"] = {"sample_rate": speech["sample_rate"], "segments": speech["segments"],
                         "speakers": sorted({seg["speaker"] for seg in speech["segments"]}), "talker": talker}
    return video, summary


def write_zip(path: Path, members: list[tuple[str, bytes]]) -> None:
    """Deflated zip with fixed timestamps/attributes, so it is byte-reproducible."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, payload in members:
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = 0o100644 << 16
            zf.writestr(info, payload, compresslevel=9)


def _dumps(data) -> str:
    """Indented JSON with innermost lists of numbers (boxes, zooms) on one line."""
    text = json.dumps(data, indent=1)
    def one_line(match: re.Match) -> str:
        return " ".join(match.group(0).split()).replace("[ ", "[").replace(" ]", "]")

    return re.sub(r"\[[^\[\]{}\"]*\]", one_line, text)


def build(out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    truth = {"archive": ARCHIVE, "generator": "tools/build_demo.py", "clips": {}}
    members = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, fps, shots, utterances, start, gap, talker in CLIPS:
            video, summary = build_clip(Path(tmp), name, fps, shots, utterances, start, gap, talker)
            summary["sha256"] = hashlib.sha256(video.read_bytes()).hexdigest()
            truth["clips"][name] = summary
            members.append((name, video.read_bytes()))
    members.append(("notes/README.txt", README.encode()))
    truth["video_members"] = [name for name, *_ in CLIPS]
    truth["non_video_members"] = ["notes/README.txt"]
    write_zip(out / ARCHIVE, members)
    (out / "truth.json").write_text(_dumps(truth) + "\n")
    return truth


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "resources" / "demo")
    args = parser.parse_args(argv)
    build(args.out)
    total = 0
    for path in sorted(args.out.iterdir()):
        size = path.stat().st_size
        total += size
        print(f"{size:>9,d}  {hashlib.sha256(path.read_bytes()).hexdigest()[:16]}  {path}")
    print(f"{total:>9,d}  total")
    return 0


if __name__ == "__main__":
    sys.exit(main())
