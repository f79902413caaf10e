"""Step 5b: speaking faces and speaker-to-track links, on synthetic tracks and on a real talking-face clip."""

import json
import math
import wave

import jsonschema
import numpy as np
import pytest

from conftest import ROOT, schema_defaults
from steps.link_speakers import (
    Linker,
    LinkSpeakersSettings,
    active_speakers,
    frame_loudness,
    high_pass,
    link_speakers_files,
    link_speakers_to_tracks,
    mouth_opening,
    read_loudness,
)
from vidflow.errors import UserError
from vidflow.io import dumps_json, read_json, write_json
from vidflow.job import settings_from
from vidflow.jsonstream import compact

FPS = 25
SCHEMAS = ROOT / "schemas"


def settings(**changes):
    """The ``link_speakers`` section as config/schema.yaml fills it in, with ``changes``."""
    return settings_from(LinkSpeakersSettings, schema_defaults("link_speakers", **changes))


SETTINGS = settings()


def validate(data, name):
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(json.loads(json.dumps(data)))


def face(track, x, gap, jaw=None):
    """A face whose mesh has lips ``gap`` face heights apart (face height 100 px)."""
    landmarks = [[x + 50.0, 50.0]] * 478
    landmarks = [list(p) for p in landmarks]
    landmarks[10], landmarks[152] = [x + 50.0, 0.0], [x + 50.0, 100.0]
    landmarks[13], landmarks[14] = [x + 50.0, 70.0], [x + 50.0, 70.0 + 100.0 * gap]
    out = {"track_id": track, "bbox": [x, 0.0, 100.0, 100.0], "landmarks": landmarks}
    if jaw is not None:
        out["blendshapes"] = {"jawOpen": jaw}
    return out


def talking(frame, segments, speaker):
    """Lip gap of a face that talks during ``speaker``'s segments (5 Hz syllables), else still."""
    t = (frame + 0.5) / FPS
    on = any(s["start"] <= t < s["end"] and s["speaker"] == speaker for s in segments)
    return 0.03 + (0.04 * (1 + math.sin(2 * math.pi * 5 * t)) if on else 0.0)


SEGMENTS = [{"start": 0.5, "end": 2.5, "speaker": "SPEAKER_00"}, {"start": 3.0, "end": 5.0, "speaker": "SPEAKER_01"},
            {"start": 5.5, "end": 7.5, "speaker": "SPEAKER_00"}, {"start": 8.0, "end": 9.5, "speaker": "SPEAKER_01"}]
DIARIZATION = {"duration": 10.0, "speakers": ["SPEAKER_00", "SPEAKER_01"], "segments": SEGMENTS}


def voice_samples(segments, frames, rate=16000):
    """Noise whose loudness follows 5 Hz syllables during every speaker's turns, a quiet hiss elsewhere."""
    t = np.arange(frames * rate // FPS) / rate
    on = np.zeros(len(t), dtype=bool)
    for seg in segments:
        on |= (t >= seg["start"]) & (t < seg["end"])
    amplitude = np.where(on, 0.3 * (0.55 + 0.45 * np.sin(2 * np.pi * 5 * t)), 0.002)
    return (amplitude * np.random.default_rng(3).standard_normal(len(t))).astype(np.float32)


def loudness(segments=SEGMENTS, frames=250):
    return frame_loudness(voice_samples(segments, frames), 16000, FPS)


def write_wav(path, samples, rate=16000):
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())


def tracking_of(make_faces, frames=250):
    return {"fps": FPS, "width": 640, "height": 360, "frame_count": frames, "engine": "test",
            "frames": [{"frame": f, "faces": make_faces(f)} for f in range(frames)]}


def test_mouth_opening_prefers_jaw_open_and_normalises_the_lip_gap():
    assert mouth_opening(face(1, 0, 0.05)) == ("lip_gap", pytest.approx(0.05))
    assert mouth_opening(face(1, 0, 0.05, jaw=0.3)) == ("jawOpen", 0.3)
    assert mouth_opening({"track_id": 1, "bbox": [0, 0, 10, 10]}) == (None, None)


