"""Content-level tests of tools/media_factory.py (tiny clips, a few seconds in all)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import wave
import zipfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from media_clips import make_video  # noqa: E402
from media_shots import ASTRONAUT_FACE_BOX, Shot  # noqa: E402
from media_speech import check_voice, make_silence, make_speech, mix_speech  # noqa: E402

if shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
    pytest.skip("ffmpeg/ffprobe not on PATH: media_factory needs them", allow_module_level=True)

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not on PATH")

W, H = 160, 90
VOICE_A, VOICE_B = "en-us+m3", "en+f3"  # male US, female British


# --------------------------------------------------------------------------- helpers


def ffprobe(path, *args) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-of", "json", *args, str(path)],
                         check=True, capture_output=True).stdout
    return json.loads(out)


def gray_frames(path, width=W, height=H) -> np.ndarray:
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "gray", "-"],
                         check=True, capture_output=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, height, width).astype(np.float32)


def rgb_frame(path, index, width=W, height=H) -> np.ndarray:
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-vf", f"select=eq(n\\,{index})",
                          "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         check=True, capture_output=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(height, width, 3)


def decoded_audio(path, sample_rate=16000) -> np.ndarray:
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-vn", "-ac", "1", "-ar", str(sample_rate),
                          "-f", "s16le", "-"], check=True, capture_output=True).stdout
    return np.frombuffer(raw, "<i2").astype(np.float32) / 32768


def read_wav(path) -> tuple[np.ndarray, int]:
    with wave.open(str(path)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768, w.getframerate()


def median_f0(x: np.ndarray, rate: int) -> float:
    """Median pitch (Hz) of the loud 40 ms frames, by autocorrelation."""
    size, f0s = int(0.04 * rate), []
    for i in range(0, len(x) - size, size // 2):
        frame = x[i : i + size] - x[i : i + size].mean()
        if rms(frame) < 0.05:
            continue
        ac = np.correlate(frame, frame, "full")[size - 1 :]
        lo, hi = rate // 400, rate // 60
        lag = lo + int(np.flatnonzero(ac[lo:hi] > 0.85 * ac[lo:hi].max())[0])
        f0s.append(rate / lag)
    return float(np.median(f0s))


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x)))) if x.size else 0.0


def iou(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    return inter / (aw * ah + bw * bh - inter)


def sha(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# --------------------------------------------------------------------------- fixtures

CUT_SHOTS = [Shot("astronaut", 15, zoom=(1.2, 1.4), pan=(0.46, 0.3, 0.5, 0.3)),
             Shot("coffee", 10, zoom=(1.1, 1.1), pan=(0.47, 0.5, 0.53, 0.5))]


@pytest.fixture(scope="module")
def cut_clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("cut") / "cut.mp4"
    return path, make_video(path, CUT_SHOTS, size=(W, H))


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    path = tmp_path_factory.mktemp("speech") / "speech.wav"
    truth = make_speech(path, [(0.2, VOICE_A, "Hello there."), (1.3, VOICE_B, "Good morning.")], 2.4)
    return path, truth


# --------------------------------------------------------------------------- video


def test_frame_count_and_fps(cut_clip):
    path, truth = cut_clip
    entries = "stream=nb_read_frames,r_frame_rate,width,height,pix_fmt,codec_name"
    stream = ffprobe(path, "-count_frames", "-select_streams", "v:0", "-show_entries", entries)["streams"][0]
    assert int(stream["nb_read_frames"]) == truth["frame_count"] == 25
    assert stream["r_frame_rate"] == "25/1"
    assert (stream["width"], stream["height"]) == (W, H) == (truth["width"], truth["height"])
    assert (stream["codec_name"], stream["pix_fmt"]) == ("h264", "yuv420p")
    assert truth["cuts"] == [15]
    assert truth["shots"] == [{"start_frame": 0, "end_frame": 14, "image": "astronaut"},
                              {"start_frame": 15, "end_frame": 24, "image": "coffee"}]


def test_30fps(tmp_path):
    truth = make_video(tmp_path / "a.mp4", [Shot("rocket", 12)], fps=30, size=(W, H))
    stream = ffprobe(tmp_path / "a.mp4", "-select_streams", "v:0",
                     "-show_entries", "stream=r_frame_rate,nb_frames")
    assert stream["streams"][0]["r_frame_rate"] == "30/1"
    assert int(stream["streams"][0]["nb_frames"]) == truth["frame_count"] == 12
    assert truth["duration"] == pytest.approx(0.4)


def test_cut_is_visible_and_shot_is_smooth(cut_clip):
    path, truth = cut_clip
    frames = gray_frames(path)
    diffs = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2))  # diffs[i]: frame i -> i+1
    cut = truth["cuts"][0]
    within = np.delete(diffs, cut - 1)
    assert diffs[cut - 1] > 30
    assert within.max() < diffs[cut - 1] / 4
    assert within.min() > 0.1, "camera should move: consecutive frames differ slightly"


def test_face_boxes_inside_frame_and_growing_with_zoom(cut_clip):
    _, truth = cut_clip
    faces = truth["faces"]
    assert len(faces) == truth["frame_count"]
    for frame_faces in faces:
        for face in frame_faces:
            x, y, w, h = face["bbox"]
            assert 0 <= x and 0 <= y and w > 0 and h > 0 and x + w <= W and y + h <= H
    assert all(len(f) == 1 for f in faces[:15]) and all(not f for f in faces[15:])
    first, last = faces[0][0]["bbox"], faces[14][0]["bbox"]
    assert last[2] * last[3] > first[2] * first[3] * 1.25  # zoom 1.2 -> 1.4: area x 1.36


def test_face_box_covers_a_real_face(cut_clip):
    """scikit-image's LBP face detector agrees with the truth box; the box is skin-coloured."""
    from skimage import data
    from skimage.feature import Cascade

    path, truth = cut_clip
    frame = rgb_frame(path, 7)
    box = truth["faces"][7][0]["bbox"]
    detector = Cascade(data.lbp_frontal_face_cascade_filename())
    found = detector.detect_multi_scale(img=frame, scale_factor=1.15, step_ratio=1,
                                        min_size=(20, 20), max_size=(90, 90))
    boxes = [(d["c"], d["r"], d["width"], d["height"]) for d in found]
    assert max((iou(box, b) for b in boxes), default=0) > 0.5, (box, boxes)
    x, y, w, h = box
    r, g, b = frame[y : y + h, x : x + w].reshape(-1, 3).mean(axis=0)
    assert r > g > b and r - b > 30


