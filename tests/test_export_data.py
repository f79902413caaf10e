"""Step export, the plain data (driver venv): tiers, face rows, turn rows, cues and the review video's timeline from
hand-made diarization, scenes, faces, speakers and transcript."""

import json

import pytest

from steps.export.data import annotation_tiers, clean_intervals, read_faces, review_timeline, subtitle_cues, turn_rows
from vidflow.errors import UserError

FPS = 25
DIARIZATION = {"duration": 4.0, "speakers": ["SPEAKER_00", "SPEAKER_01"],
               "segments": [{"start": 0.2, "end": 1.5, "speaker": "SPEAKER_00"},
                            {"start": 1.7, "end": 2.9, "speaker": "SPEAKER_01"},
                            {"start": 3.0, "end": 3.9, "speaker": "SPEAKER_00"}]}
SCENES = {"fps": 25, "frame_count": 100, "scenes": [{"start_frame": 0, "end_frame": 59}, {"start_frame": 60,
                                                                                           "end_frame": 99}]}
SPEAKERS = {"tracks": [{"track_id": 1, "speaker": "SPEAKER_00"}, {"track_id": 2, "speaker": None}]}
TRANSCRIPT = {"segments": [
    {"start": 0.25, "end": 1.4, "speaker": "SPEAKER_00", "track_id": 1, "text": " Hello there.",
     "words": [{"start": 0.25, "end": 0.7, "word": " Hello", "probability": 0.91, "speaker": "SPEAKER_00",
                "track_id": 1},
               {"start": 0.75, "end": 1.4, "word": " there.", "probability": 0.8, "speaker": "SPEAKER_00",
                "track_id": 1}]},
    {"start": 1.8, "end": 2.8, "speaker": "SPEAKER_01", "track_id": None, "text": "Good morning",
     "words": [{"start": 1.8, "end": 2.2, "word": "Good", "probability": 0.7, "speaker": "SPEAKER_01"},
               {"start": 2.1, "end": 2.8, "word": "morning", "probability": 0.6, "speaker": "SPEAKER_01"}]}]}


def speaks(frame):
    """Track 1 speaks during SPEAKER_00's turns (frame middles)."""
    t = (frame + 0.5) / FPS
    return any(s["start"] <= t < s["end"] for s in DIARIZATION["segments"] if s["speaker"] == "SPEAKER_00")


def faces_document(frames=100):
    """Track 1 in frames 0-59 but 20-24 (a gap), track 2 in frames 60-99 with blendshapes and a head pose."""
    out = []
    for f in range(frames):
        faces = []
        if f < 60 and not 20 <= f < 25:
            faces.append({"track_id": 1, "bbox": [10.0 + f, 20.0, 50.0, 60.0], "score": 0.9, "speaking": speaks(f),
                          "speaker": "SPEAKER_00" if speaks(f) else None, "landmarks": [[1.0, 2.0, 3.0]] * 3})
        if f >= 60:
            faces.append({"track_id": 2, "bbox": [200.0, 30.0, 40.0, 44.0], "speaking": False, "speaker": None,
                          "blendshapes": {"jawOpen": 0.25, "eyeBlinkLeft": f / 100}, "head_pose":
                          {"yaw": 5.0, "pitch": -2.0, "roll": 1.5}})
        out.append({"frame": f, "faces": faces})
    return {"fps": 25, "width": 320, "height": 180, "frame_count": frames, "engine": "truth", "frames": out}


@pytest.fixture
def faces(tmp_path):
    path = tmp_path / "faces.json"
    path.write_text(json.dumps(faces_document()))
    return read_faces(path)


# --------------------------------------------------------------------------- plain data (driver venv)


