"""Step 2: conversion to constant 25 fps H.264/AAC (decisions unit-tested, encodes checked with ffprobe)."""

import json
import logging
import os
import subprocess

import numpy as np
import pytest
from conftest import make_testsrc, require_binaries, run_snakemake
from steps.convert import choose_encoder, convert_video, ffmpeg_has_encoder, plan_conversion, sync_record
from vidflow.errors import UserError
from steps.convert_source import decode_errors, measure_sync
from steps.diarization import SAMPLE_RATE, read_audio
from vidflow.media import ffmpeg_reason, ffprobe, packet_durations, summarize

import media_factory as mf

SETTINGS = {"encoder": "auto", "crf": 23, "preset": "ultrafast", "audio_bitrate": "96k"}


def summary(codec="h264", pix="yuv420p", rate="25", avg="25", rotation=0, audio="aac"):
    video = {"codec": codec, "pix_fmt": pix, "r_frame_rate": rate, "avg_frame_rate": avg, "rotation": rotation}
    return {"video": video, "audio": {"codec": audio} if audio else None}


def test_plan_remuxes_only_conforming_cfr_input():
    assert plan_conversion(summary(), lambda: True) == ("remux", [])
    assert plan_conversion(summary(audio=None), lambda: True) == ("remux", [])
    assert plan_conversion(summary(), lambda: False) == ("encode", ["variable frame rate"])
    assert plan_conversion(summary(rate="30", avg="30"), lambda: True)[0] == "encode"
    assert plan_conversion(summary(avg="24000/1001"), lambda: True)[0] == "encode"
    assert plan_conversion(summary(codec="hevc"), lambda: True) == ("encode", ["video codec hevc"])
    assert plan_conversion(summary(pix="yuv422p"), lambda: True)[0] == "encode"
    assert plan_conversion(summary(rotation=90), lambda: True) == ("encode", ["rotated 90 degrees"])
    assert plan_conversion(summary(audio="mp3"), lambda: True) == ("copy_video", ["audio codec mp3"])
    assert plan_conversion(summary(codec="hevc", audio="mp3"), lambda: True) == \
        ("encode", ["video codec hevc", "audio codec mp3"])


def test_plan_never_remuxes_misaligned_audio_or_decode_errors():
    late, early = "audio starts 2.978 s after the first video frame", "audio starts 0.500 s before the first video frame"
    assert plan_conversion(summary(), lambda: True, 2.978) == ("copy_video", [late])
    assert plan_conversion(summary(), lambda: True, -0.5) == ("copy_video", [early])
    assert plan_conversion(summary(), lambda: True, 0.0008) == ("remux", [])  # Matroska's millisecond rounding
    assert plan_conversion(summary(), lambda: True, None) == ("copy_video", ["no audio frame decodes at the start"])
    assert plan_conversion(summary(audio=None), lambda: True, None) == ("remux", [])
    assert plan_conversion(summary(), lambda: True, 0.0, ["a", "b"]) == ("encode", ["2 decode errors"])
    assert plan_conversion(summary(avg="30"), lambda: True, -0.5)[1][-1] == early
    assert [sync_record({"offset": o})["action"] for o in (0.0, 2.978, -0.5, None)] == \
        ["none", "padded", "trimmed", "by_timestamps"]


def test_plan_skips_packet_scan_when_encode_is_needed_anyway():
    def explode():
        raise AssertionError("packet scan not needed")

    assert plan_conversion(summary(codec="vp9"), explode)[0] == "encode"


def test_encoder_choice_falls_back_to_cpu_and_says_why():
    yes, no = (lambda: (True, "GPU 0: H100")), (lambda: (False, "nvidia-smi not found"))
    has, lacks = (lambda name: True), (lambda name: False)
    assert choose_encoder("auto", 1, yes, has) == ("h264_nvenc", "GPU visible (GPU 0: H100)")
    assert choose_encoder("h264_nvenc", 1, yes, has)[0] == "h264_nvenc"
    assert choose_encoder("auto", 0, yes, has) == ("libx264", "the rule was given no GPU (convert.gpu is 0)")
    assert choose_encoder("auto", 1, no, has) == ("libx264", "no GPU visible (nvidia-smi not found)")
    assert choose_encoder("h264_nvenc", 1, yes, lacks) == ("libx264", "this ffmpeg has no h264_nvenc encoder")
    assert choose_encoder("libx264", 1, yes, has)[0] == "libx264"


