"""Step 2 on real-world sources: audio that does not start with the first frame, and damaged bytes.

Speech is placed at known times against the frames (espeak-ng, media_factory) and found again in
``video.mp4``'s audio decoded from 0 the way the diarization step decodes it; damaged clips get 20 kB
of seeded garbage in their middle. One real workflow run checks diarization turns and frame counts.
"""

import json
import logging
import subprocess

import numpy as np
import pytest
from media_clips import make_video
from media_shots import Shot
from media_speech import layout_turns, make_speech, synthesize
from test_convert import SETTINGS, assert_25fps_cfr, convert, video_md5

from conftest import make_testsrc, require_binaries, run_snakemake
from steps.convert import pipeline
from steps.convert.pipeline import ConvertSettings
from steps.convert.source import decode_errors, measure_sync
from steps.diarization.pipeline import SAMPLE_RATE, read_audio
from vidflow.errors import UserError
from vidflow.media import ffprobe, summarize

# --------------------------------------------------------------------------- audio/video sync

SPEECH_AT = 1.0  # s into the speech track
LINE = ("en-us+m3", "Good morning and welcome to the programme.")


@pytest.fixture(scope="module")
def sync_media(tmp_path_factory):
    """Video-only clips (25 fps with B-frames, 30 fps) and a speech track with one utterance at SPEECH_AT."""
    require_binaries("ffmpeg", "espeak-ng")
    folder = tmp_path_factory.mktemp("sync")
    make_speech(folder / "speech.wav", [(SPEECH_AT, *LINE)], duration=6)
    for fps in (25, 30):
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi",
                        "-i", f"testsrc2=size=320x180:rate={fps}:duration=7",
                        "-c:v", "libx264", "-preset", "veryfast", "-bf", "2", "-pix_fmt", "yuv420p",
                        str(folder / f"video{fps}.mp4")], check=True)
    return folder, synthesize(*LINE).astype(np.float32)


def locate(signal, template):
    """Sample index where ``template`` best matches ``signal`` (FFT cross-correlation)."""
    size = 1 << (len(signal) + len(template)).bit_length()
    corr = np.fft.irfft(np.fft.rfft(signal, size) * np.conj(np.fft.rfft(template, size)), size)
    return int(np.argmax(corr[:len(signal) - len(template) + 1]))


# name: (container, fps, video -itsoffset, audio -itsoffset, extra mux args, where the speech is against frame 0,
#        what conversion does)
SYNC_CASES = {
    "late": ("mp4", 25, 0, 2.978, [], SPEECH_AT + 2.978, ("copy_video", "padded")),
    "early": ("mp4", 25, 0.5, 0, [], SPEECH_AT - 0.5, ("copy_video", "trimmed")),
    "negative": ("mkv", 25, 0, -0.5, ["-avoid_negative_ts", "disabled"], SPEECH_AT - 0.5, ("copy_video", "trimmed")),
    # an MP4 edit list skips the first 0.5 s of audio: ffprobe says it starts at 0 and decoders agree
    "edit_list": ("mp4", 25, 0, -0.5, [], SPEECH_AT - 0.5, ("remux", "none")),
    "late_30fps": ("mp4", 30, 0, 1.5, [], SPEECH_AT + 1.5, ("encode", "padded")),
}