def test_tiers_are_scenes_speaker_turns_and_face_tracks(faces):
    tiers = annotation_tiers(DIARIZATION, SCENES, faces, SPEAKERS)
    assert [t.name for t in tiers] == ["scenes", "SPEAKER_00", "SPEAKER_01", "face 1", "face 1 speaking", "face 2"]
    by_name = {t.name: t for t in tiers}
    assert by_name["scenes"].intervals == ((0.0, 2.4, "scene 1"), (2.4, 4.0, "scene 2"))
    for name in DIARIZATION["speakers"]:
        turns = [(s["start"], s["end"], name) for s in DIARIZATION["segments"] if s["speaker"] == name]
        assert list(by_name[name].intervals) == turns and by_name[name].participant == name
    assert by_name["face 1"].intervals == ((0.0, 0.8, "SPEAKER_00"), (1.0, 2.4, "SPEAKER_00"))  # the gap: 20-24
    assert by_name["face 2"].intervals == ((2.4, 4.0, "unlinked"),) and by_name["face 2"].participant is None
    speaking = [f for f in range(60) if speaks(f) and not 20 <= f < 25]
    assert [(round(a * FPS), round(b * FPS)) for a, b, _ in by_name["face 1 speaking"].intervals] == \
        [(speaking[0], 20), (25, speaking[-1] + 1)]


def test_face_rows_equal_the_faces_of_faces_json(faces):
    document = faces_document()
    expected = [(f["frame"], face) for f in document["frames"] for face in f["faces"]]
    rows = faces.rows
    assert len(rows["frame"]) == len(expected) == 95
    assert list(rows)[:10] == ["frame", "time", "track_id", "x", "y", "w", "h", "score", "speaking", "speaker"]
    assert sorted(list(rows)[10:]) == ["blendshape_eyeBlinkLeft", "blendshape_jawOpen", "head_pitch", "head_roll",
                                       "head_yaw"]
    for i, (frame, face) in enumerate(expected):
        assert (rows["frame"][i], rows["time"][i], rows["track_id"][i]) == (frame, round(frame / FPS, 3),
                                                                             face["track_id"])
        assert [rows[k][i] for k in "xywh"] == face["bbox"]
        assert (rows["score"][i], rows["speaking"][i], rows["speaker"][i]) == \
            (face.get("score"), face["speaking"], face["speaker"])
        assert rows["blendshape_jawOpen"][i] == face.get("blendshapes", {}).get("jawOpen")
        assert rows["head_yaw"][i] == face.get("head_pose", {}).get("yaw")
    assert faces.boxes[30] == [(1, 40.0, 20.0, 50.0, 60.0, speaks(30), "SPEAKER_00" if speaks(30) else None)]


def test_transcript_adds_tiers_rows_cues_and_subtitles(faces):
    tiers = {t.name: t for t in annotation_tiers(DIARIZATION, SCENES, faces, SPEAKERS, TRANSCRIPT)}
    assert tiers["SPEAKER_00 transcript"].intervals == ((0.25, 1.4, "Hello there."),)
    assert tiers["SPEAKER_00 words"].intervals == ((0.25, 0.7, "Hello"), (0.75, 1.4, "there."))
    assert tiers["SPEAKER_01 words"].intervals == ((1.8, 2.2, "Good"), (2.2, 2.8, "morning"))  # overlap trimmed
    rows = turn_rows(DIARIZATION, TRANSCRIPT)
    kinds = list(zip(rows["kind"], rows["start"], rows["text"]))
    assert kinds[:4] == [("turn", 0.2, None), ("segment", 0.25, "Hello there."), ("word", 0.25, "Hello"),
                         ("word", 0.75, "there.")]
    assert rows["kind"].count("turn") == 3 and rows["kind"].count("word") == 4
    word = rows["text"].index("morning")
    assert (rows["probability"][word], rows["track_id"][word], rows["duration"][word]) == (0.6, None, 0.7)
    assert subtitle_cues(DIARIZATION, SPEAKERS, TRANSCRIPT) == [(0.25, 1.4, "SPEAKER_00", "Hello there."),
                                                                (1.8, 2.8, "SPEAKER_01", "Good morning")]
    timeline = review_timeline(DIARIZATION, SCENES, 100, FPS, TRANSCRIPT)
    assert timeline.subtitle[10] == "Hello there." and timeline.subtitle[40] == "" and timeline.subtitle[50] == \
        "Good morning"


