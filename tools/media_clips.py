"""Tiny *real* MP4 clips with *known* ground truth: shots (tools/media_shots.py) cut or dissolved into a timeline
and encoded by ffmpeg, optionally with variable frame timing, display rotation, speech and talking mouths.

Ground truth returned by :func:`make_video`::

    {"fps": 25, "width": 320, "height": 180, "frame_count": 150,
     "duration": 6.0,                      # frame_count / fps, seconds
     "cuts": [75],                         # first frame of each new shot (hard cuts only)
     "transitions": [[70, 79]],            # only with transition="dissolve:N"
     "shots": [{"start_frame": 0, "end_frame": 74, "image": "astronaut"}, ...],
     "faces": [[{"bbox": [x, y, w, h], "face": 0}, ...], ...],   # per frame; "face": index in the canvas
     "frame_times": [...],                 # only with vfr=True: pts in seconds
     "rotation": 90, "display_size": [180, 320],   # only with rotate=...
     "audio": {"duration": 6.0}}           # only with audio=...

With a dissolve, shot start/end frames are the nominal boundaries, the dissolve straddles them, and a frame
lists the faces of every shot blended in with weight >= 0.5.
"""

from __future__ import annotations

import math
import subprocess
import tempfile
from fractions import Fraction

import numpy as np
from media_programs import require_program
from media_shots import Shot, ShotRenderer
from mp4_rotation import set_mp4_rotation


def fps_fraction(fps: float | int | str | Fraction) -> Fraction:
    """Exact frame rate from 25, 30, '30000/1001', 12.5, ..."""
    frac = Fraction(str(fps)) if not isinstance(fps, Fraction) else fps
    return frac.limit_denominator(1001)


# --------------------------------------------------------------------------- timeline


def _parse_transition(transition: str | None) -> int:
    """Return the dissolve length in frames (0 = hard cuts)."""
    if transition in (None, "", "cut"):
        return 0
    kind, _, arg = transition.partition(":")
    if kind != "dissolve" or not arg.isdigit() or int(arg) < 1:
        raise ValueError(f"transition must be None or 'dissolve:N', not {transition!r}")
    return int(arg)


def _timeline(shots: list[Shot], dissolve: int):
    """Shot boundaries, dissolve ranges and per-frame (shot, weight) mixes."""
    starts = np.cumsum([0] + [s.frames for s in shots]).tolist()
    total = starts[-1]
    transitions = []
    mixes: list[list[tuple[int, float]]] = [[(k, 1.0)] for k, shot in enumerate(shots) for _ in range(shot.frames)]
    if dissolve:
        for k in range(1, len(shots)):
            first = starts[k] - dissolve // 2
            last = first + dissolve - 1
            if first <= starts[k - 1] or last >= starts[k + 1] - 1:
                raise ValueError("dissolve longer than the shots around it")
            transitions.append([first, last])
            for f in range(first, last + 1):
                alpha = (f - first + 1) / (dissolve + 1)
                mixes[f] = [(k - 1, 1.0 - alpha), (k, alpha)]
    return starts, total, transitions, mixes


def _render(renderers, starts, mixes):
    """Yield (uint8 frame, faces) for every frame of the clip."""
    for f, mix in enumerate(mixes):
        acc = None
        faces: list[dict] = []
        for k, weight in mix:
            local = f - starts[k]
            img = renderers[k].frame(local) * weight
            acc = img if acc is None else acc + img
            if weight >= 0.5:
                faces.extend(renderers[k].faces(local))
        yield np.clip(np.rint(acc), 0, 255).astype(np.uint8), faces
# --------------------------------------------------------------------------- video


def _vfr_filter(fps: Fraction) -> tuple[str, Fraction]:
    """Filter making frame timing variable: offsets 0, +0.3, -0.2 frame repeating.

    Frame durations then cycle 1.3, 0.5, 1.2 nominal frames (mean = 1 frame).
    Returns the filter and its time base.
    """
    tb = 1 / (fps * 10)
    expr = "10*N+3*eq(mod(N,3),1)-2*eq(mod(N,3),2)"
    return f"settb={tb.numerator}/{tb.denominator},setpts='{expr}'", tb


def _vfr_times(count: int, fps: Fraction) -> list[float]:
    offsets = (0, 3, -2)
    return [round(float((10 * n + offsets[n % 3]) / (fps * 10)), 6) for n in range(count)]


def _ffmpeg_video_cmd(path, fps, size, audio, duration, codec, crf, vfr, rotate) -> list[str]:
    width, height = size
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
           "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}",
           "-framerate", f"{fps.numerator}/{fps.denominator}", "-i", "pipe:0"]
    if audio is not None:
        cmd += ["-i", str(audio)]
    cmd += ["-map", "0:v:0"]
    if audio is not None:
        cmd += ["-map", "1:a:0"]
    if vfr:
        # The encoder must keep the fine time base, and B-frames are disabled so
        # that demuxers report the real (varying) packet durations.
        vf, tb = _vfr_filter(fps)
        cmd += ["-vf", vf, "-fps_mode", "passthrough", "-enc_time_base:v", f"{tb.numerator}/{tb.denominator}",
                "-video_track_timescale", str(tb.denominator), "-bf", "0"]
    cmd += ["-c:v", codec, "-pix_fmt", "yuv420p"]
    if codec in ("libx264", "libx265"):
        cmd += ["-preset", "medium", "-crf", str(crf)]
    if codec == "libx264":
        cmd += ["-threads", "1", "-x264-params", "threads=1:lookahead-threads=1:sliced-threads=0"]
    if audio is not None:
        dur = f"{duration:.6f}"
        cmd += ["-af", f"apad=whole_dur={dur},atrim=duration={dur}",
                "-c:a", "aac", "-b:a", "48k", "-ac", "1"]
    cmd += ["-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact",
            "-map_metadata", "-1", "-map_chapters", "-1"]
    cmd += ["-f", "mp4", str(path)]
    return cmd