def test_active_speakers_sample_the_frame_middle():
    active = active_speakers([{"start": 0.5, "end": 1.0, "speaker": "A"}], 30, FPS)
    assert [i for i, a in enumerate(active) if a] == list(range(12, 25))  # (12 + 0.5) / 25 = 0.5


def test_the_talking_track_is_linked_and_the_still_one_is_not():
    jitter = np.random.default_rng(5).normal(0, 0.002, 250)  # landmark noise on the still face
    tracking = tracking_of(lambda f: [face(1, 0, talking(f, SEGMENTS, "SPEAKER_00")), face(2, 300, 0.03 + jitter[f])])
    faces, record = link_speakers_to_tracks(tracking, DIARIZATION, loudness(), SETTINGS)
    validate(faces, "tracking")
    validate(record, "speakers")
    assert {s["speaker"]: s["tracks"] for s in record["speakers"]} == {"SPEAKER_00": [1], "SPEAKER_01": []}
    by_track = {t["track_id"]: t for t in record["tracks"]}
    assert by_track[2]["speaker"] is None and by_track[2]["speaking_frames"] == 0
    truth = active_speakers([s for s in SEGMENTS if s["speaker"] == "SPEAKER_00"], 250, FPS)
    said = [f["frame"] for f in faces["frames"] for x in f["faces"] if x["track_id"] == 1 and x["speaking"]]
    assert all(x["speaker"] == "SPEAKER_00" for f in faces["frames"] for x in f["faces"] if x["track_id"] == 1)
    assert [f for f in range(250) if truth[f]] == said  # speaking exactly in its speaker's turns


def test_jaw_open_is_used_when_present():
    tracking = tracking_of(lambda f: [face(1, 0, 0.03, jaw=0.1), face(2, 300, 0.03,
                                                                     jaw=talking(f, SEGMENTS, "SPEAKER_01") * 5)])
    _, record = link_speakers_to_tracks(tracking, DIARIZATION, loudness(), SETTINGS)
    assert {t["track_id"]: (t["signal"], t["speaker"]) for t in record["tracks"]} == {
        1: ("jawOpen", None), 2: ("jawOpen", "SPEAKER_01")}


def test_a_mouth_that_always_moves_is_not_linked():
    chewing = lambda f: 0.03 + 0.04 * (1 + math.sin(2 * math.pi * 4 * f / FPS))  # noqa: E731
    _, record = link_speakers_to_tracks(tracking_of(lambda f: [face(1, 0, chewing(f))]), DIARIZATION, loudness(),
                                        SETTINGS)
    assert record["tracks"][0]["speaker"] is None
    assert "does not follow" in record["tracks"][0]["reason"]


def test_a_face_talking_to_a_voice_that_is_not_heard_is_not_linked():
    """Voice-over: the face's lips move with its own words, but the audio is another speaker's."""
    unheard = [{"start": s["start"] + 0.7, "end": s["end"] + 0.4, "speaker": "X"} for s in SEGMENTS]

    def lips(f):  # syllables at 4.3 Hz in turns of a voice that is not in the audio
        t = (f + 0.5) / FPS
        return 0.03 + (0.04 * (1 + math.sin(2 * math.pi * 4.3 * t + 1)) if active_speakers(unheard, 250, FPS)[f]
                       else 0.0)
    tracking = tracking_of(lambda f: [face(1, 0, talking(f, SEGMENTS, "SPEAKER_00")), face(2, 300, lips(f))])
    faces, record = link_speakers_to_tracks(tracking, DIARIZATION, loudness(), SETTINGS)
    assert {t["track_id"]: t["speaker"] for t in record["tracks"]} == {1: "SPEAKER_00", 2: None}
    assert not any(x["speaking"] for f in faces["frames"] for x in f["faces"] if x["track_id"] == 2)


