#!/usr/bin/env python3
"""Tiny *real* media with *known* ground truth, for tests, demos and benchmarks: the command line, and where it is.

Pictures come from the photos bundled with scikit-image (``astronaut`` is a real
human face), speech from ``espeak-ng``; encoding is done by ``ffmpeg``.  Only
numpy, scikit-image (imported lazily) and the standard library are used.

- ``media_shots.py``: :class:`Shot`, the canvases (photos with their face boxes) and the frames of a shot through a
  moving virtual camera, with exact face boxes;
- ``media_clips.py``: :func:`make_video` (shots cut or dissolved into an MP4 with its ground truth, optional variable
  frame timing, rotation, audio) and :func:`open_mouth` (a face that talks);
- ``media_speech.py``: :func:`make_speech` and friends (espeak-ng voices at exact times);
- ``mp4_rotation.py``: display rotation written into an MP4.

Everything is deterministic: the same arguments on the same machine give
byte-identical files (bit-exact ffmpeg flags, single-threaded x264, no
timestamps or metadata written).  Different ffmpeg/x264/espeak-ng versions may
of course give different bytes.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from media_clips import fps_fraction, make_video
from media_shots import IMAGES, Shot
from media_speech import make_speech


def _parse_shot(spec: str) -> Shot:
    """IMAGE:FRAMES[:ZOOM0:ZOOM1[:CX0:CY0:CX1:CY1]]"""
    parts = spec.split(":")
    shot = Shot(parts[0], int(parts[1]))
    if len(parts) >= 4:
        shot.zoom = (float(parts[2]), float(parts[3]))
    if len(parts) >= 8:
        shot.pan = tuple(float(p) for p in parts[4:8])
    return shot


def _parse_turn(spec: str) -> tuple[float, str, str]:
    """START:VOICE:TEXT"""
    start, voice, text = spec.split(":", 2)
    return float(start), voice, text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="Make tiny real test media with known ground truth (printed as JSON).",
        epilog="example: media_factory.py video clip.mp4 --shot astronaut:50:1:1.2 --shot coffee:50 "
               "--turn '0.2:en-us+m3:Hello there' --turn '1.8:en+f3:Good morning'")
    sub = parser.add_subparsers(dest="cmd", required=True)
    video = sub.add_parser("video", help="write an MP4 (optionally with speech)")
    video.add_argument("output")
    video.add_argument("--shot", action="append", required=True,
                       help="IMAGE:FRAMES[:ZOOM0:ZOOM1[:CX0:CY0:CX1:CY1]]; images: " + ", ".join(IMAGES))
    video.add_argument("--turn", action="append", default=[], help="START:VOICE:TEXT speech turn")
    video.add_argument("--fps", default="25")
    video.add_argument("--size", default="320x180", help="WIDTHxHEIGHT")
    video.add_argument("--crf", type=int, default=23)
    video.add_argument("--transition", default=None, help="dissolve:N")
    video.add_argument("--vfr", action="store_true")
    video.add_argument("--rotate", type=int, default=0)
    video.add_argument("--truth", help="write the truth JSON here instead of stdout")
    speech = sub.add_parser("speech", help="write a speech wav")
    speech.add_argument("output")
    speech.add_argument("--turn", action="append", required=True, help="START:VOICE:TEXT")
    speech.add_argument("--duration", type=float, required=True)
    speech.add_argument("--sample-rate", type=int, default=16000)
    args = parser.parse_args(argv)

    if args.cmd == "speech":
        truth = make_speech(args.output, [_parse_turn(t) for t in args.turn], args.duration, args.sample_rate)
        print(json.dumps(truth, indent=1))
        return 0

    shots = [_parse_shot(s) for s in args.shot]
    width, height = (int(v) for v in args.size.lower().split("x"))
    rate = fps_fraction(args.fps)
    duration = float(sum(s.frames for s in shots) / rate)
    with tempfile.TemporaryDirectory() as tmp:
        audio, speech_truth = None, None
        if args.turn:
            audio = Path(tmp) / "speech.wav"
            speech_truth = make_speech(audio, [_parse_turn(t) for t in args.turn], duration)
        truth = make_video(args.output, shots, rate, (width, height), audio=audio, crf=args.crf,
                           transition=args.transition, vfr=args.vfr, rotate=args.rotate)
    if speech_truth:
        truth["speech"] = speech_truth
    text = json.dumps(truth)
    if args.truth:
        Path(args.truth).write_text(text + "\n")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
