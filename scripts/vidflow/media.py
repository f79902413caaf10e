"""FFprobe queries, frame/time conversion and the raw frame reader (the ``ffmpeg``/``ffprobe`` binaries, no Python
deps; steps.frames turns the frames into numpy arrays in the envs that decode frames)."""

import codecs
import fcntl
import json
import os
import re
import subprocess
import tempfile
from fractions import Fraction

from .errors import UserError

FPS = 25


def frame_to_time(frame, fps=FPS):
    """Seconds at the start of 0-based ``frame``, rounded to milliseconds."""
    return round(frame / fps, 3)


def time_to_frame(seconds, fps=FPS):
    """0-based frame shown at ``seconds``."""
    return int(round(seconds * fps))


# FFmpeg's follow-up lines after the real error (FFmpeg 6-9 print several per failure): not a reason.
FFMPEG_FOLLOW_UPS = ("Conversion failed!", "Nothing was written into output file", "Task finished with error code",
                     "Terminating thread with return code", "Could not open encoder before EOF",
                     "Error sending frames to consumers", "Error while opening encoder - maybe incorrect parameters",
                     "Error initializing output stream")


def ffmpeg_reason(stderr):
    """The telling lines of FFmpeg's error output, without ``[muxer @ 0x...]`` prefixes and follow-ups.

    FFmpeg states the cause first (``Driver does not support the required nvenc API version``) and
    then several generic lines (``Nothing was written into output file ...``); the last line alone is
    rarely the reason. Returns the remaining lines joined with ``; `` (the last line if all are generic).
    """
    lines = [re.sub(r"^(\[[^\]]*\] )+", "", line.strip()) for line in stderr.strip().splitlines()]
    lines = [line for line in lines if line]
    telling = [line for line in lines if not line.startswith(FFMPEG_FOLLOW_UPS)]
    return "; ".join(dict.fromkeys(telling)) or (lines[-1] if lines else "")


def pcm_command(video, sample_rate):
    """FFmpeg command that writes the first audio stream of ``video`` to stdout as mono 16-bit PCM (``s16le``)."""
    return ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-i", str(video), "-map", "0:a:0", "-vn",
            "-ac", "1", "-ar", str(sample_rate), "-f", "s16le", "-acodec", "pcm_s16le", "pipe:1"]


def _ffprobe_reason(path, stderr):
    """ffprobe's error lines without the path and ``[demuxer @ 0x...]`` prefixes, joined with ``; ``."""
    lines = []
    for line in stderr.strip().splitlines():
        line = re.sub(r"^\[[^\]]* @ 0x[0-9a-f]+\] ", "", line.strip())
        line = line.removeprefix(f"{path}: ")
        if line and line not in lines:
            lines.append(line)
    return "; ".join(lines) or "ffprobe failed"


def _looks_like_text(path, size=4096):
    with open(path, "rb") as handle:
        head = handle.read(size)
    try:  # incremental: a character cut at the end of the block is fine
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return b"\x00" not in head


def ffprobe(path):
    """Return ffprobe's JSON (format + streams) for ``path``; UserError if unreadable."""
    if os.path.isfile(path) and os.path.getsize(path) == 0:
        raise UserError(path, "empty file (0 bytes)")
    cmd = ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", str(path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        if os.path.isfile(path) and _looks_like_text(path):
            raise UserError(path, "not a readable media file (it is a text file)")
        raise UserError(path, f"not a readable media file ({_ffprobe_reason(path, proc.stderr)})")
    return json.loads(proc.stdout)


def _rate(text):
    try:
        rate = Fraction(text)
    except (ValueError, ZeroDivisionError, TypeError):
        return None
    return rate if rate > 0 else None


def rotation(stream):
    """Display rotation in degrees (0, 90, 180, 270) from side data or the legacy tag."""
    for side in stream.get("side_data_list", []):
        if "rotation" in side:
            return int(round(float(side["rotation"]))) % 360
    tag = stream.get("tags", {}).get("rotate")
    return int(tag) % 360 if tag else 0


