"""What FFmpeg's decoders see in a source: where each stream starts, and decode errors.

Step 2 decides on these, not on the container's claims: a stream's ``start_time`` counts packets
that decoders drop (edit lists, AAC priming marked as discarded), so the start of a stream is the
timestamp of the first frame a decoder outputs. Decode errors are found by decoding the whole
source once with FFmpeg (``-f null``); where they are is read from ffprobe's packets and frames
(a packet that yields no frame, or a frame that logs an error) only when there are any.
"""

import json
import re
import subprocess

from vidflow.errors import UserError

# Packets read to find the first decoded frame: enough for B-frame reordering; the second try
# covers long runs of packets that decoders drop (edit lists, a damaged start).
START_PACKETS = (16, 4096)
# Distinct decode-error lines kept in video.json
MAX_ERROR_LINES = 20


def _probe_json(path, args):
    cmd = ["ffprobe", "-v", "error", *args, "-of", "json", str(path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        last = lines[-1] if lines else f"exit {proc.returncode}"
        raise UserError(path, f"ffprobe cannot read the streams ({last})")
    return json.loads(proc.stdout), proc.stderr


def first_frame_time(path, stream):
    """Presentation time (s) of the first frame FFmpeg decodes from stream ``v:0`` or ``a:0``, or None."""
    for packets in START_PACKETS:
        data, _ = _probe_json(path, ["-select_streams", stream, "-read_intervals", f"%+#{packets}",
                                     "-show_entries", "frame=best_effort_timestamp_time"])
        times = [float(f["best_effort_timestamp_time"]) for f in data.get("frames", [])
                 if f.get("best_effort_timestamp_time") not in (None, "N/A")]
        if times:
            return min(times)
    return None


def measure_sync(path, audio=True):
    """``{"video_start", "audio_start", "offset"}`` in seconds; offset > 0: the audio starts later.

    ``audio_start`` and ``offset`` are None when no audio frame decodes at the start of the file
    (or ``audio`` is False: the file has no audio stream).
    """
    video = first_frame_time(path, "v:0")
    if video is None:
        raise UserError(path, "no video frame can be decoded")
    audio = first_frame_time(path, "a:0") if audio else None
    offset = None if audio is None else round(audio - video, 6)
    return {"video_start": round(video, 6), "audio_start": None if audio is None else round(audio, 6),
            "offset": offset}


def decode_errors(path, threads, audio=True, video=True):
    """Decode the first video and/or audio stream once; return FFmpeg's error lines (empty: clean)."""
    # Errors are found while parsing and entropy-decoding: the deblocking filter (~20 % of H.264's
    # decode time) is skipped. "repeat": every error line, not "Last message repeated n times".
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "repeat+error", "-threads", str(threads),
           "-skip_loop_filter", "all", "-i", str(path), *(["-map", "0:v:0"] if video else []),
           *(["-map", "0:a:0"] if audio else []),
           "-f", "null", "-"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    # without the decoders' addresses ("[h264 @ 0x55d1...]"), which change from run to run
    lines = [re.sub(r" @ 0x[0-9a-f]+\]", "]", line.strip()) for line in proc.stderr.splitlines() if line.strip()]
    return lines or ([f"ffmpeg exited with {proc.returncode}"] if proc.returncode else [])


def _ranges(times, ends):
    """Merge ``[t, ends(t)]`` intervals of ``times`` that overlap or touch into ``[[start, end], ...]``."""
    merged = []
    for t in sorted(times):
        end = ends(t)
        if merged and t <= merged[-1][1] + 1e-3:  # touching: timestamps are rounded to microseconds
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([t, end])
    return merged


def damaged_ranges(path, stream, until):
    """Time ranges of stream ``v:0``/``a:0`` that decode with errors, as ``[[start, end], ...]`` seconds.

    A packet is damaged when it yields no frame, or its frame logs an error. Packets that decoders
    drop by design (flag ``D``: edit lists, priming) are not. Damage to a video frame shows until the
    next keyframe (later frames predict from it), so a video range ends there (or at ``until``).
    """
    data, _ = _probe_json(path, ["-select_streams", stream, "-show_log", "16", "-show_entries",
                                 "packet=pts_time,duration_time,flags:frame=best_effort_timestamp_time:log=message"])
    items = data.get("packets_and_frames", [])
    packets = [p for p in items if p["type"] == "packet" and "D" not in p.get("flags", "")
               and p.get("pts_time") not in (None, "N/A")]
    frames = [f for f in items if f["type"] == "frame"]
    decoded = {f.get("best_effort_timestamp_time") for f in frames}
    bad = {float(p["pts_time"]) for p in packets if p["pts_time"] not in decoded}
    bad |= {float(f["best_effort_timestamp_time"]) for f in frames if f.get("logs")
            and f.get("best_effort_timestamp_time") not in (None, "N/A")}
    if stream.startswith("v"):
        keys = sorted(float(p["pts_time"]) for p in packets if p.get("flags", "").startswith("K"))
        return _ranges(bad, lambda t: next((k for k in keys if k > t), until))
    durations = {float(p["pts_time"]): float(p.get("duration_time") or 0) for p in packets}
    return _ranges(bad, lambda t: t + durations.get(t, 0.0))


def describe_damage(path, errors, start, duration, audio=True):
    """The damage record for video.json: error count, first lines, ranges per stream (output timeline).

    ``start`` is the source's first video frame time: ranges are shifted so that it is 0.
    """
    ranges = []
    for stream, name in (("v:0", "video"), ("a:0", "audio"))[:2 if audio else 1]:
        for lo, hi in damaged_ranges(path, stream, start + duration):
            if hi > start:  # ranges before the first video frame are cut off with the audio before it
                ranges.append({"stream": name, "start": round(max(lo - start, 0.0), 3), "end": round(hi - start, 3)})
    # sorted: FFmpeg's decoders run in threads, so the order of their lines can change between runs
    return {"errors": len(errors), "messages": sorted(set(errors))[:MAX_ERROR_LINES], "ranges": ranges}
