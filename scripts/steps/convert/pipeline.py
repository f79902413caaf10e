"""Step 2: normalise a video to constant 25 fps H.264 (yuv420p) + AAC in one FFmpeg pass.

Both streams of ``video.mp4`` start at 0: audio sample 0 is frame 0's time. Sources whose audio
starts later or earlier than the first video frame (as FFmpeg's decoders see it, see
``steps.convert.source``) get their audio padded with silence or trimmed. Sources with decode
errors are re-encoded with error concealment, so every frame reader gets the same frames; the
damaged time ranges are logged and recorded. Already-conforming, aligned and cleanly decoding files
(25 fps CFR H.264 yuv420p, AAC or no audio, upright) are remuxed without re-encoding; when only the
audio needs work, the video is copied and the audio alone re-encoded. NVENC is used only when asked
for (or ``auto``), the rule was given a GPU, one is visible and FFmpeg supports it; otherwise
libx264, and the log says why.
"""

import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from fractions import Fraction

from steps.convert.source import decode_errors, describe_damage, measure_sync
from vidflow.errors import UserError
from vidflow.io import atomic_path, write_json
from vidflow.job import settings_from
from vidflow.media import FPS, ffmpeg_reason, ffprobe, packet_durations, summarize

log = logging.getLogger("convert")


@dataclass(frozen=True)
class ConvertSettings:
    """The ``convert`` config section (keys and defaults: config/schema.yaml)."""

    encoder: str  # auto, libx264 or h264_nvenc
    crf: int
    preset: str
    audio_bitrate: str
TARGET_FPS = Fraction(FPS)
BITEXACT = ["-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact",
            "-map_metadata", "-1", "-map_chapters", "-1"]
# Audio this far (s) from the first video frame is aligned: Matroska stores times in whole milliseconds.
SYNC_TOLERANCE = 0.001
# Pad or trim the audio so sample 0 is frame 0's time, and wherever its timestamps and its samples
# disagree by more than 5 ms (a dropped AAC frame is 1024 samples: 10.7 ms at 96 kHz, more below).
ALIGN_AUDIO = "aresample=async=1:min_hard_comp=0.005:first_pts=0"
# Decoder error concealment for damaged sources: damaged blocks are predicted from their neighbours
# and the previous frame, then deblocked (frames that do not decode at all are filled by fps=25).
CONCEAL = ["-ec", "guess_mvs+deblock+favor_inter"]


def sync_reason(offset):
    """Why the audio must be moved (None: it starts with the first video frame)."""
    if offset is None:
        return "no audio frame decodes at the start"
    if abs(offset) <= SYNC_TOLERANCE:
        return None
    return f"audio starts {abs(offset):.3f} s {'after' if offset > 0 else 'before'} the first video frame"


def plan_conversion(summary, cfr, audio_offset=0.0, errors=()):
    """Decide between ``remux``, ``copy_video`` and ``encode`` from an ffprobe summary.

    ``cfr`` is a callable returning True when frame timing is constant; it is only called when
    everything else about the video already allows copying it (it reads packets).
    ``audio_offset`` is the audio's start minus the video's (s), ``errors`` FFmpeg's decode errors.
    Returns ``(mode, reasons)`` with the reasons a stream must be re-encoded.
    """
    video, audio = summary["video"], summary["audio"]
    if video is None:
        raise UserError("input", "no video stream")
    reasons = []
    if errors:
        reasons.append(f"{len(errors)} decode error{'s' if len(errors) > 1 else ''}")
    if video["codec"] != "h264":
        reasons.append(f"video codec {video['codec']}")
    if video["pix_fmt"] != "yuv420p":
        reasons.append(f"pixel format {video['pix_fmt']}")
    rates = {video["r_frame_rate"], video["avg_frame_rate"]}
    if rates != {str(TARGET_FPS)}:
        reasons.append(f"frame rate {video['avg_frame_rate']} (r={video['r_frame_rate']})")
    if video["rotation"]:
        reasons.append(f"rotated {video['rotation']} degrees")
    if not reasons and not cfr():
        reasons.append("variable frame rate")
    video_ok = not reasons
    if audio is not None:
        if audio["codec"] != "aac":
            reasons.append(f"audio codec {audio['codec']}")
        if sync_reason(audio_offset):
            reasons.append(sync_reason(audio_offset))
    if video_ok:
        return ("copy_video" if reasons else "remux"), reasons
    return "encode", reasons


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


