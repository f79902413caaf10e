"""Step 2: normalise a video to constant 25 fps H.264 (yuv420p) + AAC in one FFmpeg pass.

Already-conforming files (25 fps CFR H.264 yuv420p, AAC or no audio, upright) are
remuxed without re-encoding. NVENC is used only when asked for (or ``auto``), the
rule was given a GPU, one is visible and FFmpeg supports it; otherwise libx264,
and the log says why.
"""

import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
from fractions import Fraction

from vidflow.errors import UserError
from vidflow.io import atomic_path, write_json
from vidflow.media import FPS, ffmpeg_reason, ffprobe, packet_durations, summarize

log = logging.getLogger("convert")
TARGET_FPS = Fraction(FPS)
BITEXACT = ["-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact",
            "-map_metadata", "-1", "-map_chapters", "-1"]


def plan_conversion(summary, cfr):
    """Decide between ``remux`` and ``encode`` from an ffprobe summary.

    ``cfr`` is a callable returning True when frame timing is constant; it is
    only called when everything else already allows a remux (it reads packets).
    Returns ``(mode, reasons)`` with the reasons a re-encode is needed.
    """
    video, audio = summary["video"], summary["audio"]
    if video is None:
        raise UserError("input", "no video stream")
    reasons = []
    if video["codec"] != "h264":
        reasons.append(f"video codec {video['codec']}")
    if video["pix_fmt"] != "yuv420p":
        reasons.append(f"pixel format {video['pix_fmt']}")
    rates = {video["r_frame_rate"], video["avg_frame_rate"]}
    if rates != {str(TARGET_FPS)}:
        reasons.append(f"frame rate {video['avg_frame_rate']} (r={video['r_frame_rate']})")
    if video["rotation"]:
        reasons.append(f"rotated {video['rotation']} degrees")
    if audio is not None and audio["codec"] != "aac":
        reasons.append(f"audio codec {audio['codec']}")
    if not reasons and not cfr():
        reasons.append("variable frame rate")
    return ("encode" if reasons else "remux"), reasons


def gpu_visible():
    """(visible, why) for an NVIDIA GPU, honouring CUDA_VISIBLE_DEVICES."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False, "CUDA_VISIBLE_DEVICES hides all GPUs"
    if shutil.which("nvidia-smi") is None:
        return False, "nvidia-smi not found"
    proc = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, check=False)
    if proc.returncode != 0 or "GPU" not in proc.stdout:
        return False, "nvidia-smi lists no GPU"
    return True, proc.stdout.splitlines()[0].strip()


def ffmpeg_has_encoder(name):
    proc = subprocess.run(["ffmpeg", "-hide_banner", "-encoders"], capture_output=True, text=True, check=False)
    return any(line.split()[1:2] == [name] for line in proc.stdout.splitlines() if line.strip())


def choose_encoder(requested, gpus, probe_gpu=gpu_visible, has_encoder=ffmpeg_has_encoder):
    """Return ``(encoder, reason)``: ``h264_nvenc`` or ``libx264``."""
    if requested == "libx264":
        return "libx264", "convert.encoder is libx264"
    if gpus <= 0:
        return "libx264", "the rule was given no GPU (convert.gpu is 0)"
    visible, why = probe_gpu()
    if not visible:
        return "libx264", f"no GPU visible ({why})"
    if not has_encoder("h264_nvenc"):
        return "libx264", "this ffmpeg has no h264_nvenc encoder"
    return "h264_nvenc", f"GPU visible ({why})"


def encode_args(encoder, settings, audio, threads):
    """FFmpeg output arguments for a full encode to 25 fps CFR."""
    vf = f"fps={FPS},scale=trunc(iw/2)*2:trunc(ih/2)*2,format=yuv420p"
    args = ["-map", "0:v:0", "-map", "0:a:0?", "-vf", vf, "-filter_threads", str(threads), "-fps_mode", "cfr",
            "-r", str(FPS)]
    if encoder == "h264_nvenc":
        args += ["-c:v", "h264_nvenc", "-preset", "p5", "-rc", "vbr", "-cq", str(settings["crf"]), "-b:v", "0"]
    else:
        args += ["-c:v", "libx264", "-preset", settings["preset"], "-crf", str(settings["crf"]),
                 "-threads", str(threads)]
    args += ["-pix_fmt", "yuv420p"]
    if audio is not None:
        args += ["-c:a", "copy"] if audio["codec"] == "aac" else ["-c:a", "aac", "-b:a", settings["audio_bitrate"]]
    return args


def run_ffmpeg(src, dst, out_args, threads, duration):
    """Run one ffmpeg pass, logging progress every ~10 s; UserError with ffmpeg's reason on failure."""
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y", "-threads", str(threads), "-i", str(src),
           *out_args, *BITEXACT, "-movflags", "+faststart", "-progress", "pipe:1", "-nostats", str(dst)]
    log.info("running: %s", " ".join(cmd))
    start = last = time.monotonic()
    with tempfile.TemporaryFile(mode="w+") as errors:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errors, text=True)
        for line in proc.stdout:
            key, _, value = line.strip().partition("=")
            if key == "out_time_us" and value.isdigit() and time.monotonic() - last > 10:
                last, done = time.monotonic(), int(value) / 1e6
                log.info("progress: %.1f / %.1f s of video (%.2fx real time)", done, duration,
                         done / max(last - start, 1e-6))
        proc.wait()
        errors.seek(0)
        message = errors.read().strip()
    if proc.returncode < 0:  # e.g. SIGXFSZ: the output hit the file size limit (ulimit -f)
        name = signal.Signals(-proc.returncode).name
        hint = " (file size limit exceeded while writing the output)" if name == "SIGXFSZ" else ""
        raise UserError(src, f"ffmpeg failed: killed by {name}{hint}")
    if proc.returncode != 0:
        log.info("ffmpeg's error output:\n%s", message)
        raise UserError(src, f"ffmpeg failed: {ffmpeg_reason(message) or 'exit ' + str(proc.returncode)}")
    return time.monotonic() - start