def make_video(path, shots, fps=25, size=(320, 180), *, audio=None, codec="libx264", crf=23,
               transition=None, vfr=False, rotate=0, frame_hook=None) -> dict:
    """Write an MP4 made of ``shots`` and return its ground truth (see module doc).

    path: output .mp4.  shots: list of :class:`Shot`.  fps: frame rate (25, 30,
    '30000/1001', ...).  size: (width, height), both even.
    audio: optional wav, encoded as AAC starting at t=0 and padded/trimmed to
    the exact video duration.  transition: None (hard cuts) or 'dissolve:N'.
    vfr: genuinely variable frame timing (mean rate = fps).  rotate: 0/90/180/270
    written as display-rotation metadata (pixels are not rotated).
    frame_hook: optional ``f(index, frame, faces) -> frame`` applied to every
    rendered uint8 frame before encoding (e.g. :func:`open_mouth` for a face
    that talks); the truth's face boxes are those before the hook.
    """
    require_program("ffmpeg")
    shots = list(shots)
    if not shots:
        raise ValueError("need at least one shot")
    width, height = size
    if width % 2 or height % 2:
        raise ValueError("width and height must be even for yuv420p")
    if rotate not in (0, 90, 180, 270):
        raise ValueError("rotate must be 0, 90, 180 or 270")
    rate = fps_fraction(fps)
    dissolve = _parse_transition(transition)
    starts, total, transitions, mixes = _timeline(shots, dissolve)
    duration = float(total / rate)
    renderers = [ShotRenderer(s, size) for s in shots]

    cmd = _ffmpeg_video_cmd(path, rate, size, audio, duration, codec, crf, vfr, rotate)
    faces_per_frame = []
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err)
        try:
            for index, (frame, faces) in enumerate(_render(renderers, starts, mixes)):
                if frame_hook is not None:
                    frame = frame_hook(index, frame, faces)
                proc.stdin.write(frame.tobytes())
                faces_per_frame.append(faces)
        except BrokenPipeError:
            pass
        finally:
            proc.stdin.close()
            code = proc.wait()
        if code != 0:
            err.seek(0)
            raise RuntimeError(f"ffmpeg failed ({code}): {' '.join(cmd)}\n{err.read().decode(errors='replace')}")
    if rotate:
        set_mp4_rotation(path, rotate)

    truth = {
        "fps": int(rate) if rate.denominator == 1 else float(rate),
        "width": width,
        "height": height,
        "frame_count": total,
        "duration": round(duration, 6),
        "cuts": [] if dissolve else starts[1:-1],
        "shots": [{"start_frame": starts[k], "end_frame": starts[k + 1] - 1, "image": s.image}
                  for k, s in enumerate(shots)],
        "faces": faces_per_frame,
    }
    if dissolve:
        truth["transitions"] = transitions
    if vfr:
        truth["frame_times"] = _vfr_times(total, rate)
    if rotate:
        truth["rotation"] = rotate
        truth["display_size"] = [height, width] if rotate in (90, 270) else [width, height]
    if audio is not None:
        truth["audio"] = {"duration": round(duration, 6)}
    return truth


#: Mouth of the astronaut (centre x, lip line y, width, height) as fractions of its face box.
ASTRONAUT_MOUTH = (0.45, 0.63, 0.42, 0.4)


def open_mouth(frame: np.ndarray, box, amount: float, mouth=ASTRONAUT_MOUTH) -> np.ndarray:
    """Return ``frame`` with the mouth of the face in ``box`` opened by ``amount`` (fraction of the face height).

    A talking face for tests: inside the mouth patch, each column is split at the lip line, the upper lip is
    pushed up and the lower lip down (a smooth vertical stretch that fades out at the patch edges) and the gap
    is filled with a dark mouth interior. The opening is widest in the middle of the mouth (cosine profile).
    ``amount`` 0 returns the frame unchanged; drive it with a speech envelope to make the lips move with speech.
    """
    if amount <= 0:
        return frame
    x, y, w, h = box
    cx, lip, mw, mh = mouth
    height, width = frame.shape[:2]
    x0, x1 = max(0, int(x + (cx - mw / 2) * w)), min(width, int(math.ceil(x + (cx + mw / 2) * w)))
    line = y + lip * h
    radius = mh * h / 2
    y0, y1 = max(0, int(line - radius)), min(height, int(math.ceil(line + radius)))
    if x1 <= x0 or y1 <= y0:
        return frame
    out = frame.astype(np.float32)
    rows = np.arange(y0, y1, dtype=np.float64)
    for col in range(x0, x1):
        u = (col + 0.5 - (x + cx * w)) / (mw * w / 2)
        half = 0.5 * amount * h * 0.5 * (1 + math.cos(math.pi * min(abs(u), 1.0)))
        if half <= 0:
            continue
        src = rows.copy()
        upper = rows < line - half
        lower = rows > line + half
        gap = ~(upper | lower)
        # [line - radius, line - half] <- [line - radius, line]; [line + half, line + radius] <- [line, line + radius]
        src[upper] = line - radius + (rows[upper] - (line - radius)) * radius / max(radius - half, 1e-6)
        src[lower] = line + radius - (line + radius - rows[lower]) * radius / max(radius - half, 1e-6)
        column = frame[:, col].astype(np.float32)
        for channel in range(frame.shape[2]):
            out[y0:y1, col, channel] = np.interp(src, np.arange(height), column[:, channel])
        out[y0:y1, col][gap] = (40.0, 18.0, 20.0)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
