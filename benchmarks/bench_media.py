"""The benchmarks' media: a 10 s unit per frame size rendered once with the media factory (real astronaut faces, one
and two faces, a hard cut, two espeak-ng voices taking turns) at 30 fps, so the convert step really re-encodes to 25
fps; longer clips are the unit repeated by FFmpeg's concat demuxer without re-encoding (see benchmarks/common.py).
Cached under ``--work`` by its parameters. Imported through common (which puts scripts/ and tools/ on the path)."""

import json
import os
import shlex
import subprocess
import tempfile
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[1] / "results" / "benchmarks"
WORK = RESULTS / "work"
SOURCE_FPS = 30  # benchmark sources are 30 fps: step 2 must re-encode them to 25 fps (its worst case)
UNIT_SECONDS = 10
MEDIA_VERSION = 1  # bump when the unit's content changes (it is part of the cache key)
VOICES = ("en-us+m3", "en+f3")
LINES = ("We recorded this interview in the studio last week.", "Thank you, it is a pleasure to be here.",
         "Tell us about the first flight.", "It was loud, and then very quiet.")


def parse_size(text):
    """'640x360' -> (640, 360)."""
    width, _, height = text.lower().partition("x")
    return int(width), int(height)


def media_dir(work=WORK):
    path = Path(work) / "media"
    path.mkdir(parents=True, exist_ok=True)
    return path


def unit_clip(size, work=WORK):
    """The cached 10 s unit at ``size`` (width, height): two shots of real faces and a cut, with speech."""
    # numpy/scikit-image: only when media is made
    from media_clips import make_video  # noqa: PLC0415
    from media_shots import Shot  # noqa: PLC0415
    from media_speech import layout_turns, make_speech  # noqa: PLC0415

    width, height = size
    path = media_dir(work) / f"unit_v{MEDIA_VERSION}_{width}x{height}_{SOURCE_FPS}fps.mp4"
    if path.exists():
        return path
    half = UNIT_SECONDS * SOURCE_FPS // 2
    shots = [Shot("astronaut", half, zoom=(1.0, 1.4), pan=(0.45, 0.4, 0.5, 0.35)),
             Shot("astronaut_pair", half, zoom=(1.0, 1.2))]
    turns = layout_turns([(VOICES[i % 2], LINES[i]) for i in range(len(LINES))], start=0.3, gap=0.4)
    turns = [t for t in turns if t[0] < UNIT_SECONDS - 3]
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        make_speech(wav, turns, float(UNIT_SECONDS))
        partial = Path(tmp) / path.name
        make_video(partial, shots, fps=SOURCE_FPS, size=size, audio=wav, crf=20)
        os.replace(partial, path)
    return path


def clip(seconds, size, work=WORK):
    """A cached clip of ``seconds`` (a multiple of 10) at ``size``: the unit repeated, streams copied."""
    if seconds % UNIT_SECONDS:
        raise ValueError(f"clip length must be a multiple of {UNIT_SECONDS} s, not {seconds}")
    unit = unit_clip(size, work)
    repeats = seconds // UNIT_SECONDS
    if repeats == 1:
        return unit
    path = unit.with_name(f"{unit.stem}_x{repeats}.mp4")
    if path.exists():
        return path
    with tempfile.TemporaryDirectory() as tmp:
        listing = Path(tmp) / "list.txt"
        listing.write_text("".join(f"file {shlex.quote(str(unit))}\n" for _ in range(repeats)))
        partial = Path(tmp) / path.name
        subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-f", "concat", "-safe", "0", "-i", str(listing),
                        "-c", "copy", "-fflags", "+bitexact", "-map_metadata", "-1", str(partial)], check=True)
        os.replace(partial, path)
    return path


def variant(source, index, work=WORK):
    """A cached copy of ``source`` re-encoded (x264 ultrafast, CRF 18 + ``index``): the same content in
    different pixels, so videos of one project get different SHA-256s (and archive folders)."""
    path = media_dir(work) / f"{Path(source).stem}_variant{index}.mp4"
    if path.exists():
        return path
    with tempfile.TemporaryDirectory() as tmp:
        partial = Path(tmp) / path.name
        subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", str(source), "-c:v", "libx264", "-preset",
                        "ultrafast", "-crf", str(18 + index), "-pix_fmt", "yuv420p", "-c:a", "copy",
                        "-map_metadata", "-1", str(partial)], check=True)
        os.replace(partial, path)
    return path


def clip_25fps(seconds, size, work=WORK):
    """``clip(seconds, size)`` at 25 fps (as step 2 writes it: fps filter, x264), and its scenes.json.

    For benchmarks of one step on its real input without running the workflow. The unit's hard cuts
    fall every 5 s, so the scenes are known: 125 frames each (the last one may be shorter).
    """
    source = clip(seconds, size, work)
    path = source.with_name(f"{source.stem}_25fps.mp4")
    scenes = path.with_suffix(".scenes.json")
    if not path.exists():
        with tempfile.TemporaryDirectory() as tmp:
            partial = Path(tmp) / path.name
            subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", str(source), "-vf", "fps=25,format=yuv420p",
                            "-c:v", "libx264", "-preset", "fast", "-crf", "20", "-c:a", "aac", "-b:a", "128k",
                            str(partial)], check=True)
            os.replace(partial, path)
    from vidflow.media import ffprobe, summarize  # noqa: PLC0415

    frames = summarize(ffprobe(path))["video"]["nb_frames"]  # 30 -> 25 fps: a 60 s clip has 1502 frames
    scene = UNIT_SECONDS * 25 // 2
    scenes.write_text(json.dumps({"fps": 25, "frame_count": frames, "scenes": [
        {"start_frame": a, "end_frame": min(a + scene, frames) - 1} for a in range(0, frames, scene)]}))
    return path, scenes


def tiny_clips(count, work=WORK, size=(160, 90), frames=25):
    """``count`` distinct 1 s clips (a folder of loose videos) for the rerun benchmark, cached."""
    from media_clips import make_video  # noqa: PLC0415
    from media_shots import Shot  # noqa: PLC0415
    from media_speech import make_silence  # noqa: PLC0415

    folder = media_dir(work) / f"tiny_v{MEDIA_VERSION}_{count}x{size[0]}x{size[1]}_{frames}f_silence"
    if (folder / ".complete").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    images = ("astronaut", "astronaut_pair", "camera", "coffee")
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "silence.wav"
        make_silence(wav, frames / 25)
        for i in range(count):
            # every clip differs (pan/zoom), so every archive (keyed by the video's SHA-256) is its own
            shot = Shot(images[i % len(images)], frames, zoom=(1.0 + 0.01 * i, 1.2),
                        pan=(0.4 + 0.002 * i, 0.5, 0.5, 0.5))
            make_video(folder / f"video_{i:03d}.mp4", [shot], fps=25, size=size, audio=wav, crf=30)
    (folder / ".complete").write_text("")
    return folder