# FFmpeg 9 (static build) on an H100 whose driver (580) is older than its NVENC API: the cause comes first
NVENC_STDERR = """\
[h264_nvenc @ 0x560b8cfe0fc0] Driver does not support the required nvenc API version. Required: 13.1 Found: 13.0
[h264_nvenc @ 0x560b8cfe0fc0] The minimum required Nvidia driver for nvenc is 610.00 or newer
[vost#0:0/h264_nvenc @ 0x560b8cfe0b00] [enc:h264_nvenc @ 0x560b8cfe0f40] Error while opening encoder - maybe \
incorrect parameters such as bit_rate, rate, width or height.
[vf#0:0 @ 0x560b8cffc380] Error sending frames to consumers: Function not implemented
[vf#0:0 @ 0x560b8cffc380] Task finished with error code: -38 (Function not implemented)
[vf#0:0 @ 0x560b8cffc380] Terminating thread with return code -38 (Function not implemented)
[vost#0:0/h264_nvenc @ 0x560b8cfe0b00] [enc:h264_nvenc @ 0x560b8cfe0f40] Could not open encoder before EOF
[vost#0:0/h264_nvenc @ 0x560b8cfe0b00] Task finished with error code: -22 (Invalid argument)
[vost#0:0/h264_nvenc @ 0x560b8cfe0b00] Terminating thread with return code -22 (Invalid argument)
[out#0/null @ 0x560b8cfe0780] Nothing was written into output file, because at least one of its streams received \
no packets.
"""


def test_ffmpeg_reason_keeps_the_cause_and_drops_the_follow_up_lines():
    assert ffmpeg_reason(NVENC_STDERR) == ("Driver does not support the required nvenc API version. Required: 13.1 "
                                           "Found: 13.0; The minimum required Nvidia driver for nvenc is 610.00 or "
                                           "newer")
    debian_51 = ("[h264_nvenc @ 0x55c6193c7b00] Cannot load libcuda.so.1\nError initializing output stream 0:0 -- "
                 "Error while opening encoder for output stream #0:0 - maybe incorrect parameters\n")
    assert ffmpeg_reason(debian_51) == "Cannot load libcuda.so.1"
    assert ffmpeg_reason("[out#0/mp4 @ 0x1] Error writing trailer: No space left on device\nConversion failed!\n") \
        == "Error writing trailer: No space left on device"
    assert ffmpeg_reason("Conversion failed!\n") == "Conversion failed!"  # nothing better: the last line
    assert ffmpeg_reason("") == ""


def test_nvenc_that_cannot_open_falls_back_to_the_same_libx264_output(tmp_path, monkeypatch, caplog):
    """nvidia-smi lists a GPU but FFmpeg cannot open NVENC (no CUDA driver here; an H100 has no NVENC unit)."""
    if not ffmpeg_has_encoder("h264_nvenc"):
        pytest.skip("this FFmpeg has no h264_nvenc encoder")
    smi = tmp_path / "bin" / "nvidia-smi"
    smi.parent.mkdir()
    smi.write_text("#!/bin/sh\necho 'GPU 0: a GPU without a usable NVENC (UUID: GPU-0)'\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{smi.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    src = make_testsrc(tmp_path / "in.mp4", seconds=1, fps=30)
    with caplog.at_level(logging.INFO, logger="convert"):
        gpu_dst, record = convert(tmp_path / "gpu", src, gpus=1)
    messages = [r.getMessage() for r in caplog.records]
    assert any("with h264_nvenc: GPU visible (GPU 0: a GPU without a usable NVENC" in m for m in messages)
    warnings = [m for m in messages if m.startswith("NVENC failed")]
    assert len(warnings) == 1 and warnings[0].endswith("; falling back to libx264 on the CPU"), warnings
    assert "Nothing was written" not in warnings[0] and "maybe incorrect parameters" not in warnings[0]
    assert record["encoder"] == "libx264" and record["device"] == "cpu"
    cpu_dst, _ = convert(tmp_path / "cpu", src, gpus=0)
    assert video_md5(gpu_dst) == video_md5(cpu_dst)
    assert not list(gpu_dst.parent.glob(".video.mp4*")), "temporary file left behind"


def video_md5(path):
    out = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:v:0", "-c", "copy", "-f", "md5", "-"],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def convert(tmp_path, src, gpus=0, **settings):
    dst, info = tmp_path / "out" / "video.mp4", tmp_path / "out" / "video.json"
    record = convert_video(src, dst, info, {**SETTINGS, **settings}, threads=2, gpus=gpus)
    return dst, record


def assert_25fps_cfr(path, duration):
    s = summarize(ffprobe(path))
    v = s["video"]
    assert (v["codec"], v["pix_fmt"], v["r_frame_rate"], v["avg_frame_rate"]) == ("h264", "yuv420p", "25", "25")
    assert len(packet_durations(path)) == 1
    assert abs(v["nb_frames"] - round(duration * 25)) <= 1
    return s


def test_30fps_is_reencoded_to_25fps_cfr_with_audio(tmp_path):
    src = make_testsrc(tmp_path / "in.mp4", seconds=2, fps=30)
    dst, record = convert(tmp_path, src)
    assert record["mode"] == "encode" and record["encoder"] == "libx264" and record["device"] == "cpu"
    out = assert_25fps_cfr(dst, 2.0)
    assert out["audio"]["codec"] == "aac"
    assert not list(dst.parent.glob(".video.mp4*")), "temporary file left behind"


def test_conforming_input_is_remuxed_bit_for_bit(tmp_path):
    src = make_testsrc(tmp_path / "in.mp4", seconds=1, fps=25)
    dst, record = convert(tmp_path, src)
    assert record["mode"] == "remux" and record["encoder"] is None
    assert record["audio_sync"]["action"] == "none" and record["damage"] is None
    assert video_md5(dst) == video_md5(src)
    assert_25fps_cfr(dst, 1.0)


def test_vfr_becomes_cfr(tmp_path):
    src = tmp_path / "vfr.mp4"
    make_testsrc(src, seconds=2, fps=25, extra=["-vf", "setpts='if(lt(N,20),N,N*2)/25/TB'", "-fps_mode", "vfr"])
    assert len(packet_durations(src)) > 1, "fixture should be VFR"
    dst, record = convert(tmp_path, src)
    assert record["reasons"] and record["mode"] == "encode"
    assert_25fps_cfr(dst, summarize(ffprobe(dst))["duration"])


def test_no_audio_stays_without_audio(tmp_path):
    src = make_testsrc(tmp_path / "in.mp4", seconds=1, fps=30, audio=False)
    dst, _ = convert(tmp_path, src)
    assert summarize(ffprobe(dst))["audio"] is None


def test_rotated_phone_video_comes_out_upright(tmp_path):
    plain = make_testsrc(tmp_path / "plain.mp4", seconds=1, fps=30)
    src = tmp_path / "in.mp4"  # the legacy rotate tag becomes a display matrix when stream-copied
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(plain), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(src)],
                   check=True)
    assert summarize(ffprobe(src))["video"]["rotation"] in (90, 270)
    dst, record = convert(tmp_path, src)
    v = summarize(ffprobe(dst))["video"]
    assert (v["width"], v["height"], v["rotation"]) == (180, 320, 0)