def audio_args(settings, audio, copy):
    """FFmpeg output arguments for the first audio stream: copied, or re-encoded aligned to frame 0."""
    if audio is None:
        return []
    if copy:
        return ["-map", "0:a:0", "-c:a", "copy"]
    return ["-map", "0:a:0", "-af", ALIGN_AUDIO, "-c:a", "aac", "-b:a", settings.audio_bitrate]


def encode_args(encoder, settings, threads):
    """FFmpeg output arguments for a full encode of the first video stream to 25 fps CFR."""
    vf = f"fps={FPS},scale=trunc(iw/2)*2:trunc(ih/2)*2,format=yuv420p"
    args = ["-map", "0:v:0", "-vf", vf, "-filter_threads", str(threads), "-fps_mode", "cfr", "-r", str(FPS)]
    if encoder == "h264_nvenc":
        args += ["-c:v", "h264_nvenc", "-preset", "p5", "-rc", "vbr", "-cq", str(settings.crf), "-b:v", "0"]
    else:
        args += ["-c:v", "libx264", "-preset", settings.preset, "-crf", str(settings.crf),
                 "-threads", str(threads)]
    return args + ["-pix_fmt", "yuv420p"]


def run_ffmpeg(src, dst, out_args, threads, duration, in_args=()):
    """Run one ffmpeg pass, logging progress every ~10 s: ``(seconds, FFmpeg's error output)``; UserError with
    ffmpeg's reason on failure."""
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y", "-threads", str(threads), *in_args,
           "-i", str(src), *out_args, *BITEXACT, "-movflags", "+faststart", "-progress", "pipe:1", "-nostats",
           str(dst)]
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
    return time.monotonic() - start, message


def _disk_full_hint(path):
    free = shutil.disk_usage(os.path.dirname(os.path.abspath(path))).free
    return f"; the disk is full ({free} bytes free)" if free < (1 << 20) else ""


def sync_record(sync):
    """What was done to the audio's start: ``none``, ``padded`` (silence) or ``trimmed``, by ``offset`` s."""
    if sync is None:
        return None
    offset = sync["offset"]
    if offset is None:
        action = "by_timestamps"
    else:
        action = "none" if abs(offset) <= SYNC_TOLERANCE else ("padded" if offset > 0 else "trimmed")
    return {**sync, "action": action}


class _DecodeCheckNeeded(Exception):
    """The encode that was to be the video's decode check wrote an error (or failed): check the source first."""


def video_must_encode(source):
    """True when the video is re-encoded whatever a decode check finds (codec, pixel format, rate, rotation)."""
    return plan_conversion(source, lambda: True)[0] == "encode"


def _inspect(src, source, threads, video=True):
    """Decode errors and stream starts of ``src`` (UserError if no video frame decodes); ``video`` False: only the
    audio is decoded for errors (the video's are then found by the encode, which decodes every frame)."""
    started = time.monotonic()
    has_audio = source["audio"] is not None
    errors = decode_errors(src, threads, audio=has_audio, video=video) if video or has_audio else []
    log.info("decode check%s: %d error line(s) in %.2f s", "" if video else " (audio only)", len(errors),
             time.monotonic() - started)
    try:
        starts = measure_sync(src, audio=has_audio)
    except UserError as err:
        if not video:  # the reason names the video's decode errors too
            errors = decode_errors(src, threads, audio=has_audio)
        first = ffmpeg_reason(errors[0]) if errors else ""
        reason = f"{err.reason} ({len(errors)} decode errors, the first: {first})" if errors else err.reason
        raise UserError(src, reason) from None
    if has_audio:
        log.info("first decoded frames: video %s s, audio %s s (offset %s s)", starts["video_start"],
                 starts["audio_start"], starts["offset"])
    return errors, starts


def _encode(src, tmp, settings, source, threads, gpus, in_args, copy_audio):
    """Full encode with libx264 or NVENC (falling back to libx264); returns (encoder, seconds, error output)."""
    encoder, why = choose_encoder(settings.encoder, gpus)
    log.info("re-encoding with %s: %s", encoder, why)
    audio = audio_args(settings, source["audio"], copy_audio)
    try:
        return (encoder, *run_ffmpeg(src, tmp, encode_args(encoder, settings, threads) + audio, threads,
                                     source["duration"], in_args))
    except UserError as err:
        if encoder != "h264_nvenc":
            raise
        log.warning("NVENC failed (%s); falling back to libx264 on the CPU", err.reason.removeprefix("ffmpeg failed: "))
    return ("libx264", *run_ffmpeg(src, tmp, encode_args("libx264", settings, threads) + audio, threads,
                                   source["duration"], in_args))


