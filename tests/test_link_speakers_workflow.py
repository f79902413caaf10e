"""link_speakers end to end: the real workflow links the talking voice to the moving face (espeak voice, photo
whose mouth opens with the voice's syllables)."""

import json
import math
from xml.etree import ElementTree

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
from vidflow.turns import overlapped_spans

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
    fps, total = reduce_tracking_file(results / "faces.json", tmp_path / "reduced.json", diarization["duration"])
    assert (tmp_path / "reduced.json").read_text(encoding="utf-8") == dumps_json(
        reduce_tracking(faces, diarization["duration"]), compact=True)
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


# --------------------------------------------------------------------------- overlapped speech end to end


@pytest.fixture(scope="module")
def overlap_clip(tmp_path_factory):
    """480x270, 10 s: two astronauts side by side, the left one talking with the en-us+m3 voice, the right one with
    the en+f3 voice, the second voice starting while the first still talks (and the other way round later)."""
    require_binaries("ffmpeg", "espeak-ng")
    from media_clips import make_video, open_mouth
    from media_shots import Shot
    from media_speech import mix_speech, speech_envelope

    folder = tmp_path_factory.mktemp("overlap")
    inputs = folder / "inputs"
    inputs.mkdir()
    turns = [(0.4, TALKER, "Good morning, this is the first voice, talking for a while."),  # 0.4-3.6 s
             (2.4, OTHER, "The second voice talks over the first one."),  # 2.4-4.6 s
             (4.2, TALKER, "The first voice comes in before the second is done."),  # 4.2-6.7 s
             (7.0, OTHER, "The second voice has the last word.")]
    frames = 10 * FPS
    speech = mix_speech(folder / "speech.wav", turns, frames / FPS)
    envelopes = {voice: speech_envelope(speech["tracks"][voice], speech["segments"], voice, frames)
                 for voice in (TALKER, OTHER)}

    def hook(index, frame, faces):
        left, right = sorted(faces, key=lambda f: f["bbox"][0])
        frame = open_mouth(frame, left["bbox"], MAX_OPENING * envelopes[TALKER][index])
        return open_mouth(frame, right["bbox"], MAX_OPENING * envelopes[OTHER][index])

    truth = make_video(inputs / "both.mp4", [Shot("astronaut_pair", frames)], size=(480, 270),
                       audio=folder / "speech.wav", frame_hook=hook)
    truth["segments"] = speech["segments"]
    return inputs, truth


def test_overlapped_speakers_speak_at_once_on_their_own_faces_through_the_workflow(overlap_clip, tmp_path):
    """The diarization is the clip's truth (overlaps included; the default backend is not judged here): faces.json,
    the seed's reduced files and the EAF carry both speakers where they talk at once."""
    from steps.diarization.pipeline import to_rttm
    from vidflow.io import write_json

    inputs, truth = overlap_clip
    results = tmp_path / "results" / "_loose" / "both"
    config = {"input_dir": str(inputs)}
    run_snakemake(tmp_path, "--nolock", "results/_loose/both/tracking.json", config=config)
    names = {TALKER: "SPEAKER_00", OTHER: "SPEAKER_01"}  # in order of first appearance
    segments = [{"start": s["start"], "end": s["end"], "speaker": names[s["speaker"]]} for s in truth["segments"]]
    assert overlapped_spans(segments)  # the truth does overlap
    diarization = {"duration": 10.0, "backend": "truth", "speakers": list(names.values()), "segments": segments}
    write_json(results / "diarization.json", diarization)
    (results / "diarization.rttm").write_text(to_rttm(segments, "both"), encoding="utf-8")
    run_snakemake(tmp_path, "--nolock", "results/_loose/both/both_tracking.json", "results/_loose/both/both_audio.json",
                  "results/_loose/both/export/both.eaf", config=config)
    assert read_json(results / "diarization.json") == diarization  # not diarized again
    faces, record = read_json(results / "faces.json"), read_json(results / "speakers.json")
    validate(faces, "tracking")
    validate(record, "speakers")

    middle = truth["width"] / 2
    side = {f["track_id"]: "left" if f["bbox"][0] + f["bbox"][2] / 2 < middle else "right"
            for frame in faces["frames"] for f in frame["faces"]}
    linked = {s["speaker"]: {side[t] for t in s["tracks"]} for s in record["speakers"]}
    assert linked == {"SPEAKER_00": {"left"}, "SPEAKER_01": {"right"}}, record["tracks"]
    active = active_speakers(segments, truth["frame_count"], FPS)
    both = [f for f, now in enumerate(active) if len(now) == 2]
    assert len(both) > 25  # over a second of the two voices at once
    said = {(fr["frame"], f["speaker"]) for fr in faces["frames"] for f in fr["faces"] if f["speaking"]}
    assert all({(f, "SPEAKER_00"), (f, "SPEAKER_01")} <= said for f in both)

    audio = read_json(results / "both_audio.json")["frames_analysis"]
    reduced = read_json(results / "both_tracking.json")["frames_analysis"]
    for f in both:
        assert audio[f]["audio_info"]["active_speaker_labels"] == ["SPEAKER_00", "SPEAKER_01"]
        assert sorted(s for o in reduced[f]["tracked_objects"] for s in o["active_speakers"]) == \
            ["SPEAKER_00", "SPEAKER_01"]
    eaf = ElementTree.parse(results / "export" / "both.eaf").getroot()
    slots = {s.get("TIME_SLOT_ID"): int(s.get("TIME_VALUE")) for s in eaf.iter("TIME_SLOT")}
    tiers = {t.get("TIER_ID"): [(slots[a.get("TIME_SLOT_REF1")], slots[a.get("TIME_SLOT_REF2")])
                                for a in t.iter("ALIGNABLE_ANNOTATION")] for t in eaf.iter("TIER")}
    for speaker in names.values():
        assert tiers[speaker] == [(round(s["start"] * 1000), round(s["end"] * 1000)) for s in segments
                                  if s["speaker"] == speaker]