def test_astronaut_face_box_constant():
    from skimage import data
    from skimage.feature import Cascade

    img = data.astronaut()
    found = Cascade(data.lbp_frontal_face_cascade_filename()).detect_multi_scale(
        img=img, scale_factor=1.2, step_ratio=1, min_size=(60, 60), max_size=(200, 200))
    assert max(iou(ASTRONAUT_FACE_BOX, (d["c"], d["r"], d["width"], d["height"])) for d in found) > 0.6


def test_pair_blank_and_small_face(tmp_path):
    shots = [Shot("astronaut_pair", 3), Shot("blank", 3), Shot("astronaut", 3, face_scale=0.1)]
    truth = make_video(tmp_path / "p.mp4", shots, size=(320, 180))
    pair = [f["bbox"] for f in truth["faces"][0]]
    assert len(pair) == 2 and pair[0][0] + pair[0][2] <= pair[1][0]  # side by side
    assert pair[0][2:] == pair[1][2:]  # same size (mirror image)
    assert truth["faces"][3] == []
    (small,) = truth["faces"][6]
    assert small["bbox"][3] == pytest.approx(18, abs=1)  # 10 % of 180 px


def test_faces_leaving_the_frame_are_dropped(tmp_path):
    # Zoomed in on the right half of the pair: only the mirrored face is visible.
    shot = Shot("astronaut_pair", 2, zoom=(2, 2), pan=(0.75, 0.3, 0.75, 0.3))
    truth = make_video(tmp_path / "z.mp4", [shot], size=(W, H))
    assert len(truth["faces"][0]) == 1


def test_dissolve(tmp_path):
    path = tmp_path / "d.mp4"
    truth = make_video(path, [Shot("astronaut", 12), Shot("coffee", 12)], size=(W, H),
                       transition="dissolve:6", crf=18)
    assert truth["cuts"] == [] and truth["transitions"] == [[9, 14]]
    frames = gray_frames(path)
    diffs = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2))
    hard = np.abs(frames[8] - frames[15]).mean()
    assert diffs.max() < hard / 3  # change is spread over the dissolve
    mid = frames[11]
    assert np.abs(mid - frames[8]).mean() < hard and np.abs(mid - frames[15]).mean() < hard