def test_one_voice_links_to_one_of_two_faces_on_screen_together():
    """Two faces follow SPEAKER_00's syllables, one of them weakly and noisily: only the better one is linked."""
    noise = np.random.default_rng(7).normal(0, 0.01, 250)

    def faces(f):
        weak = 0.03 + 0.3 * (talking(f, SEGMENTS, "SPEAKER_00") - 0.03) + noise[f]
        return [face(1, 0, talking(f, SEGMENTS, "SPEAKER_00")), face(2, 300, weak)]
    _, record = link_speakers_to_tracks(tracking_of(faces), {**DIARIZATION, "segments": SEGMENTS[::2]},
                                        loudness(SEGMENTS[::2]), SETTINGS)
    by_track = {t["track_id"]: t for t in record["tracks"]}
    assert by_track[1]["speaker"] == "SPEAKER_00" and by_track[2]["speaker"] is None
    assert by_track[2]["evidence"][0]["sync"] >= 0.2  # it would be linked alone
    assert "better at the same time" in by_track[2]["reason"]


def test_a_short_track_needs_a_stronger_correlation():
    """A moderate synchrony over 10 s links; a stronger one over 2 s does not (too few independent samples)."""
    rng = np.random.default_rng(11)
    noise = rng.normal(0, 0.045, 250)
    tracking = tracking_of(lambda f: [face(1, 0, talking(f, SEGMENTS, "SPEAKER_00") + noise[f])])
    diarization = {**DIARIZATION, "segments": SEGMENTS[::2], "speakers": ["SPEAKER_00"]}
    _, long_record = link_speakers_to_tracks(tracking, diarization, loudness(SEGMENTS[::2]), SETTINGS)
    short = {**tracking, "frames": [fr if 20 <= fr["frame"] < 70 else {**fr, "faces": []} for fr in tracking["frames"]]}
    _, short_record = link_speakers_to_tracks(short, diarization, loudness(SEGMENTS[::2]), SETTINGS)
    sync = short_record["tracks"][0]["evidence"][0]["sync"]
    assert long_record["tracks"][0]["speaker"] == "SPEAKER_00"
    assert sync >= 0.2 and short_record["tracks"][0]["speaker"] is None, short_record["tracks"]
    assert "too little evidence" in short_record["tracks"][0]["reason"]


def test_high_pass_removes_turns_and_keeps_syllables():
    """A mouth open for a whole turn (a step) leaves only its edges; 5 Hz syllables stay; gaps are skipped."""
    frames = np.arange(100)
    step = high_pass(frames, (frames >= 50) * 1.0)
    assert abs(step[:40]).max() < 1e-12 and abs(step[62:]).max() < 1e-12 and step[50] > 0.4
    syllables = np.sin(2 * np.pi * 5 * frames / FPS)
    assert np.corrcoef(high_pass(frames, syllables + frames / 50), syllables)[0, 1] > 0.99
    gappy = np.r_[frames[:30], frames[60:]]
    assert abs(high_pass(gappy, np.ones(len(gappy)))).max() < 1e-12


def test_loudness_is_measured_per_frame_and_streamed_from_the_audio(tmp_path):
    samples = voice_samples(SEGMENTS, 250)
    write_wav(tmp_path / "voice.wav", samples)
    whole = frame_loudness(samples, 16000, FPS)
    assert len(whole) == 250 and whole[:12].max() < -45 and whole[20:60].min() > -30  # hiss, then a turn
    streamed = read_loudness(tmp_path / "voice.wav", FPS, 260, block_frames=7)
    assert np.allclose(streamed[:250], whole, atol=0.1) and (streamed[250:] == -100).all()
    write_wav(tmp_path / "long.wav", np.tile(samples, 40))  # audio that outlasts the video: 400 s for 2 s
    assert np.allclose(read_loudness(tmp_path / "long.wav", FPS, 50), whole[:50], atol=0.1)