def convert_video(src: str, dst: str, info_path: str, settings: ConvertSettings, threads: int = 1,
                  gpus: int = 0) -> dict:
    """Convert ``src`` to ``dst`` (25 fps CFR H.264/AAC) and write a JSON record of what was done.

    A video that is re-encoded anyway gets no decode pass of its own: the encode decodes every frame, and FFmpeg
    writes nothing at its error level when they all decode. Only if it writes something is the source checked
    and, where it has decode errors, encoded again with error concealment.
    """
    source = summarize(ffprobe(src))
    if source["video"] is None:
        raise UserError(src, "no video stream")
    if video_must_encode(source):
        errors, starts = _inspect(src, source, threads, video=False)
        if not errors:
            try:
                return _convert(src, dst, info_path, settings, threads, gpus, source, errors, starts, checked=False)
            except _DecodeCheckNeeded as err:
                log.info("the encode wrote errors (%s): checking the source's decoding", err)
    errors, starts = _inspect(src, source, threads)
    return _convert(src, dst, info_path, settings, threads, gpus, source, errors, starts, checked=True)


def _convert(src, dst, info_path, settings, threads, gpus, source, errors, starts, checked):
    """``convert_video`` once the source's decode errors are known; ``checked`` False: only the audio's, and the
    encode raises ``_DecodeCheckNeeded`` (writing nothing) if FFmpeg writes an error or fails."""
    sync = starts if source["audio"] is not None else None
    offset = sync["offset"] if sync else 0.0
    mode, reasons = plan_conversion(source, lambda: len(packet_durations(src)) <= 1, offset, errors)
    damage = None
    if errors:
        damage = describe_damage(src, errors, starts["video_start"], source["duration"],
                                 audio=source["audio"] is not None)
        log.warning("%s: %d decode error(s), damaged: %s; re-encoding with error concealment", src, len(errors),
                    ", ".join(f"{r['stream']} {r['start']:.3f}-{r['end']:.3f} s" for r in damage["ranges"]) or
                    "no time range found")
    # Both streams are shifted so that the first video frame is at 0 (the audio by its own offset).
    in_args = [*(CONCEAL if errors else []), "-copyts", "-itsoffset", f"{0.0 - starts['video_start']:.6f}"]
    encoder = None
    with atomic_path(dst) as tmp:
        if mode == "remux":
            log.info("already 25 fps CFR H.264/AAC, aligned and decoding cleanly: remuxing without re-encoding")
            seconds, _ = run_ffmpeg(src, tmp, ["-map", "0:v:0", "-map", "0:a:0?", "-c", "copy"], threads,
                                    source["duration"])
        elif mode == "copy_video":
            log.info("copying the video, re-encoding the audio: %s", "; ".join(reasons))
            seconds, _ = run_ffmpeg(src, tmp, ["-map", "0:v:0", "-c:v", "copy",
                                               *audio_args(settings, source["audio"], False)],
                                    threads, source["duration"], in_args)
        else:
            log.info("re-encoding: %s", "; ".join(reasons))
            copy_audio = source["audio"] is not None and source["audio"]["codec"] == "aac" and not errors \
                and not sync_reason(offset)
            try:
                encoder, seconds, message = _encode(src, tmp, settings, source, threads, gpus, in_args, copy_audio)
            except UserError as err:
                if checked:
                    raise
                raise _DecodeCheckNeeded(err.reason) from None
            if message and not checked:
                raise _DecodeCheckNeeded(message.splitlines()[0])
        try:  # FFmpeg 5.1 can exit 0 after failing to write (e.g. a full disk while moving the moov atom)
            output = summarize(ffprobe(tmp))
        except UserError as err:
            raise UserError(dst, f"FFmpeg wrote an unreadable file ({err.reason}){_disk_full_hint(dst)}") from None
        if errors and decode_errors(tmp, threads, audio=output["audio"] is not None):
            raise UserError(src, "still does not decode cleanly after re-encoding with error concealment")
    speed = source["duration"] / max(seconds, 1e-6)
    log.info("done: %.2f s of video in %.2f s (%.2f video-seconds per second)", source["duration"], seconds, speed)
    record = {"mode": mode, "reasons": reasons, "encoder": encoder,
              "device": "gpu" if encoder == "h264_nvenc" else "cpu",
              "settings": asdict(settings),
              "source": source, "output": output, "audio_sync": sync_record(sync), "damage": damage}
    write_json(info_path, record)
    return record


def run(job):
    settings = settings_from(ConvertSettings, job.settings)
    convert_video(job.input["video"], job.output["video"], job.output["info"], settings, job.threads, job.gpus)