def test_vfr_has_variable_packet_durations(tmp_path):
    path = tmp_path / "v.mp4"
    truth = make_video(path, [Shot("chelsea", 12)], size=(W, H), vfr=True)
    packets = ffprobe(path, "-select_streams", "v:0", "-show_entries", "packet=pts_time,duration_time")["packets"]
    durations = {round(float(p["duration_time"]), 4) for p in packets}
    assert len(durations) >= 2, durations
    pts = sorted(float(p["pts_time"]) for p in packets)
    assert pts == pytest.approx(truth["frame_times"], abs=1e-3)
    assert len(set(np.round(np.diff(pts), 4))) >= 2


def test_rotation_metadata(tmp_path):
    path = tmp_path / "r.mp4"
    truth = make_video(path, [Shot("rocket", 3)], size=(W, H), rotate=90)
    stream = ffprobe(path, "-select_streams", "v:0", "-show_entries", "stream=width,height:stream_side_data")
    side = stream["streams"][0]["side_data_list"]
    assert any(s.get("rotation") in (-90, 270) for s in side)
    assert truth["rotation"] == 90 and truth["display_size"] == [H, W]
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-frames:v", "1", "-f", "rawvideo",
                          "-pix_fmt", "gray", "-"], check=True, capture_output=True).stdout
    assert len(raw) == W * H  # autorotated decode: still W*H pixels, now H wide


def test_video_is_deterministic(tmp_path):
    a = make_video(tmp_path / "a.mp4", CUT_SHOTS[:1], size=(W, H))
    b = make_video(tmp_path / "b.mp4", CUT_SHOTS[:1], size=(W, H))
    assert a == b and sha(tmp_path / "a.mp4") == sha(tmp_path / "b.mp4")


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError):
        make_video(tmp_path / "x.mp4", [Shot("no_such_photo", 2)], size=(W, H))
    with pytest.raises(ValueError):
        make_video(tmp_path / "x.mp4", [Shot("astronaut", 2)], size=(161, 90))
    with pytest.raises(ValueError):
        make_video(tmp_path / "x.mp4", [Shot("coffee", 2, face_scale=0.1)], size=(W, H))


# --------------------------------------------------------------------------- audio


@needs_espeak
def test_speech_energy_matches_segments(speech):
    path, truth = speech
    samples, rate = read_wav(path)
    assert rate == truth["sample_rate"] == 16000
    assert len(samples) == round(truth["duration"] * rate) == 2.4 * rate
    segments = truth["segments"]
    assert [s["speaker"] for s in segments] == [VOICE_A, VOICE_B]
    assert segments[0]["start"] == 0.2 and segments[1]["start"] == 1.3
    edges = [0.0] + [t for s in segments for t in (s["start"], s["end"])] + [truth["duration"]]
    for k, (a, b) in enumerate(zip(edges, edges[1:])):
        part = samples[round(a * rate) : round(b * rate)]
        if k % 2:  # inside a segment
            assert rms(part) > 0.05, (a, b)
            assert 0.3 < b - a < 1.5
        else:  # gap
            assert rms(part) == 0.0, (a, b)


@needs_espeak
def test_two_voices_differ(speech):
    path, truth = speech
    samples, rate = read_wav(path)

    def pitch(seg):
        return median_f0(samples[round(seg["start"] * rate) : round(seg["end"] * rate)], rate)

    male, female = truth["segments"]
    assert pitch(male) < 150 < pitch(female)


@needs_espeak
def test_ignored_voice_variant_is_rejected():
    with pytest.raises(ValueError, match="ignores the variant"):
        check_voice("en-gb+f3")
    check_voice(VOICE_A)
    check_voice(VOICE_B)