def test_one_speaker_links_to_tracks_in_two_shots_and_unseen_speakers_stay_unlinked():
    def faces(f):  # the same person in two shots (two track ids); only SPEAKER_00's turns are seen
        return [face(1 if f < 125 else 7, 0, talking(f, SEGMENTS, "SPEAKER_00"))]
    diarization = {**DIARIZATION, "segments": [*SEGMENTS, {"start": 9.6, "end": 9.9, "speaker": "SPEAKER_02"}],
                   "speakers": ["SPEAKER_00", "SPEAKER_01", "SPEAKER_02"]}
    _, record = link_speakers_to_tracks(tracking_of(faces), diarization, loudness(diarization["segments"]), SETTINGS)
    assert {s["speaker"]: s["tracks"] for s in record["speakers"]} == {
        "SPEAKER_00": [1, 7], "SPEAKER_01": [], "SPEAKER_02": []}


def test_output_is_deterministic_and_settings_are_recorded():
    tracking = tracking_of(lambda f: [face(1, 0, talking(f, SEGMENTS, "SPEAKER_00"))])
    first = link_speakers_to_tracks(tracking, DIARIZATION, loudness(), settings(min_sync=0.5))
    again = link_speakers_to_tracks(tracking, DIARIZATION, loudness(), settings(min_sync=0.5))
    assert json.dumps(first, sort_keys=True) == json.dumps(again, sort_keys=True)
    assert first[1]["settings"]["min_sync"] == 0.5


def mesh_face(track, x, gap, jaw=None, frame=0):
    """:func:`face` with 3-D landmarks rounded as the tracking step writes them, a score on detection frames."""
    out = face(track, x, gap, jaw)
    out["landmarks"] = [[round(px + 0.1 * (i % 7), 1), round(py, 1), round(-0.3 * (i % 5), 1)]
                        for i, (px, py) in enumerate(out["landmarks"])]
    if frame % 5 == 0:
        out["score"] = 0.912
    return out


def long_tracking(frames):
    """Track 1 talks in SPEAKER_00's turns; track 2 gives jawOpen only sometimes (so its lip gap is used); track 3
    has no landmarks; frames 40-59 have no face."""
    def faces(f):
        if 40 <= f < 60:
            return []
        out = [mesh_face(1, 0, talking(f, SEGMENTS, "SPEAKER_00"), frame=f),
               mesh_face(2, 300, talking(f, SEGMENTS, "SPEAKER_01"), jaw=0.2 if f % 3 else None, frame=f)]
        return out + ([{"track_id": 3, "bbox": [500.0, 0.0, 40.0, 40.0]}] if f % 4 == 0 else [])
    tracking = tracking_of(faces, frames)
    tracking.update(device="cpu", model={"landmarks": 478, "name": "test \u00e9"}, track_count=3)
    return tracking


def test_streamed_link_writes_the_bytes_of_the_full_load(tmp_path):
    """faces.json and speakers.json from the two streamed passes equal the old full-load output byte for byte."""
    tracking = long_tracking(300)  # ~9 MB: the reads cross many 1 MiB blocks
    write_json(tmp_path / "tracking.json", tracking, compact=True)
    write_json(tmp_path / "diarization.json", DIARIZATION)
    write_wav(tmp_path / "video.wav", voice_samples(SEGMENTS, 300))
    faces, record = link_speakers_to_tracks(read_json(tmp_path / "tracking.json"), DIARIZATION,
                                            read_loudness(tmp_path / "video.wav", FPS, 300), settings(max_lag=2))
    assert any(f["speaking"] for frame in faces["frames"] for f in frame["faces"])
    assert {t["track_id"]: t["signal"] for t in record["tracks"]} == {1: "lip_gap", 2: "lip_gap", 3: None}
    streamed = link_speakers_files(tmp_path / "tracking.json", tmp_path / "diarization.json",
                                   tmp_path / "video.wav", tmp_path / "faces.json", tmp_path / "speakers.json",
                                   settings(max_lag=2))
    assert streamed == record
    assert (tmp_path / "faces.json").read_text(encoding="utf-8") == dumps_json(faces, compact=True)
    assert (tmp_path / "speakers.json").read_text(encoding="utf-8") == dumps_json(record)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["diarization.json", "faces.json", "speakers.json",
                                                          "tracking.json", "video.wav"]


