"""The runs the reliability tests share (a pytest plugin: ``pytest_plugins = ["odd_inputs_run"]``, so each session
fixture is made once for all of them).

``good_clip``: a real face saying one sentence. ``odd_run``: one real run that puts the good clip beside every kind
of bad or unusual input (tests/test_odd_inputs.py). It is also the finished run the rerun test dry-runs against
(tests/test_reruns.py), and the uninterrupted reference of the interruption tests (tests/test_interruption.py).

PYTEST_DONT_REWRITE: the tests import its constants before pytest loads it as a plugin (it asserts nothing).
"""

import json
import shutil
import subprocess
import zipfile

import pytest
from media_clips import make_video
from media_shots import Shot
from media_speech import make_speech
from mp4_rotation import set_mp4_rotation

from conftest import make_testsrc, require_binaries, run_snakemake

GOOD_SHOT = Shot("astronaut", 60, zoom=(1.15, 1.3), pan=(0.4, 0.3, 0.52, 0.28))
GOOD_SPEECH = [(0.3, "en-us+m3", "Hello there, nice to see you.")]
WEIRD_NAME = "-screen rec 'take \"2\"' \u00fcn\u00ef.mp4"  # leading dash, spaces, both quotes, unicode
# bad input -> the one warning/error line it must give (a fragment of it), and its reason in the manifest
BAD = {
    "empty.mp4": ("skipping empty.mp4: empty file (0 bytes)", "empty file (0 bytes)"),
    "truncated.mp4": ("skipping truncated.mp4: not a readable media file (moov atom not found",
                      "not a readable media file (moov atom not found; Invalid data found when processing input)"),
    "notes.mp4": ("skipping notes.mp4: not a readable media file (it is a text file)",
                  "not a readable media file (it is a text file)"),
    "audio only.mp4": ("skipping audio only.mp4: no video stream", "no video stream"),
    "nested.zip": ("nested.zip: skipping inner.zip: nested archive (not extracted)", None),
    "many.zip": ("many.zip: no video found (5000 member(s) skipped: 5000 not a video (extension))", None),
}
ODD = ("good", "one_frame", "uhd60", "portrait", "screen_rec_take_2_uni")


def ffmpeg(*args):
    subprocess.run(["ffmpeg", "-v", "error", "-y", *map(str, args)], check=True)


@pytest.fixture(scope="session")
def good_clip(tmp_path_factory):
    """2.4 s of the astronaut (one face) saying one sentence; already 25 fps H.264/AAC (remuxed)."""
    require_binaries("ffmpeg", "espeak-ng")
    folder = tmp_path_factory.mktemp("good_clip")
    speech = make_speech(folder / "speech.wav", GOOD_SPEECH, 2.4)
    truth = make_video(folder / "good.mp4", [GOOD_SHOT], audio=folder / "speech.wav")
    return folder / "good.mp4", truth, speech


def make_inputs(folder, good, scratch):
    """The good clip, the bad inputs of BAD and the unusual but valid videos of ODD; returns truths."""
    shutil.copy(good, folder / "good.mp4")
    (folder / "empty.mp4").write_bytes(b"")
    whole = make_testsrc(scratch / "whole.mp4", seconds=2)  # moov atom at the end: cut it off
    (folder / "truncated.mp4").write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    (folder / "notes.mp4").write_text("Meeting notes, not a video.\n" * 20)
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-c:a", "aac", folder / "audio only.mp4")
    with zipfile.ZipFile(scratch / "inner.zip", "w") as zf:
        zf.write(good, "clip.mp4")
    with zipfile.ZipFile(folder / "nested.zip", "w") as zf:
        zf.write(scratch / "inner.zip", "inner.zip")
    with zipfile.ZipFile(folder / "many.zip", "w") as zf:
        for i in range(5000):
            zf.writestr(f"notes/{i:04d}.txt", f"{i}\n")
    truths = {"one_frame": make_video(folder / "one_frame.mp4", [Shot("astronaut", 1, zoom=(1.2, 1.2),
                                                                               pan=(0.45, 0.3, 0.45, 0.3))])}
    make_testsrc(folder / "uhd60.mp4", seconds=1, fps=60, size="3840x2160", extra=["-crf", "35"])
    # a phone video: landscape pixels holding a sideways picture, and a display matrix that turns it upright
    truths["portrait"] = make_video(scratch / "upright.mp4", [Shot("astronaut", 30, zoom=(1.0, 1.1))],
                                    size=(180, 320))
    ffmpeg("-i", scratch / "upright.mp4", "-vf", "transpose=2", "-c:v", "libx264", "-preset", "ultrafast",
           folder / "portrait.mp4")
    set_mp4_rotation(folder / "portrait.mp4", 90)
    # a screen recording: variable frame timing (mean 30 fps), no faces, no audio
    truths["screen_rec_take_2_uni"] = make_video(folder / WEIRD_NAME, [Shot("blank", 45, zoom=(1.0, 1.3))],
                                                 fps=30, vfr=True)
    return truths


@pytest.fixture(scope="session")
def odd_run(tmp_path_factory, good_clip):
    work = tmp_path_factory.mktemp("odd_run")
    inputs = work / "input"
    inputs.mkdir()
    truths = make_inputs(inputs, good_clip[0], tmp_path_factory.mktemp("odd_scratch"))
    before = {p.name: p.read_bytes() for p in inputs.iterdir()}
    proc = run_snakemake(work, "--keep-going", config={"input_dir": str(inputs)}, check=False)
    return work, proc, truths, before


def result(work, video, name, project="_loose"):
    return json.loads((work / "results" / project / video / name).read_text())