@needs_espeak
def test_speech_muxed_at_time_zero(tmp_path, speech):
    wav, truth = speech
    path = tmp_path / "s.mp4"
    video = make_video(path, [Shot("astronaut", 60)], size=(W, H), audio=wav)  # 2.4 s
    streams = ffprobe(path, "-show_entries", "stream=codec_type,codec_name,start_time,duration")["streams"]
    audio = next(s for s in streams if s["codec_type"] == "audio")
    assert audio["codec_name"] == "aac"
    assert float(audio["start_time"]) == 0.0
    assert float(audio["duration"]) == pytest.approx(video["duration"], abs=0.03)
    samples = decoded_audio(path)
    assert len(samples) / 16000 == pytest.approx(2.4, abs=0.07)  # decoder may emit the last AAC frame whole
    for seg in truth["segments"]:
        inside = samples[round((seg["start"] + 0.05) * 16000) : round((seg["end"] - 0.05) * 16000)]
        assert rms(inside) > 0.05
    first, second = truth["segments"]
    gap = samples[round((first["end"] + 0.08) * 16000) : round((second["start"] - 0.08) * 16000)]
    lead = samples[: round((truth["segments"][0]["start"] - 0.08) * 16000)]
    assert rms(gap) < 0.005 and rms(lead) < 0.005


@needs_espeak
def test_speech_rejects_overlap_and_overflow(tmp_path):
    with pytest.raises(ValueError, match="overlap"):
        make_speech(tmp_path / "o.wav", [(0.0, VOICE_A, "Hello there."), (0.3, VOICE_B, "Hi.")], 3.0)
    with pytest.raises(ValueError, match="after"):
        make_speech(tmp_path / "o.wav", [(0.9, VOICE_A, "Hello there.")], 1.0)


def wav_samples(path):
    with wave.open(str(path)) as handle:
        return np.frombuffer(handle.readframes(handle.getnframes()), dtype="<i2").astype(np.int32)


@needs_espeak
def test_mixed_speech_lets_two_voices_talk_at_once(tmp_path):
    turns = [(0.0, VOICE_A, "Hello there."), (0.3, VOICE_B, "Hi."), (1.5, VOICE_B, "Good morning.")]
    truth = mix_speech(tmp_path / "m.wav", turns, 3.0)
    alone = {voice: make_speech(tmp_path / f"{voice}.wav", [t for t in turns if t[1] == voice], 3.0)["segments"]
             for voice in (VOICE_A, VOICE_B)}
    assert truth["segments"] == [alone[VOICE_A][0], alone[VOICE_B][0], alone[VOICE_B][1]]
    assert truth["segments"][1]["start"] == 0.3 < truth["segments"][0]["end"]  # the second voice talks over the first
    mixed, a, b = (wav_samples(p) for p in (tmp_path / "m.wav", truth["tracks"][VOICE_A], truth["tracks"][VOICE_B]))
    assert np.array_equal(mixed, np.clip(a + b, -32768, 32767)) and np.count_nonzero(a * b) > 1000


@needs_espeak
def test_speech_is_deterministic(tmp_path):
    turns = [(0.1, VOICE_B, "Good morning.")]
    assert make_speech(tmp_path / "a.wav", turns, 1.5) == make_speech(tmp_path / "b.wav", turns, 1.5)
    assert sha(tmp_path / "a.wav") == sha(tmp_path / "b.wav")


def test_silence(tmp_path):
    truth = make_silence(tmp_path / "s.wav", 0.5, sample_rate=8000)
    samples, rate = read_wav(tmp_path / "s.wav")
    assert rate == 8000 and len(samples) == 4000 and not samples.any()
    assert truth == {"sample_rate": 8000, "duration": 0.5, "segments": []}


# --------------------------------------------------------------------------- bundled demo


def test_demo_archive_matches_truth(tmp_path):
    demo = ROOT / "resources" / "demo"
    if not (demo / "truth.json").exists():
        pytest.skip("resources/demo not built (python tools/build_demo.py)")
    truth = json.loads((demo / "truth.json").read_text())
    with zipfile.ZipFile(demo / truth["archive"]) as zf:
        names = zf.namelist()
        assert set(truth["video_members"] + truth["non_video_members"]) == set(names)
        for name in truth["video_members"]:
            clip = truth["clips"][name]
            zf.extract(name, tmp_path)
            path = tmp_path / name
            assert sha(path) == clip["sha256"]
            stream = ffprobe(path, "-select_streams", "v:0", "-show_entries", "stream=r_frame_rate,nb_frames")
            assert stream["streams"][0]["r_frame_rate"] == f"{clip['fps']}/1"
            assert int(stream["streams"][0]["nb_frames"]) == clip["frame_count"]