@pytest.mark.parametrize("case", SYNC_CASES)
def test_audio_starts_with_frame_0_in_video_mp4(sync_media, tmp_path, case):
    """Late, early and negative audio: the speech lands where it was against the frames (decoded from 0)."""
    folder, utterance = sync_media
    container, fps, video_offset, audio_offset, extra, truth, (mode, action) = SYNC_CASES[case]
    src = tmp_path / f"{case}.{container}"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-itsoffset", str(video_offset),
                    "-i", str(folder / f"video{fps}.mp4"),
                    "-itsoffset", str(audio_offset), "-i", str(folder / "speech.wav"), "-map", "0:v", "-map", "1:a",
                    "-c:v", "copy", "-c:a", "aac", "-b:a", "96k", *extra, str(src)], check=True)
    starts = [s.get("start_time") for s in ffprobe(src)["streams"]]
    if case == "negative":
        assert float(starts[1]) < 0, starts
    samples, _ = read_audio(src)
    before = locate(samples, utterance) / SAMPLE_RATE  # a remux that keeps the offset puts the speech here
    dst, record = convert(tmp_path, src)
    assert (record["mode"], record["audio_sync"]["action"]) == (mode, action), record
    samples, _ = read_audio(dst)  # as the diarization step decodes it: sample 0 = time 0
    assert abs(locate(samples, utterance) / SAMPLE_RATE - truth) < 0.02, (before, truth)
    out = measure_sync(dst)
    assert out["video_start"] == 0 and abs(out["offset"]) <= 0.001, out
    if mode == "copy_video":
        assert video_md5(dst) == video_md5(src)
        assert abs(abs(record["audio_sync"]["offset"]) - abs(truth - before)) < 0.03, record["audio_sync"]
    assert_25fps_cfr(dst, 7.0)  # the 7 s of video, every frame kept
    again, _ = convert(tmp_path / "again", src)
    assert again.read_bytes() == dst.read_bytes()


# --------------------------------------------------------------------------- damaged sources


def corrupt_middle(src, dst, size=20_000, seed=17):
    """Copy ``src`` with ``size`` bytes of seeded garbage from its middle; returns the garbage's byte range."""
    data = bytearray(src.read_bytes())
    start = len(data) // 2
    data[start:start + size] = np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()
    dst.write_bytes(bytes(data))
    return start, start + size


def packet_times(path, stream, first, last):
    """pts (s) of the packets of ``stream`` whose bytes overlap ``[first, last)``."""
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", stream,
                          "-show_entries", "packet=pts_time,pos,size",
                          "-of", "csv=p=0", str(path)], capture_output=True, text=True, check=True).stdout
    rows = [line.split(",") for line in out.split()]
    return [float(t) for t, size, pos in rows if int(pos) < last and int(pos) + int(size) > first]


def frame_counts(path):
    """Frames of the first video stream: container (nb_frames), ffprobe -count_frames, ffmpeg's decoder."""
    probe = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                            "stream=nb_frames,nb_read_frames", "-of", "csv=p=0", str(path)],
                           capture_output=True, text=True, check=True).stdout.strip().split(",")
    framemd5 = subprocess.run(["ffmpeg", "-v", "quiet", "-i", str(path), "-map", "0:v:0", "-f", "framemd5", "-"],
                              capture_output=True, text=True, check=False).stdout
    decoded = sum(1 for line in framemd5.splitlines() if line and not line.startswith("#"))
    return [int(probe[0]), int(probe[1]), decoded]


@pytest.fixture(scope="module")
def damaged_clip(tmp_path_factory):
    """A 12 s 25 fps H.264/AAC clip with 20 kB of garbage in its middle, the clean clip and the garbage's bytes.

    The audio is seeded noise, so that cross-correlation finds any stretch of it exactly.
    """
    require_binaries("ffmpeg")
    folder = tmp_path_factory.mktemp("damaged")
    clean = folder / "clean.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=12",
                    "-f", "lavfi", "-i", "anoisesrc=seed=5:amplitude=0.3:sample_rate=48000:duration=12",
                    "-c:v", "libx264", "-preset", "fast", "-pix_fmt", "yuv420p", "-c:a", "aac", str(clean)], check=True)
    return folder / "damaged.mp4", clean, corrupt_middle(clean, folder / "damaged.mp4")


def test_damaged_source_is_reencoded_with_one_frame_count_and_the_damage_recorded(damaged_clip, tmp_path):
    src, clean, (first, last) = damaged_clip
    assert len(set(frame_counts(src))) > 1, "fixture should lose frames when decoded"
    dst, record = convert(tmp_path, src)
    assert record["mode"] == "encode" and record["reasons"][0].endswith("decode errors"), record["reasons"]
    damage = record["damage"]
    assert damage["errors"] >= 1 and damage["messages"] and not any("0x" in m for m in damage["messages"])
    hit = packet_times(clean, "v:0", first, last)
    video = [(r["start"], r["end"]) for r in damage["ranges"] if r["stream"] == "video"]
    assert hit and all(any(lo <= t <= hi for lo, hi in video) for t in hit), (hit, video)
    assert sum(hi - lo for lo, hi in video) < 12 / 2, "the damage is in the middle, not everywhere"
    assert frame_counts(dst) == [300, 300, 300]
    assert decode_errors(dst, 2) == []
    again, _ = convert(tmp_path / "again", src)
    assert again.read_bytes() == dst.read_bytes()
    assert (again.parent / "video.json").read_bytes() == (dst.parent / "video.json").read_bytes()


