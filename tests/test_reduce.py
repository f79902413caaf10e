"""Step 6: the seed's reduced contract, from synthetic tracking/diarization with known content."""

import json

import jsonschema
import pytest

from conftest import ROOT, SEED, covers, shape
from steps.reduce import (
    audio_frames,
    reduce_audio_file,
    reduce_tracking_file,
    reduced_frame,
    speaker_stats,
    speakers_at,
    temporal_alignment,
)
from vidflow.io import dumps_json, read_json, write_json

SCHEMAS = ROOT / "schemas"


# --- the old full load: the reference the streamed step is compared with (a whole document in memory)

def object_ids(tracking):
    """Track id -> ``obj_<n>``, numbered from 1 in order of first appearance (then by id)."""
    order = {}
    for frame in tracking["frames"]:
        for face in sorted(frame["faces"], key=lambda f: f["track_id"]):
            order.setdefault(face["track_id"], f"obj_{len(order) + 1}")
    return order


def reduce_tracking(tracking, audio_duration):
    """The seed's ``{video}_tracking.json`` from a whole ``tracking.json``."""
    ids = object_ids(tracking)
    by_frame = {f["frame"]: f["faces"] for f in tracking["frames"]}
    frames = [reduced_frame(index, by_frame.get(index, []), ids) for index in range(tracking["frame_count"])]
    return {"fps": tracking["fps"], "total_frames": tracking["frame_count"], "frames_analysis": frames,
            "temporal_alignment": temporal_alignment(tracking["frame_count"], tracking["fps"], audio_duration)}


def reduce_audio(diarization, total_frames, fps=25):
    """The seed's ``{video}_audio.json``, every frame in memory."""
    segments = diarization["segments"]
    frames = list(audio_frames(segments, total_frames, fps))
    stats = speaker_stats(segments)
    for frame in frames:
        for label in frame["audio_info"]["active_speaker_labels"]:
            stats[label]["frames"] += 1
    return {"fps": fps, "total_frames": total_frames, "frames_analysis": frames, "speaker_stats": stats,
            "temporal_alignment": temporal_alignment(total_frames, fps, diarization["duration"])}


# --- the step, from and to files

def reduced_tracking(tmp_path, tracking, audio_duration=0.16):
    write_json(tmp_path / "faces.json", tracking, compact=True)
    reduce_tracking_file(tmp_path / "faces.json", tmp_path / "v_tracking.json", audio_duration)
    return read_json(tmp_path / "v_tracking.json")


def reduced_audio(tmp_path, diarization, total_frames, fps=25):
    reduce_audio_file(diarization, total_frames, fps, tmp_path / "v_audio.json")
    return read_json(tmp_path / "v_audio.json")


def tracking_fixture():
    """4 frames at 25 fps: track 7 in frames 0-2 (speaking in 1-2 as SPEAKER_01), track 3 in frames 2-3."""
    face = lambda tid, x, score=0.9, **extra: {"track_id": tid, "bbox": [x, 20, 40, 50], "score": score, **extra}  # noqa: E731
    return {"fps": 25, "width": 320, "height": 180, "frame_count": 4, "engine": "mediapipe", "frames": [
        {"frame": 0, "faces": [face(7, 10)]},
        {"frame": 1, "faces": [face(7, 11, speaking=True, speaker="SPEAKER_01")]},
        {"frame": 2, "faces": [face(3, 200, 0.81234), face(7, 12, speaking=True, speaker="SPEAKER_01")]},
        {"frame": 3, "faces": [{"track_id": 3, "bbox": [201, 20, 40, 50]}]},
    ]}


def diarization_fixture():
    return {"duration": 0.16, "backend": "segment_embed", "speakers": ["SPEAKER_00", "SPEAKER_01"], "segments": [
        {"start": 0.0, "end": 0.05, "speaker": "SPEAKER_00"}, {"start": 0.04, "end": 0.12, "speaker": "SPEAKER_01"}]}


def schema(name):
    return json.loads((SCHEMAS / f"reduced_{name}.schema.json").read_text())


def test_object_ids_follow_first_appearance(tmp_path):
    frames = reduced_tracking(tmp_path, tracking_fixture())["frames_analysis"]
    ids = {}  # track 7 alone in frame 0, track 3 alone in frame 3
    for frame, track in ((0, 7), (3, 3)):
        ids[track] = [o["id"] for o in frames[frame]["tracked_objects"]][0]
    assert ids == {7: "obj_1", 3: "obj_2"}


