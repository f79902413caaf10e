"""link_speakers end to end: the real workflow links the talking voice to the moving face (espeak voice, photo
whose mouth opens with the voice's syllables)."""

import json
import math

import numpy as np
import pytest
from test_link_speakers import SETTINGS, validate
from test_reduce import reduce_audio, reduce_tracking  # the old full load of step 6 (the reference)

from conftest import ROOT, require_binaries, run_snakemake
from steps.link_speakers import (
    active_speakers,
    link_speakers_to_tracks,
    read_loudness,
)
from steps.reduce import reduce_audio_file, reduce_tracking_file
from vidflow.io import dumps_json, read_json

FPS = 25
SCHEMAS = ROOT / "schemas"


# --------------------------------------------------------------------------- end to end on real media

TALKER, OTHER = "en-us+m3", "en+f3"
MAX_OPENING = 0.12  # face heights at the loudest moment of the talker's speech


@pytest.fixture(scope="module")
def talking_clip(tmp_path_factory):
    """480x270, ~12 s: two astronauts side by side; the left one's mouth opens with the en-us+m3 voice."""
    require_binaries("ffmpeg", "espeak-ng")
    from media_clips import make_video, open_mouth
    from media_shots import Shot
    from media_speech import layout_turns, make_speech, speech_envelope, synthesize

    folder = tmp_path_factory.mktemp("talk")
    inputs = folder / "inputs"
    inputs.mkdir()
    turns = layout_turns([(TALKER, "Good morning, this is the first voice."),
                          (OTHER, "And here is the second voice answering."),
                          (TALKER, "The first voice talks again."),
                          (OTHER, "The second voice has the last word.")], start=0.4, gap=0.6)
    last = turns[-1]
    frames = math.ceil((last[0] + len(synthesize(last[1], last[2])) / 16000 + 0.4) * FPS)
    speech = make_speech(folder / "speech.wav", turns, frames / FPS)
    envelope = speech_envelope(folder / "speech.wav", speech["segments"], TALKER, frames)

    def hook(index, frame, faces):
        left = min(faces, key=lambda f: f["bbox"][0])
        return open_mouth(frame, left["bbox"], MAX_OPENING * envelope[index])

    truth = make_video(inputs / "talk.mp4", [Shot("astronaut_pair", frames)], size=(480, 270),
                       audio=folder / "speech.wav", frame_hook=hook)
    truth["segments"] = speech["segments"]
    truth["left_box"] = min(truth["faces"][0], key=lambda f: f["bbox"][0])["bbox"]
    return inputs, truth


def test_workflow_links_the_talking_voice_to_the_moving_face(talking_clip, tmp_path):
    inputs, truth = talking_clip
    results = tmp_path / "results" / "_loose" / "talk"
    run_snakemake(tmp_path, "--nolock", "results/_loose/talk/faces.json", "results/_loose/talk/speakers.json",
                  config={"input_dir": str(inputs)})
    faces, record = (json.loads((results / name).read_text()) for name in ("faces.json", "speakers.json"))
    diarization = json.loads((results / "diarization.json").read_text())
    # the streamed step's bytes equal the old full load of the real tracking.json (and so do step 6's)
    old_faces, old_record = link_speakers_to_tracks(read_json(results / "tracking.json"), diarization,
                                                    read_loudness(results / "video.mp4", FPS, truth["frame_count"]),
                                                    SETTINGS)
    assert (results / "faces.json").read_text(encoding="utf-8") == dumps_json(old_faces, compact=True)
    assert (results / "speakers.json").read_text(encoding="utf-8") == dumps_json(old_record)
    fps, total = reduce_tracking_file(results / "faces.json", tmp_path / "reduced.json")
    assert (tmp_path / "reduced.json").read_text(encoding="utf-8") == dumps_json(reduce_tracking(faces), compact=True)
    reduce_audio_file(diarization, total, fps, tmp_path / "audio.json")
    assert (tmp_path / "audio.json").read_text(encoding="utf-8") == dumps_json(reduce_audio(diarization, total, fps),
                                                                               compact=True)
    validate(faces, "tracking")
    validate(record, "speakers")

    # The diarization label of the talker: the one covering most of its true turns.
    talker_turns = [s for s in truth["segments"] if s["speaker"] == TALKER]
    truth_frames = {i for i, a in enumerate(active_speakers(talker_turns, truth["frame_count"], FPS)) if a}
    found = active_speakers(diarization["segments"], truth["frame_count"], FPS)
    label = max(diarization["speakers"], key=lambda s: sum(s in found[f] for f in truth_frames))

    # Tracks: the one on the left (talking) and the one on the right (still).
    sides = {}
    for frame in faces["frames"]:
        for f in frame["faces"]:
            sides.setdefault(f["track_id"], []).append(f["bbox"][0] + f["bbox"][2] / 2)
    left = {t for t, xs in sides.items() if np.mean(xs) < truth["width"] / 2}
    right = set(sides) - left
    assert left and right
    linked = {s["speaker"]: set(s["tracks"]) for s in record["speakers"]}
    assert linked[label] and linked[label] <= left, record["tracks"]
    assert not any(tracks & right for tracks in linked.values()), record["tracks"]

    said = [fr["frame"] for fr in faces["frames"] for f in fr["faces"] if f["speaking"]]
    assert said
    precision = sum(f in truth_frames for f in said) / len(said)
    recall = len(truth_frames & set(said)) / len(truth_frames)
    print(f"speaking: precision {precision:.3f}, recall {recall:.3f}, {len(said)} frames, truth {len(truth_frames)}")
    assert precision >= 0.9  # measured 0.957: diarization's turn edges
    assert recall >= 0.9  # measured 1.0 (with the old mouth-motion rule: 0.49)