def test_a_video_encoded_anyway_is_checked_by_its_encode(tmp_path, caplog):
    """A 30 fps source is re-encoded whatever a decode check finds, so its encode is the check: a clean one gets
    the bytes that checking first gives; a damaged one is checked once its encode writes errors, then concealed."""
    clean = tmp_path / "clean30.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30:duration=6",
                    "-f", "lavfi", "-i", "anoisesrc=seed=5:amplitude=0.3:sample_rate=48000:duration=6",
                    "-c:v", "libx264", "-preset", "fast", "-pix_fmt", "yuv420p", "-c:a", "aac", str(clean)], check=True)
    silent = tmp_path / "silent30.mp4"  # garbage in the video only: the audio's own check finds nothing
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(clean), "-c", "copy", "-an", str(silent)], check=True)
    corrupt_middle(silent, tmp_path / "damaged30.mp4", size=10_000)
    fast = {}
    for name in ("clean", "damaged"):
        thirty = tmp_path / f"{name}30.mp4"
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="convert"):
            fast[name] = convert(tmp_path / name, thirty)
        checked = [r.message for r in caplog.records if r.message.startswith(("decode check", "the encode wrote"))]
        assert checked[0].startswith("decode check (audio only)"), checked
        if name == "clean":
            assert len(checked) == 1 and fast[name][1]["damage"] is None
            errors, starts = pipeline._inspect(thirty, summarize(ffprobe(thirty)), 2)
            full = tmp_path / "full" / "video.mp4"
            record = pipeline._convert(thirty, full, full.with_suffix(".json"), ConvertSettings(**SETTINGS), 2, 0,
                                       summarize(ffprobe(thirty)), errors, starts, checked=True)
            assert errors == [] and record == fast[name][1] and full.read_bytes() == fast[name][0].read_bytes()
        else:
            assert checked[1].startswith("the encode wrote errors") and checked[2].startswith("decode check:"), checked
    dst, record = fast["damaged"]
    assert record["mode"] == "encode" and record["damage"]["errors"] >= 1, record["reasons"]
    assert "frame rate 30 (r=30)" in record["reasons"] and record["reasons"][0].endswith("decode errors")
    assert decode_errors(dst, 2, audio=False) == []


def test_damaged_audio_keeps_its_place(damaged_clip, tmp_path):
    """Lost AAC frames are filled with silence: the audio after the damage still matches the video's time."""
    src, clean, _ = damaged_clip
    dst, record = convert(tmp_path, src)
    assert any(r["stream"] == "audio" for r in record["damage"]["ranges"]), record["damage"]["ranges"]
    clean_audio, _ = read_audio(clean)
    fixed, _ = read_audio(dst)
    broken, _ = read_audio(src)
    tail = clean_audio[-3 * SAMPLE_RATE:-SAMPLE_RATE]  # 2 s after the damage
    assert len(broken) < len(clean_audio) - SAMPLE_RATE // 100, "fixture should drop audio frames"
    assert abs(len(fixed) - len(clean_audio)) <= SAMPLE_RATE // 100
    assert abs(locate(fixed, tail) - (len(clean_audio) - 3 * SAMPLE_RATE)) <= SAMPLE_RATE // 100


def test_undecodable_video_fails_alone_with_one_line(tmp_path):
    src = make_testsrc(tmp_path / "clean.mp4", seconds=2, fps=25, audio=False)
    data = bytearray(src.read_bytes())
    moov = data.index(b"moov") - 4  # the sample tables stay readable; every frame's bytes become garbage
    data[64:moov] = np.random.default_rng(3).integers(0, 256, moov - 64, dtype=np.uint8).tobytes()
    bad = tmp_path / "garbage.mp4"
    bad.write_bytes(bytes(data))
    with pytest.raises(UserError) as err:
        convert(tmp_path, bad)
    assert str(err.value).startswith(f"{bad}: no video frame can be decoded (") and "\n" not in str(err.value)
    assert len(str(err.value)) < 300, err.value
    assert not (tmp_path / "out" / "video.mp4").exists()