def test_reduced_tracking_content(tmp_path):
    out = reduced_tracking(tmp_path, tracking_fixture())
    assert out["total_frames"] == 4 and [f["frame"] for f in out["frames_analysis"]] == [1, 2, 3, 4]
    assert out["temporal_alignment"] == {"video_fps": 25, "audio_fps": 25, "video_frames": 4, "audio_frames": 4,
                                         "audio_duration_sec": 0.16, "frame_difference": 0, "aligned": True,
                                         "warnings": []}
    late = reduced_tracking(tmp_path, tracking_fixture(), audio_duration=0.4)["temporal_alignment"]
    assert late["frame_difference"] == 6 and late["warnings"] == ["audio covers 10 frames, video has 4"]
    f3 = out["frames_analysis"][2]["tracked_objects"]
    assert [o["id"] for o in f3] == ["obj_1", "obj_2"]
    assert f3[0] == {"id": "obj_1", "centroid_x": 32, "source": "face_landmarker", "label": "face",
                     "confidence": 0.9, "active_speakers": ["SPEAKER_01"], "bbox_width": 40, "bbox_height": 50}
    assert f3[1]["confidence"] == 0.812 and f3[1]["active_speakers"] == []
    assert out["frames_analysis"][0]["tracked_objects"][0]["active_speakers"] == []  # visible, not speaking
    assert out["frames_analysis"][3]["tracked_objects"] == [  # followed, not detected: no confidence
        {"id": "obj_2", "centroid_x": 221, "source": "face_landmarker", "label": "face", "active_speakers": [],
         "bbox_width": 40, "bbox_height": 50}]
    jsonschema.validate(out, schema("tracking"))


def test_speakers_at_frame_middles():
    segments = diarization_fixture()["segments"]
    assert speakers_at(segments, 0.02) == ["SPEAKER_00"]
    assert speakers_at(segments, 0.045) == ["SPEAKER_00", "SPEAKER_01"]
    assert speakers_at(segments, 0.12) == []


def test_reduced_audio_content_and_alignment(tmp_path):
    out = reduced_audio(tmp_path, diarization_fixture(), total_frames=4)
    info = [f["audio_info"] for f in out["frames_analysis"]]
    assert [i["active_speaker_labels"] for i in info] == [["SPEAKER_00"], ["SPEAKER_01"], ["SPEAKER_01"], []]
    assert [i["is_speech_present"] for i in info] == [True, True, True, False]
    assert [i["timecode_sec"] for i in info] == [0.0, 0.04, 0.08, 0.12]
    assert out["speaker_stats"] == {"SPEAKER_00": {"segments": 1, "speech_sec": 0.05, "frames": 1},
                                    "SPEAKER_01": {"segments": 1, "speech_sec": 0.08, "frames": 2}}
    assert out["temporal_alignment"]["aligned"] and out["temporal_alignment"]["warnings"] == []
    jsonschema.validate(out, schema("audio"))


def test_overlapped_speech_gives_both_speakers_in_both_reduced_files(tmp_path):
    # SPEAKER_00 0.0-0.2 s (frames 0-4), SPEAKER_01 0.12-0.32 s (frames 3-7): frames 3 and 4 overlap; faces.json as
    # link_speakers writes it: track 1 speaks for SPEAKER_00, track 2 for SPEAKER_01, each in its speaker's turns
    segments = [{"start": 0.0, "end": 0.2, "speaker": "SPEAKER_00"},
                {"start": 0.12, "end": 0.32, "speaker": "SPEAKER_01"}]
    diarization = {"duration": 0.4, "backend": "hand", "speakers": ["SPEAKER_00", "SPEAKER_01"], "segments": segments}
    talks = {1: range(0, 5), 2: range(3, 8)}
    face = lambda tid, f, speaker: {"track_id": tid, "bbox": [100 * tid, 20, 40, 50], "score": 0.9,  # noqa: E731
                                    "speaking": f in talks[tid], "speaker": speaker}
    faces = {"fps": 25, "width": 320, "height": 180, "frame_count": 10, "engine": "mediapipe",
             "frames": [{"frame": f, "faces": [face(1, f, "SPEAKER_00"), face(2, f, "SPEAKER_01")]} for f in range(10)]}
    audio = reduced_audio(tmp_path, diarization, total_frames=10)
    labels = [f["audio_info"]["active_speaker_labels"] for f in audio["frames_analysis"]]
    assert labels == [["SPEAKER_00"]] * 3 + [["SPEAKER_00", "SPEAKER_01"]] * 2 + [["SPEAKER_01"]] * 3 + [[]] * 2
    assert audio["speaker_stats"] == {"SPEAKER_00": {"segments": 1, "speech_sec": 0.2, "frames": 5},
                                      "SPEAKER_01": {"segments": 1, "speech_sec": 0.2, "frames": 5}}
    tracking = reduced_tracking(tmp_path, faces)
    active = [[o["active_speakers"] for o in f["tracked_objects"]] for f in tracking["frames_analysis"]]
    assert active == ([[["SPEAKER_00"], []]] * 3 + [[["SPEAKER_00"], ["SPEAKER_01"]]] * 2 +
                      [[[], ["SPEAKER_01"]]] * 3 + [[[], []]] * 2)
    jsonschema.validate(audio, schema("audio"))
    jsonschema.validate(tracking, schema("tracking"))


def test_alignment_warns_when_audio_and_video_disagree(tmp_path):
    short = {**diarization_fixture(), "duration": 2.0}
    alignment = reduced_audio(tmp_path, short, total_frames=4)["temporal_alignment"]
    assert not alignment["aligned"] and alignment["warnings"] == ["audio covers 50 frames, video has 4"]
    assert "differs" in reduced_audio(tmp_path, diarization_fixture(), 4, fps=30)["temporal_alignment"]["warnings"][0]


