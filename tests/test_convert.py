"""Step 2: conversion to constant 25 fps H.264/AAC (decisions unit-tested, encodes checked with ffprobe)."""

import logging
import os
import subprocess

import pytest

from conftest import make_testsrc
from steps.convert.pipeline import (
    ConvertSettings,
    choose_encoder,
    convert_video,
    ffmpeg_has_encoder,
    plan_conversion,
    sync_record,
)
from vidflow.errors import UserError
from vidflow.media import ffmpeg_reason, ffprobe, packet_durations, summarize

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
    late = "audio starts 2.978 s after the first video frame"
    early = "audio starts 0.500 s before the first video frame"
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
    record = convert_video(src, dst, info, ConvertSettings(**{**SETTINGS, **settings}), threads=2, gpus=gpus)
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