# --------------------------------------------------------------------------- through the workflow

VOICES = ("en-us+m3", "en+f3")
LINES = ["Good morning and welcome to the programme.", "Thank you very much, it is good to be here.",
         "Tell us about your latest research project.", "We study how people take turns in conversation."]
LATE = 2.978  # s: the audio of a broadcast capture starts this much after its first frame


@pytest.fixture(scope="module")
def workflow_sources(tmp_path_factory):
    """Run the workflow once on a dialogue whose audio starts LATE s after the video and on a 30 s clip
    with 20 kB of garbage in its middle; returns (work folder, speech truth, corrupted packet times)."""
    require_binaries("ffmpeg", "espeak-ng")
    folder = tmp_path_factory.mktemp("workflow_sources")
    inputs = folder / "input"
    inputs.mkdir()
    turns = layout_turns([(VOICES[i % 2], text) for i, text in enumerate(LINES)], start=0.5, gap=0.7)
    speech = make_speech(folder / "speech.wav", turns, duration=turns[-1][0] + 4)
    frames = int(round((speech["duration"] + LATE + 1) * 25))
    make_video(folder / "frames.mp4", [Shot("blank", frames)])
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(folder / "frames.mp4"), "-itsoffset", str(LATE), "-i",
                    str(folder / "speech.wav"), "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac",
                    str(inputs / "late.mp4")], check=True)
    make_video(folder / "clean.mp4", [Shot("astronaut", 375, zoom=(1.0, 1.3)), Shot("coffee", 375)])
    first, last = corrupt_middle(folder / "clean.mp4", inputs / "corrupt.mp4")
    hit = packet_times(folder / "clean.mp4", "v:0", first, last)
    targets = ["results/_loose/late/diarization.json", "results/_loose/corrupt/scenes.json",
               "results/_loose/corrupt/tracking.json"]
    run_snakemake(folder, *targets, config={"input_dir": str(inputs)})
    return folder / "results" / "_loose", speech["segments"], hit


def test_late_audio_gives_speaker_turns_at_their_frames(workflow_sources):
    results, truth, _ = workflow_sources
    record = json.loads((results / "late" / "video.json").read_text())
    # decoders output the AAC encoder's priming (1024 samples: 64 ms at 16 kHz) just before the speech track
    assert record["audio_sync"]["action"] == "padded" and 0 <= LATE - record["audio_sync"]["offset"] <= 0.065
    segments = json.loads((results / "late" / "diarization.json").read_text())["segments"]
    starts = [s["start"] for s in segments]
    assert len(segments) == len(truth), segments
    for turn, found in zip(truth, segments):  # the real diarization step, against the frames' time
        assert abs(found["start"] - (turn["start"] + LATE)) < 0.1, (turn, found, starts)
        assert abs(found["end"] - (turn["end"] + LATE)) < 0.3, (turn, found)
    assert len({s["speaker"] for s in segments}) == 2


def test_corrupt_middle_gives_one_frame_count_to_every_step(workflow_sources):
    results, _, hit = workflow_sources
    record = json.loads((results / "corrupt" / "video.json").read_text())
    scenes = json.loads((results / "corrupt" / "scenes.json").read_text())
    tracking = json.loads((results / "corrupt" / "tracking.json").read_text())
    assert record["mode"] == "encode" and record["damage"]["errors"] > 0
    assert record["output"]["video"]["nb_frames"] == scenes["frame_count"] == tracking["frame_count"] == 750
    assert frame_counts(results / "corrupt" / "video.mp4") == [750, 750, 750]
    video = [(r["start"], r["end"]) for r in record["damage"]["ranges"] if r["stream"] == "video"]
    assert hit and all(any(lo <= t <= hi for lo, hi in video) for t in hit), (hit, video)
    log = (results.parent.parent / "logs" / "convert" / "_loose" / "corrupt.log").read_text()
    assert "decode error(s), damaged: video " in log