def _disk_full_hint(path):
    free = shutil.disk_usage(os.path.dirname(os.path.abspath(path))).free
    return f"; the disk is full ({free} bytes free)" if free < (1 << 20) else ""


def convert_video(src, dst, info_path, settings, threads=1, gpus=0):
    """Convert ``src`` to ``dst`` (25 fps CFR H.264/AAC) and write a JSON record of what was done."""
    source = summarize(ffprobe(src))
    if source["video"] is None:
        raise UserError(src, "no video stream")
    mode, reasons = plan_conversion(source, lambda: len(packet_durations(src)) <= 1)
    encoder = None
    with atomic_path(dst) as tmp:
        if mode == "remux":
            log.info("already 25 fps CFR H.264/AAC: remuxing without re-encoding")
            seconds = run_ffmpeg(src, tmp, ["-map", "0:v:0", "-map", "0:a:0?", "-c", "copy"], threads,
                                 source["duration"])
        else:
            encoder, why = choose_encoder(settings["encoder"], gpus)
            log.info("re-encoding (%s) with %s: %s", "; ".join(reasons), encoder, why)
            try:
                seconds = run_ffmpeg(src, tmp, encode_args(encoder, settings, source["audio"], threads), threads,
                                     source["duration"])
            except UserError as err:
                if encoder != "h264_nvenc":
                    raise
                log.warning("NVENC failed (%s); falling back to libx264 on the CPU",
                            err.reason.removeprefix("ffmpeg failed: "))
                encoder = "libx264"
                seconds = run_ffmpeg(src, tmp, encode_args(encoder, settings, source["audio"], threads),
                                     threads, source["duration"])
        try:  # FFmpeg 5.1 can exit 0 after failing to write (e.g. a full disk while moving the moov atom)
            output = summarize(ffprobe(tmp))
        except UserError as err:
            raise UserError(dst, f"FFmpeg wrote an unreadable file ({err.reason}){_disk_full_hint(dst)}") from None
    speed = source["duration"] / max(seconds, 1e-6)
    log.info("done: %.2f s of video in %.2f s (%.2f video-seconds per second)", source["duration"], seconds, speed)
    record = {"mode": mode, "reasons": reasons, "encoder": encoder,
              "device": "gpu" if encoder == "h264_nvenc" else "cpu",
              "settings": {k: settings[k] for k in ("encoder", "crf", "preset", "audio_bitrate")},
              "source": source, "output": output}
    write_json(info_path, record)
    return record