def summarize(probe):
    """The facts the workflow decides on, from an ffprobe result.

    ``video`` is None when there is no real video stream (cover art does not count).
    """
    streams = probe.get("streams", [])
    videos = [s for s in streams if s.get("codec_type") == "video" and not s.get("disposition", {}).get("attached_pic")]
    audios = [s for s in streams if s.get("codec_type") == "audio"]
    summary = {
        "format": probe.get("format", {}).get("format_name"),
        "duration": float(probe.get("format", {}).get("duration") or 0.0),
        "video": None,
        "audio": None,
    }
    if videos:
        v = videos[0]
        r_rate, avg_rate = _rate(v.get("r_frame_rate")), _rate(v.get("avg_frame_rate"))
        summary["video"] = {
            "codec": v.get("codec_name"),
            "pix_fmt": v.get("pix_fmt"),
            "width": v.get("width"),
            "height": v.get("height"),
            "r_frame_rate": str(r_rate) if r_rate else None,
            "avg_frame_rate": str(avg_rate) if avg_rate else None,
            "nb_frames": int(v["nb_frames"]) if str(v.get("nb_frames", "")).isdigit() else None,
            "rotation": rotation(v),
        }
    if audios:
        a = audios[0]
        summary["audio"] = {"codec": a.get("codec_name"), "sample_rate": int(a.get("sample_rate") or 0),
                            "channels": a.get("channels")}
    return summary


def packet_durations(path):
    """Distinct packet timestamp steps (in stream time-base units) of the first video stream.

    Reads packets only (no decoding); used to tell constant from variable frame rate.
    """
    cmd = ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts",
           "-of", "csv=p=0", str(path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise UserError(path, "cannot read video packets")
    pts = sorted(int(x) for x in proc.stdout.split() if x.strip().lstrip("-").isdigit())
    return {b - a for a, b in zip(pts, pts[1:])}


PIPE_BYTES = 1 << 20  # a larger pipe lets FFmpeg decode ahead while the consumer works


def select_expression(offsets):
    """An FFmpeg ``select`` expression true for the frames ``n`` in ``offsets`` (sorted, distinct): a balanced tree of
    ``if(lt(n,..),..,..)``, so each frame costs a few comparisons however many frames are chosen."""
    if len(offsets) == 1:
        return f"eq(n,{offsets[0]})"
    middle = len(offsets) // 2
    return f"if(lt(n,{offsets[middle]}),{select_expression(offsets[:middle])},{select_expression(offsets[middle:])})"


def read_frame_bytes(path, width, height, start=0, count=None, fps=FPS, threads=1, scale=False, batch=1,
                     select=None):
    """Yield ``(index, frames)``: up to ``batch`` whole RGB24 frames (``height x width x 3`` bytes each; fewer only
    at the end) of ``path``, the first being frame ``index``, for ``count`` frames from 0-based ``start`` (all to the
    end if None). ``scale``: FFmpeg scales the frames to ``width x height`` (else they are the video's own size).
    ``select``: only the frames ``start + offset`` for these offsets (sorted, distinct; ``count`` is then their
    number), dropped by FFmpeg before they are converted and piped; ``index`` then counts the frames read, not the
    video's frames (steps.frames.read_chosen_frames maps them back).

    Streamed from an ffmpeg rawvideo pipe (memory flat with the video's length). Seeking is frame-accurate (ffmpeg
    input seeking decodes from the previous key frame and drops frames before ``start``) on the constant-frame-rate
    videos step 2 writes. UserError naming the file when FFmpeg fails or, reading from the start, finds no frame.
    """
    if select is not None:
        count = len(select)
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-threads", str(threads)]
    if start:
        cmd += ["-ss", f"{start / fps:.6f}"]
    cmd += ["-i", str(path), "-map", "0:v:0", "-an", "-sn", "-dn"]
    if count is not None:
        cmd += ["-frames:v", str(count)]
    filters = [f"select='{select_expression(select)}'"] if select else []
    if scale:
        filters.append(f"scale={width}:{height}")
    if filters:
        cmd += ["-vf", ",".join(filters)]
    cmd += ["-fps_mode", "passthrough", "-pix_fmt", "rgb24", "-f", "rawvideo", "pipe:1"]
    size = width * height * 3
    index, killed = start, False
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errors, bufsize=size * batch)
        try:
            fcntl.fcntl(proc.stdout.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        except (AttributeError, OSError):  # not Linux, or above /proc/sys/fs/pipe-max-size
            pass
        try:
            while count is None or index - start < count:
                wanted = batch if count is None else min(batch, count - (index - start))
                data = proc.stdout.read(size * wanted)  # buffered: all of it unless the stream ends
                whole = len(data) // size
                if whole:
                    yield index, data[: whole * size]
                    index += whole
                if whole < wanted:
                    break
        finally:  # also when the consumer stops early
            if proc.poll() is None and count is not None and index - start < count:
                proc.kill()
                killed = True
            proc.stdout.close()
            code = proc.wait()
        if code != 0 and not killed:
            errors.seek(0)
            message = errors.read().decode(errors="replace").strip().splitlines()
            raise UserError(path, f"ffmpeg could not decode frames from {start}: {message[-1] if message else code}")
    if index == start == 0 and count != 0:
        raise UserError(path, "the video has no decodable frame")