def test_without_transcript_cues_are_turns_and_the_timeline_follows_diarization_and_scenes():
    assert subtitle_cues(DIARIZATION, SPEAKERS) == [(0.2, 1.5, "SPEAKER_00", "SPEAKER_00 (face 1)"),
                                                    (1.7, 2.9, "SPEAKER_01", "SPEAKER_01"),
                                                    (3.0, 3.9, "SPEAKER_00", "SPEAKER_00 (face 1)")]
    rows = turn_rows(DIARIZATION)
    assert rows["kind"] == ["turn"] * 3 and rows["speaker"] == ["SPEAKER_00", "SPEAKER_01", "SPEAKER_00"]
    assert rows["duration"] == [1.3, 1.2, 0.9]
    timeline = review_timeline(DIARIZATION, SCENES, 100, FPS)
    assert timeline.scene[59] == 1 and timeline.scene[60] == 2
    assert timeline.speakers[2] == () and timeline.speakers[10] == ("SPEAKER_00",) and timeline.speakers[
        45] == ("SPEAKER_01",) and timeline.speakers[73] == ()


def test_speakers_talking_at_once_keep_their_whole_turns_on_their_own_tiers(faces):
    overlapped = {"duration": 4.0, "speakers": ["SPEAKER_00", "SPEAKER_01"],
                  "segments": [{"start": 0.2, "end": 1.5, "speaker": "SPEAKER_00"},
                               {"start": 1.0, "end": 2.9, "speaker": "SPEAKER_01"}]}
    tiers = {t.name: t for t in annotation_tiers(overlapped, SCENES, faces, SPEAKERS)}
    assert tiers["SPEAKER_00"].intervals == ((0.2, 1.5, "SPEAKER_00"),)
    assert tiers["SPEAKER_01"].intervals == ((1.0, 2.9, "SPEAKER_01"),)  # not cut where SPEAKER_00 still talks
    timeline = review_timeline(overlapped, SCENES, 100, FPS)
    assert timeline.speakers[20] == ("SPEAKER_00",) and timeline.speakers[30] == ("SPEAKER_00", "SPEAKER_01")
    assert timeline.speakers[40] == ("SPEAKER_01",)
    assert subtitle_cues(overlapped, SPEAKERS) == [(0.2, 1.5, "SPEAKER_00", "SPEAKER_00 (face 1)"),
                                                   (1.0, 2.9, "SPEAKER_01", "SPEAKER_01")]
    assert turn_rows(overlapped)["speaker"] == ["SPEAKER_00", "SPEAKER_01"]


def test_tier_intervals_never_overlap():
    assert clean_intervals([(1.0, 2.0, "a"), (0.0, 1.5, "a"), (3.0, 3.0, "a")]) == [(0.0, 2.0, "a")]
    assert clean_intervals([(0.0, 1.5, "a"), (1.0, 2.0, "b"), (1.2, 1.4, "c")], merge_equal=False) == \
        [(0.0, 1.5, "a"), (1.5, 2.0, "b")]


@pytest.mark.parametrize("document, reason", [
    ({"fps": 25, "width": 320, "height": 180, "frame_count": 1, "frames": [{"frame": 1, "faces": []}]},
     "not numbered 0, 1, 2"),
    ({"fps": 25, "width": 320, "height": 180, "frame_count": 1, "frames": [{"frame": 0, "faces": [{"bbox": [1]}]}]},
     "not a faces.json"),
    ({"fps": 25, "width": 320, "height": 180, "frame_count": 2, "frames": [{"frame": 0, "faces": []}]},
     "lists 1 frames, but its frame_count is 2"),
])
def test_bad_faces_json_is_a_one_line_error(tmp_path, document, reason):
    path = tmp_path / "faces.json"
    path.write_text(json.dumps(document))
    with pytest.raises(UserError, match=reason) as err:
        read_faces(path)
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)
    path.write_text('{"frames": [')
    with pytest.raises(UserError, match="cannot read"):
        read_faces(path)