def ibug_face(track, gap, frame):
    """A dlib/iBUG 68-point face (3-D points) whose lips are ``gap`` face heights apart."""
    points = [[50.0 + i % 3, 50.0, round(0.1 * i, 1)] for i in range(68)]
    points[27], points[8], points[62], points[66] = [50.0, 0.0, 0.0], [50.0, 100.0, 0.0], [50.0, 70.0, 0.0], [
        50.0, 70.0 + 100.0 * gap, 0.0]
    return {"track_id": track, "bbox": [0.0, 0.0, 100.0, 100.0], "landmarks": points,
            **({"score": 0.9} if frame % 5 == 0 else {})}


def write_long_inputs(folder, frames):
    """tracking.json, diarization.json and video.wav of ``frames`` frames in ``folder``: SEGMENTS every 10 s, one
    talking iBUG face per 250 frames (a new track each time)."""
    segments = [{**s, "start": s["start"] + k * 10, "end": s["end"] + k * 10}
                for k in range(frames // 250 + 1) for s in SEGMENTS]
    write_json(folder / "diarization.json", {**DIARIZATION, "duration": frames / FPS, "segments": segments})
    write_json(folder / "tracking.json", tracking_of(
        lambda f: [ibug_face(f // 250 + 1, talking(f % 250, SEGMENTS, "SPEAKER_00"), f)], frames), compact=True)
    write_wav(folder / "video.wav", voice_samples(segments, frames))


def test_link_memory_does_not_grow_with_the_length(tmp_path, monkeypatch):
    """Python's peak allocation while linking a 10x longer video grows by a few numbers per frame, not by the file."""
    import tracemalloc

    import vidflow.jsonstream

    monkeypatch.setattr(vidflow.jsonstream, "CHUNK", 1 << 16)  # both files span many read blocks
    peaks, sizes = [], []
    for frames in (150, 1500):
        write_long_inputs(tmp_path, frames)
        tracemalloc.start()
        record = link_speakers_files(tmp_path / "tracking.json", tmp_path / "diarization.json",
                                     tmp_path / "video.wav", tmp_path / "faces.json", tmp_path / "speakers.json",
                                     SETTINGS)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        sizes.append((tmp_path / "tracking.json").stat().st_size)
        assert record["speakers"][0]["tracks"] == list(range(1, (frames + 249) // 250 + 1))
    print(f"peak {peaks[0] >> 10} KiB for {sizes[0] >> 10} KiB, {peaks[1] >> 10} KiB for {sizes[1] >> 10} KiB")
    assert peaks[1] - peaks[0] < 400 * 1350 and peaks[1] < sizes[1] / 2  # a full load: several times the file


def test_texts_set_aside_that_do_not_fit_name_the_faces_file(tmp_path):
    """The frames' texts wait in a temporary file beside faces.json: a disk too small for them is the one-line error
    of a faces.json that does not fit, and nothing is left behind."""
    import resource

    write_long_inputs(tmp_path, 1500)
    out = tmp_path / "out"
    out.mkdir()
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, hard))  # tracking.json is ~1.7 MB: EFBIG
    try:
        with pytest.raises(UserError) as err:
            link_speakers_files(tmp_path / "tracking.json", tmp_path / "diarization.json", tmp_path / "video.wav",
                                out / "faces.json", out / "speakers.json", SETTINGS)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert str(err.value) == (f"{out / 'faces.json'}: cannot write (File too large); "
                              "free disk space or fix the output folder")
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("count, upper, lower, top, chin", [(68, 62, 66, 27, 8), (66, 60, 64, 27, 8),
                                                            (468, 13, 14, 10, 152)])
def test_lip_gap_uses_the_points_of_each_engines_landmark_scheme(count, upper, lower, top, chin):
    """dlib/eos (iBUG 68), OpenSeeFace (66: iBUG without the outer mouth corners), the MediaPipe mesh."""
    points = [[50.0, 50.0]] * count
    points[upper], points[lower], points[top], points[chin] = [50, 60], [50, 66], [50, 20], [50, 100]
    assert mouth_opening({"bbox": [0, 0, 100, 100], "landmarks": points}) == ("lip_gap", 6 / 80)
    assert mouth_opening({"bbox": [0, 0, 100, 100], "landmarks": points[:30]}) == (None, None)


OVERLAPPED = [{"start": 0.5, "end": 3.0, "speaker": "SPEAKER_00"}, {"start": 2.0, "end": 5.0, "speaker": "SPEAKER_01"},
              {"start": 5.5, "end": 7.5, "speaker": "SPEAKER_00"}, {"start": 6.5, "end": 9.5, "speaker": "SPEAKER_01"}]


def test_two_faces_speak_at_once_when_their_speakers_overlap():
    diarization = {"duration": 10.0, "speakers": ["SPEAKER_00", "SPEAKER_01"], "segments": OVERLAPPED}
    tracking = tracking_of(lambda f: [face(1, 0, talking(f, OVERLAPPED, "SPEAKER_00")),
                                      face(2, 300, talking(f, OVERLAPPED, "SPEAKER_01"))])
    faces, record = link_speakers_to_tracks(tracking, diarization, loudness(OVERLAPPED), SETTINGS)
    validate(faces, "tracking")
    validate(record, "speakers")
    assert {s["speaker"]: s["tracks"] for s in record["speakers"]} == {"SPEAKER_00": [1], "SPEAKER_01": [2]}
    active = active_speakers(OVERLAPPED, 250, FPS)
    both = [f for f in range(250) if len(active[f]) == 2]
    assert len(both) == 50  # 2.0-3.0 s and 6.5-7.5 s
    for frame in faces["frames"]:
        speaking = {x["track_id"]: x["speaker"] for x in frame["faces"] if x["speaking"]}
        expected = {1: "SPEAKER_00"} if "SPEAKER_00" in active[frame["frame"]] else {}
        expected |= {2: "SPEAKER_01"} if "SPEAKER_01" in active[frame["frame"]] else {}
        assert speaking == expected, frame["frame"]
    # the evidence comes from the frames where one voice is heard: there the other voice does not follow the mouth
    alone = [f for f in range(250) if len(active[f]) == 1]
    for track in record["tracks"]:
        for entry in track["evidence"]:
            assert entry["frames"] == sum(entry["speaker"] in active[f] for f in alone)
            if entry["speaker"] != track["speaker"]:
                assert entry["sync"] < 0.1  # with the overlapped frames: 0.2, both mouths in the mix


def test_label_text_splices_or_encodes_the_frame_whole():
    """A frame's compact text gets each face's speaker and speaking before its track_id (the same text as encoding
    the labelled frame); a face with a key that sorts after "speaker", or a text that is not compact, still gives
    the labelled frame's content."""
    linker = Linker.__new__(Linker)
    linker.links, linker.frame_count = {1: "SPEAKER_00", 2: None}, 10
    linker.active, linker.speaking_frames = [{"SPEAKER_00"}] * 10, {1: 0, 2: 0}
    frame = {"frame": 3, "faces": [{"bbox": [1, 2, 3, 4], "landmarks": [[1.5, 2.0]], "track_id": 1},
                                   {"bbox": [5, 6, 7, 8], "score": 0.9, "track_id": 2}]}
    labelled = {**frame, "faces": [{**frame["faces"][0], "speaker": "SPEAKER_00", "speaking": True},
                                   {**frame["faces"][1], "speaker": None, "speaking": False}]}
    assert linker.label_text(frame, compact(frame)) == compact(labelled)
    assert json.loads(linker.label_text(frame, json.dumps(frame, indent=1))) == labelled
    odd = {**frame, "faces": [{**face, "state": "x"} for face in frame["faces"]]}
    assert linker.label_text(odd, compact(odd)) == compact(
        {**odd, "faces": [{**face, **{k: v for k, v in new.items() if k in ("speaker", "speaking")}}
                          for face, new in zip(odd["faces"], labelled["faces"])]})
    assert linker.speaking_frames == {1: 3, 2: 0}