def test_odd_dimensions_become_even(tmp_path):
    src = make_testsrc(tmp_path / "in.mkv", seconds=1, fps=25, size="321x181", extra=["-pix_fmt", "yuv444p"])
    dst, _ = convert(tmp_path, src)
    v = summarize(ffprobe(dst))["video"]
    assert (v["width"], v["height"]) == (320, 180)


def test_gpu_requested_without_gpu_falls_back_to_libx264(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    src = make_testsrc(tmp_path / "in.mp4", seconds=1, fps=30)
    _, record = convert(tmp_path, src, gpus=1)
    assert record["encoder"] == "libx264" and record["device"] == "cpu"


def test_output_is_deterministic(tmp_path):
    src = make_testsrc(tmp_path / "in.mp4", seconds=1, fps=30)
    a, _ = convert(tmp_path / "a", src)
    b, _ = convert(tmp_path / "b", src)
    assert a.read_bytes() == b.read_bytes()


def test_text_file_with_video_extension_gives_one_line_error(tmp_path):
    fake = tmp_path / "fake.mp4"
    fake.write_text("not a video\n")
    with pytest.raises(UserError) as err:
        convert(tmp_path, fake)
    assert str(err.value).startswith(str(fake)) and "\n" not in str(err.value)
    assert not (tmp_path / "out" / "video.mp4").exists()


# --------------------------------------------------------------------------- audio/video sync

SPEECH_AT = 1.0  # s into the speech track
LINE = ("en-us+m3", "Good morning and welcome to the programme.")


@pytest.fixture(scope="module")
def sync_media(tmp_path_factory):
    """Video-only clips (25 fps with B-frames, 30 fps) and a speech track with one utterance at SPEECH_AT."""
    require_binaries("ffmpeg", "espeak-ng")
    folder = tmp_path_factory.mktemp("sync")
    mf.make_speech(folder / "speech.wav", [(SPEECH_AT, *LINE)], duration=6)
    for fps in (25, 30):
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size=320x180:rate={fps}:duration=7",
                        "-c:v", "libx264", "-preset", "veryfast", "-bf", "2", "-pix_fmt", "yuv420p",
                        str(folder / f"video{fps}.mp4")], check=True)
    return folder, mf.synthesize(*LINE).astype(np.float32)


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
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-itsoffset", str(video_offset), "-i", str(folder / f"video{fps}.mp4"),
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
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", stream, "-show_entries", "packet=pts_time,pos,size",
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
    turns = mf.layout_turns([(VOICES[i % 2], text) for i, text in enumerate(LINES)], start=0.5, gap=0.7)
    speech = mf.make_speech(folder / "speech.wav", turns, duration=turns[-1][0] + 4)
    frames = int(round((speech["duration"] + LATE + 1) * 25))
    mf.make_video(folder / "frames.mp4", [mf.Shot("blank", frames)])
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(folder / "frames.mp4"), "-itsoffset", str(LATE), "-i",
                    str(folder / "speech.wav"), "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac",
                    str(inputs / "late.mp4")], check=True)
    mf.make_video(folder / "clean.mp4", [mf.Shot("astronaut", 375, zoom=(1.0, 1.3)), mf.Shot("coffee", 375)])
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