def landmarks(x):
    return [[round(x + i * 0.7, 1), round(20 + i * 0.3, 1), -1.5] for i in range(478)]


@pytest.mark.parametrize("variant", ["ordered", "gaps_and_beyond", "unordered", "no_frames_listed"])
def test_streamed_reduction_writes_the_bytes_of_the_full_load(tmp_path, variant):
    """{video}_tracking.json and {video}_audio.json written streamed equal write_json of the old full load."""
    tracking = tracking_fixture()
    for frame in tracking["frames"]:
        for face in frame["faces"]:
            face["landmarks"] = landmarks(face["bbox"][0])
    if variant == "gaps_and_beyond":  # frames 1 and 4-5 not listed, frame 7 past frame_count, track 12 first there
        tracking["frame_count"] = 6
        tracking["frames"] = [tracking["frames"][0], tracking["frames"][2], {"frame": 3, "faces": [
            {"track_id": 12, "bbox": [5, 5, 9, 9]}, *tracking["frames"][3]["faces"]]},
            {"frame": 7, "faces": [{"track_id": 99, "bbox": [1, 1, 2, 2]}]}]
    elif variant == "unordered":  # never written by our steps: falls back to the full reduction
        tracking["frames"] = [tracking["frames"][2], tracking["frames"][0], tracking["frames"][3],
                              tracking["frames"][1], {**tracking["frames"][3], "faces": []}]
    elif variant == "no_frames_listed":
        tracking["frames"] = []
    write_json(tmp_path / "faces.json", tracking, compact=True)
    diarization = {**diarization_fixture(), "duration": 3.0}
    fps, total = reduce_tracking_file(tmp_path / "faces.json", tmp_path / "v_tracking.json", diarization["duration"])
    assert (fps, total) == (25, tracking["frame_count"])
    full = reduce_tracking(json.loads((tmp_path / "faces.json").read_text()), diarization["duration"])
    assert (tmp_path / "v_tracking.json").read_text(encoding="utf-8") == dumps_json(full, compact=True)
    alignment = reduce_audio_file(diarization, total, fps, tmp_path / "v_audio.json")
    full = reduce_audio(diarization, total, fps)
    assert (tmp_path / "v_audio.json").read_text(encoding="utf-8") == dumps_json(full, compact=True)
    assert alignment == full["temporal_alignment"] and not alignment["aligned"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["faces.json", "v_audio.json", "v_tracking.json"]


def test_streamed_reduction_of_a_long_video_keeps_memory_flat(tmp_path, monkeypatch):
    """Peak allocation for a 10x longer faces.json grows by far less than the file (a full load: several times it)."""
    import tracemalloc

    import vidflow.jsonstream

    monkeypatch.setattr(vidflow.jsonstream, "CHUNK", 1 << 16)
    peaks, sizes = [], []
    face = {"track_id": 1, "bbox": [10.0, 20.0, 40.0, 50.0], "score": 0.9, "landmarks": landmarks(10)[:100],
            "speaking": True, "speaker": "SPEAKER_00"}
    for frames in (100, 1000):
        write_json(tmp_path / "faces.json", {"fps": 25, "frame_count": frames, "width": 320, "height": 180,
                                             "engine": "mediapipe",
                                             "frames": [{"frame": f, "faces": [face]} for f in range(frames)]},
                   compact=True)
        tracemalloc.start()
        reduce_tracking_file(tmp_path / "faces.json", tmp_path / "v_tracking.json", frames / 25)
        reduce_audio_file(diarization_fixture(), frames, 25, tmp_path / "v_audio.json")
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        sizes.append((tmp_path / "faces.json").stat().st_size)
    print(f"peak {peaks[0] >> 10} KiB for {sizes[0] >> 10} KiB, {peaks[1] >> 10} KiB for {sizes[1] >> 10} KiB")
    assert peaks[1] - peaks[0] < 64 * 900 and peaks[1] < sizes[1] / 2  # bytes per added frame


def test_both_files_describe_the_temporal_alignment_alike():
    assert schema("tracking")["properties"]["temporal_alignment"] == schema("audio")["properties"]["temporal_alignment"]


@pytest.mark.skipif(not SEED.is_dir(), reason="needs ../shared/reference (the seed's real outputs)")
@pytest.mark.parametrize("name, make", [("tracking", lambda tmp: reduced_tracking(tmp, tracking_fixture())),
                                        ("audio", lambda tmp: reduced_audio(tmp, diarization_fixture(), 4))])
def test_contract_matches_the_seed(name, make, tmp_path):
    seed = json.loads((SEED / f"example_{name}.json").read_text())
    ours = json.loads(json.dumps(make(tmp_path)))
    jsonschema.validate(seed, schema(name))
    jsonschema.validate(ours, schema(name))
    covers(shape(ours), shape(seed))
