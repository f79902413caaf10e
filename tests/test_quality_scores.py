"""The scores of benchmarks/quality.py on known cases: DER/JER, face matching and link accuracy, cut F1."""

import pytest

from conftest import load_benchmark


@pytest.fixture(scope="module")
def scores():
    return load_benchmark("quality_scores")


def seg(start, end, speaker):
    return {"start": start, "end": end, "speaker": speaker}


def test_der_of_a_known_case(scores):
    pytest.importorskip("pyannote.metrics", reason="pinned in envs/workflow.yaml: rebuild .venvs/workflow")
    truth = [seg(0, 10, "ann"), seg(10, 20, "bob")]
    found = [seg(0, 12, "SPEAKER_00"), seg(12, 19, "SPEAKER_01"), seg(19, 20, "SPEAKER_02")]
    out = scores.diarization_scores(truth, found, 20.0)
    # collar 0: 2 s of bob called SPEAKER_00, 1 s of bob called SPEAKER_02 -> 3 s of 20 confused
    assert out["der@0"] == 0.15 and out["miss"] == 0 and out["false_alarm"] == 0
    # collar 0.25 (in total): 0.125 s either side of every true boundary (0, 10, 20 s) is not scored
    assert out["der@0.25"] == round(2.75 / 19.5, 4) == out["confusion"]
    assert out["mapping"] == {"SPEAKER_00": "ann", "SPEAKER_01": "bob"}
    assert (out["true_speakers"], out["found_speakers"], out["count_error"]) == (2, 3, 1)
    assert out["jer"] == round((1 - 10 / 12 + 1 - 7 / 10) / 2, 4)  # ann: 10 s of S0's 12; bob: 7 s of 10
    silent = scores.diarization_scores(truth, [seg(0, 20, "SPEAKER_00")], 20.0)
    assert silent["der@0"] == 0.5 and silent["count_error"] == -1
    assert out["overlap_s"] == 0 and out["overlap_recall"] is None and out["overlap_precision"] is None


def test_overlapped_speech_found(scores):
    pytest.importorskip("pyannote.metrics", reason="pinned in envs/workflow.yaml: rebuild .venvs/workflow")
    truth = [seg(0, 10, "ann"), seg(8, 14, "bob")]  # 2 s of both at once (8-10)
    found = [seg(0, 9.5, "SPEAKER_00"), seg(9, 14, "SPEAKER_01"), seg(12, 13, "SPEAKER_00")]  # 9-9.5, 12-13
    out = scores.diarization_scores(truth, found, 14.0)
    assert (out["overlap_s"], out["found_overlap_s"]) == (2.0, 1.5)
    assert out["overlap_precision"] == round(0.5 / 1.5, 4) and out["overlap_recall"] == 0.25


def av_truth():
    faces = [{"face": 0, "still": "a", "role": "speaker", "voice": "ann",
              "shots": [{"shot": 0, "start_frame": 0, "end_frame": 49, "bbox": [0, 0, 100, 100]},
                        {"shot": 1, "start_frame": 50, "end_frame": 99, "bbox": [100, 0, 200, 200]}]},
             {"face": 1, "still": "b", "role": "silent", "voice": None,
              "shots": [{"shot": 0, "start_frame": 0, "end_frame": 49, "bbox": [300, 0, 100, 100]}]}]
    return {"fps": 25, "faces": faces, "segments": [seg(0.0, 1.0, "ann"), seg(2.0, 3.0, "ann")]}


def frames_of(speaking_of, track_b=2):
    """Face a is track 1 in shot 0 and track 3 in shot 1; face b is ``track_b``; speaking_of(frame, track)."""
    frames = []
    for f in range(100):
        faces = [{"track_id": 1 if f < 50 else 3, "bbox": [5, 3, 95, 100] if f < 50 else [110, 10, 190, 190]}]
        if f < 50:
            faces.append({"track_id": track_b, "bbox": [310, 0, 90, 95]})
        for face in faces:
            face["speaking"] = speaking_of(f, face["track_id"])
        frames.append({"frame": f, "faces": faces})
    return frames


def test_faces_are_matched_by_box_centre_and_tracks_by_majority(scores):
    per_face, tracks = scores.match_faces(frames_of(lambda f, t: False), av_truth()["faces"])
    assert tracks == {1: 0, 2: 1, 3: 0}
    assert per_face[(10, 2)] == 1 and per_face[(60, 3)] == 0
    far = [{"frame": 0, "faces": [{"track_id": 9, "bbox": [600, 300, 50, 50]}]}]
    assert scores.match_faces(far, av_truth()["faces"])[1] == {9: None}


def test_link_accuracy_and_speaking_scores(scores):
    truth = av_truth()
    ann = {f for f in range(100) if scores.active(truth["segments"], "ann", f, 25)}  # frames 0-24 and 50-74
    perfect = frames_of(lambda f, t: t in (1, 3) and f in ann)
    links = {1: "SPEAKER_00", 2: None, 3: "SPEAKER_00"}
    out = scores.av_scores(truth, perfect, links, {"SPEAKER_00": "ann"})
    assert (out["speaking_precision"], out["speaking_recall"], out["silent_false_speaking"]) == (1.0, 1.0, 0.0)
    assert out["link_accuracy"] == 1.0
    # the second shot's track unlinked and the silent face linked: both faces wrong
    out = scores.av_scores(truth, perfect, {1: "SPEAKER_00", 2: "SPEAKER_01", 3: None},
                           {"SPEAKER_00": "ann", "SPEAKER_01": "bob"})
    assert out["link_accuracy"] == 0.0 and [d["right"] for d in out["links"]] == [False, False]
    # the silent face "speaks" in half its frames; the talker only in the first shot
    noisy = frames_of(lambda f, t: (t == 2 and f % 2 == 0) or (t == 1 and f in ann))
    out = scores.av_scores(truth, noisy, links, {"SPEAKER_00": "ann"})
    assert out["silent_false_speaking"] == 0.5
    assert out["speaking_recall"] == 0.5 and out["speaking_precision"] == round(25 / 50, 3)
    assert out["link_accuracy"] == 1.0  # links are judged on speakers.json, not on speaking frames


def test_face_scores(scores):
    frames = [{"frame": f, "faces": [] if f in (3, 4) else [{"track_id": 1 if f < 6 else 2}]} for f in range(10)]
    scenes = [{"start_frame": 0, "end_frame": 9}]
    assert scores.face_scores(frames, 10, scenes) == {"hit_rate": 0.8, "id_switches": 1, "extra_face_frames": 0}
    two = [{"start_frame": 0, "end_frame": 5}, {"start_frame": 6, "end_frame": 9}]
    assert scores.face_scores(frames, 10, two)["id_switches"] == 0  # a new id after a cut is no switch


def test_cut_f1_within_two_frames(scores):
    out = scores.cut_scores([30, 76, 137, 187, 242], [31, 74, 140, 187, 200, 243])
    assert (out["cut_precision"], out["cut_recall"]) == (round(4 / 6, 3), 0.8)  # 137 vs 140: 3 frames off
    assert out["cut_f1"] == round(2 * (4 / 6) * 0.8 / (4 / 6 + 0.8), 3)
    assert scores.cut_scores([10], [9, 11])["cut_precision"] == 0.5  # one found cut per true cut
    assert scores.cut_scores([], [])["cut_f1"] == 1.0 and scores.cut_scores([5], [])["cut_f1"] == 0.0
