#!/usr/bin/env python3
"""Tiny *real* media with *known* ground truth, for tests, demos and benchmarks.

Pictures come from the photos bundled with scikit-image (``astronaut`` is a real
human face), speech from ``espeak-ng``; encoding is done by ``ffmpeg``.  Only
numpy, scikit-image (imported lazily) and the standard library are used.

Video model
-----------
A clip is a list of :class:`Shot`.  Each shot shows one *canvas* (a photo, two
astronauts side by side, or a synthetic texture) through a moving crop window
("virtual camera"): the window centre moves linearly from ``pan[0:2]`` to
``pan[2:4]`` (fractions of the canvas) and its scale from ``zoom[0]`` to
``zoom[1]`` over the shot, so consecutive frames differ slightly.  At
``zoom == 1`` the window is the largest one of the output aspect ratio that fits
the photo; ``zoom == 2`` shows half of that height.  ``face_scale`` instead
fixes the face height as a fraction of the frame height at zoom 1 (e.g. 0.1 for
a small face); when the window then grows beyond the photo, the photo is placed
in the middle of a larger textured canvas.  Windows are always clamped to the
canvas.  Face boxes are tracked analytically, so the truth is exact.

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

Boxes are integer pixels in the *coded* (stored) frame, clipped to the frame;
faces less than half visible are omitted; ``face`` tells which face of the
canvas a box is (0 = left one of ``astronaut_pair``).  With a dissolve, shot start/end
frames are the nominal boundaries, the dissolve straddles them, and a frame
lists the faces of every shot blended in with weight >= 0.5.

At zoom 1 the window already spans the photo's full height (or width), so it
can only pan along the other axis; use zoom > 1 to pan freely.  A shot whose
window does not move (zoom and pan constant) gives identical frames.

Speech model
------------
:func:`make_speech` renders turns ``(start_sec, voice, text)`` with espeak-ng,
trims each utterance's leading/trailing silence (|sample| below 1 % of full
scale) and places it at ``start_sec`` in an otherwise digitally silent track, so
segment boundaries are exact by construction.

Everything is deterministic: the same arguments on the same machine give
byte-identical files (bit-exact ffmpeg flags, single-threaded x264, no
timestamps or metadata written).  Different ffmpeg/x264/espeak-ng versions may
of course give different bytes.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import shutil
import subprocess
import sys
import tempfile
import wave
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

#: Face (hairline to chin, cheek to cheek) in the 512x512 ``skimage.data.astronaut()``,
#: read off magnified crops; skimage's LBP frontal-face cascade finds (175, 70, 93, 93)
#: (forehead to mouth, IoU 0.70 with this box).
ASTRONAUT_FACE_BOX = (178, 75, 96, 110)
#: The cameraman's face in ``skimage.data.camera()`` (profile view: ear to nose tip).
CAMERA_FACE_BOX = (180, 120, 75, 75)

#: Canvases that may be used as ``Shot.image``.  ``chelsea`` is a cat: it has no
#: *human* face (some detectors may still fire on it).  More can be added with :func:`add_canvas`.
IMAGES = ("astronaut", "astronaut_pair", "camera", "coffee", "chelsea", "rocket", "blank")
_ADDED_CANVASES: dict = {}

BLANK_SIZE = (360, 640)  # (height, width) of the synthetic "blank" texture
SPEECH_THRESHOLD = 0.01  # fraction of full scale below which a sample counts as silence
MIN_VISIBLE = 0.5  # faces less visible than this fraction are left out of the truth


@dataclass
class Shot:
    """One continuous camera shot.

    image: a name from :data:`IMAGES`.
    frames: number of frames of the shot.
    zoom: (start, end) scale of the crop window; >1 zooms in, linear in time.
    pan: (start cx, start cy, end cx, end cy) of the window centre as
        fractions of the canvas, linear in time (clamped to keep the window on
        the canvas).
    face_scale: if set, face height / frame height at zoom 1 (e.g. 0.1 gives a
        small face); requires an image with a face.
    """

    image: str
    frames: int
    zoom: tuple[float, float] = (1.0, 1.0)
    pan: tuple[float, float, float, float] = (0.5, 0.5, 0.5, 0.5)
    face_scale: float | None = None


# --------------------------------------------------------------------------- helpers


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run a command, raising with its stderr on failure."""
    proc = subprocess.run(cmd, capture_output=True, **kwargs)
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace") if isinstance(proc.stderr, bytes) else proc.stderr
        raise RuntimeError(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{err}")
    return proc


def _require(binary: str) -> None:
    if shutil.which(binary) is None:
        raise RuntimeError(f"required program {binary!r} not found on PATH")


def _fps_fraction(fps: float | int | str | Fraction) -> Fraction:
    """Exact frame rate from 25, 30, '30000/1001', 12.5, ..."""
    frac = Fraction(str(fps)) if not isinstance(fps, Fraction) else fps
    return frac.limit_denominator(1001)


def _texture(height: int, width: int, seed: int = 7) -> np.ndarray:
    """Smooth, low-contrast coloured texture without any face (float32 RGB)."""
    rng = np.random.default_rng(seed)
    wall = np.array([196, 186, 170], dtype=np.float32)  # muted beige
    coarse = wall + rng.uniform(-40, 40, size=(6, 10, 1)) + rng.uniform(-12, 12, size=(6, 10, 3))
    ys = np.linspace(0, coarse.shape[0] - 1, height, dtype=np.float32)
    xs = np.linspace(0, coarse.shape[1] - 1, width, dtype=np.float32)
    smooth = _bilinear(coarse, ys, xs)
    grain = rng.normal(0, 6, size=(height, width, 1)).astype(np.float32)
    return np.clip(smooth + grain, 0, 255)


def _bilinear(img: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Sample ``img`` (HxWxC) at the grid ``ys`` x ``xs`` (pixel-index coordinates)."""
    h, w = img.shape[:2]
    ys = np.clip(ys, 0, h - 1)
    xs = np.clip(xs, 0, w - 1)
    y0 = np.floor(ys).astype(np.intp)
    x0 = np.floor(xs).astype(np.intp)
    y1 = np.minimum(y0 + 1, h - 1)
    x1 = np.minimum(x0 + 1, w - 1)
    fy = (ys - y0)[:, None, None].astype(np.float32)
    fx = (xs - x0)[None, :, None].astype(np.float32)
    top = img[y0]
    bottom = img[y1]
    upper = top[:, x0] * (1 - fx) + top[:, x1] * fx
    lower = bottom[:, x0] * (1 - fx) + bottom[:, x1] * fx
    return upper * (1 - fy) + lower * fy


# --------------------------------------------------------------------------- canvases


@dataclass
class _Canvas:
    pixels: np.ndarray  # HxWx3 float32
    faces: list[tuple[float, float, float, float]]  # (x, y, w, h) in canvas pixels


def add_canvas(name: str, pixels: np.ndarray, faces) -> None:
    """Make ``name`` usable as ``Shot.image``: an RGB picture (HxWx3) with its face boxes (x, y, w, h)."""
    if name in IMAGES:
        raise ValueError(f"{name!r} is a built-in image")
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(f"canvas {name!r} must be HxWx3 RGB, not {pixels.shape}")
    _ADDED_CANVASES[name] = _Canvas(pixels.astype(np.float32), [tuple(map(float, f)) for f in faces])


def _load_photo(name: str) -> _Canvas:
    """Return the photo ``name`` with its annotated faces."""
    if name in _ADDED_CANVASES:
        added = _ADDED_CANVASES[name]
        return _Canvas(added.pixels.copy(), list(added.faces))
    if name not in IMAGES:
        raise ValueError(f"unknown image {name!r}; choose from {IMAGES} or one added with add_canvas()")
    if name == "blank":
        return _Canvas(_texture(*BLANK_SIZE), [])
    from skimage import data  # lazy: heavy import

    if name == "astronaut_pair":
        one = data.astronaut()
        pair = np.concatenate([one, one[:, ::-1]], axis=1)
        x, y, w, h = ASTRONAUT_FACE_BOX
        mirrored = (2 * one.shape[1] - x - w, y, w, h)
        return _Canvas(pair.astype(np.float32), [ASTRONAUT_FACE_BOX, mirrored])
    img = getattr(data, name)()
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    faces = {"astronaut": [ASTRONAUT_FACE_BOX], "camera": [CAMERA_FACE_BOX]}.get(name, [])
    return _Canvas(img[:, :, :3].astype(np.float32), list(faces))


def _base_window_height(shot: Shot, canvas: _Canvas, aspect: float) -> float:
    """Crop-window height (canvas pixels) at zoom 1."""
    h, w = canvas.pixels.shape[:2]
    if shot.face_scale is None:
        return min(h, w / aspect)
    if not canvas.faces:
        raise ValueError(f"face_scale needs an image with a face, not {shot.image!r}")
    if not 0 < shot.face_scale <= 1:
        raise ValueError("face_scale must be in (0, 1]")
    face_h = max(f[3] for f in canvas.faces)
    return face_h / shot.face_scale


def _pad_canvas(canvas: _Canvas, min_h: float, min_w: float) -> _Canvas:
    """Centre the canvas on a texture big enough for a ``min_h`` x ``min_w`` window."""
    h, w = canvas.pixels.shape[:2]
    new_h, new_w = max(h, math.ceil(min_h)), max(w, math.ceil(min_w))
    if (new_h, new_w) == (h, w):
        return canvas
    big = _texture(new_h, new_w)
    oy, ox = (new_h - h) // 2, (new_w - w) // 2
    big[oy : oy + h, ox : ox + w] = canvas.pixels
    faces = [(x + ox, y + oy, fw, fh) for x, y, fw, fh in canvas.faces]
    return _Canvas(big, faces)


def _downscale(canvas: _Canvas, factor: float) -> _Canvas:
    """Anti-aliased resize of the canvas by ``factor`` (< 1), faces scaled too."""
    from skimage.transform import resize  # lazy

    h, w = canvas.pixels.shape[:2]
    nh, nw = max(2, round(h * factor)), max(2, round(w * factor))
    pixels = resize(canvas.pixels, (nh, nw), order=1, anti_aliasing=True, preserve_range=True)
    sy, sx = nh / h, nw / w
    faces = [(x * sx, y * sy, fw * sx, fh * sy) for x, y, fw, fh in canvas.faces]
    return _Canvas(pixels.astype(np.float32), faces)


class _ShotRenderer:
    """Renders frames of one shot and the matching face boxes."""

    def __init__(self, shot: Shot, size: tuple[int, int]):
        if shot.frames < 1:
            raise ValueError("a shot needs at least one frame")
        if min(shot.zoom) <= 0:
            raise ValueError("zoom must be positive")
        self.shot = shot
        self.out_w, self.out_h = size
        aspect = self.out_w / self.out_h
        canvas = _load_photo(shot.image)
        base_h = _base_window_height(shot, canvas, aspect)
        # Pre-shrink (anti-aliased) so the tightest window maps ~1:1 to the output.
        factor = self.out_h / (base_h / max(shot.zoom))
        if factor < 1:
            old_h = canvas.pixels.shape[0]
            canvas = _downscale(canvas, factor)
            base_h *= canvas.pixels.shape[0] / old_h
        widest = base_h / min(shot.zoom)
        if shot.face_scale is not None:  # leave room to pan around the photo
            widest *= 1.5
        self.canvas = _pad_canvas(canvas, widest, widest * aspect)
        self.base_h = base_h

    def window(self, index: int) -> tuple[float, float, float, float]:
        """Crop window (x0, y0, w, h) in continuous canvas coordinates for frame ``index``."""
        shot = self.shot
        t = 0.0 if shot.frames == 1 else min(max(index, 0), shot.frames - 1) / (shot.frames - 1)
        zoom = shot.zoom[0] + (shot.zoom[1] - shot.zoom[0]) * t
        cx = shot.pan[0] + (shot.pan[2] - shot.pan[0]) * t
        cy = shot.pan[1] + (shot.pan[3] - shot.pan[1]) * t
        ch, cw = self.canvas.pixels.shape[:2]
        wh = min(self.base_h / zoom, ch)
        ww = min(wh * self.out_w / self.out_h, cw)
        wh = ww * self.out_h / self.out_w
        cxp = min(max(cx * cw, ww / 2), cw - ww / 2)
        cyp = min(max(cy * ch, wh / 2), ch - wh / 2)
        return cxp - ww / 2, cyp - wh / 2, ww, wh

    def frame(self, index: int) -> np.ndarray:
        """Float32 RGB frame (out_h x out_w x 3)."""
        x0, y0, ww, wh = self.window(index)
        xs = x0 + (np.arange(self.out_w, dtype=np.float64) + 0.5) * ww / self.out_w - 0.5
        ys = y0 + (np.arange(self.out_h, dtype=np.float64) + 0.5) * wh / self.out_h - 0.5
        return _bilinear(self.canvas.pixels, ys, xs)

    def faces(self, index: int) -> list[dict]:
        """Face boxes (output pixels) visible in frame ``index``."""
        x0, y0, ww, wh = self.window(index)
        sx, sy = self.out_w / ww, self.out_h / wh
        boxes = []
        for number, (fx, fy, fw, fh) in enumerate(self.canvas.faces):
            left, top = (fx - x0) * sx, (fy - y0) * sy
            right, bottom = left + fw * sx, top + fh * sy
            cl, ct = max(left, 0.0), max(top, 0.0)
            cr, cb = min(right, float(self.out_w)), min(bottom, float(self.out_h))
            if cr <= cl or cb <= ct:
                continue
            if (cr - cl) * (cb - ct) < MIN_VISIBLE * (right - left) * (bottom - top):
                continue
            x, y = round(cl), round(ct)
            boxes.append({"bbox": [x, y, round(cr) - x, round(cb) - y], "face": number})
        return boxes


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


# --------------------------------------------------------------------------- mp4 rotation

_CONTAINER_BOXES = {b"moov", b"trak", b"mdia"}


def _boxes(data: bytes, start: int, end: int):
    """Yield (type, start, payload_start, end) of the ISO-BMFF boxes in data[start:end]."""
    pos = start
    while pos + 8 <= end:
        size = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        header = 8
        if size == 1:
            size, header = int.from_bytes(data[pos + 8 : pos + 16], "big"), 16
        elif size == 0:
            size = end - pos
        if size < header:
            raise ValueError("corrupt mp4 box")
        yield kind, pos, pos + header, pos + size
        pos += size


def _video_tkhd_offset(data: bytes) -> int:
    """Offset of the tkhd payload of the first video track."""
    for kind, _, moov, moov_end in _boxes(data, 0, len(data)):
        if kind != b"moov":
            continue
        for tkind, _, trak, trak_end in _boxes(data, moov, moov_end):
            if tkind != b"trak":
                continue
            tkhd = handler = None
            for bkind, _, payload, bend in _boxes(data, trak, trak_end):
                if bkind == b"tkhd":
                    tkhd = payload
                elif bkind == b"mdia":
                    for mkind, _, mpayload, _ in _boxes(data, payload, bend):
                        if mkind == b"hdlr":
                            handler = data[mpayload + 8 : mpayload + 12]
            if handler == b"vide" and tkhd is not None:
                return tkhd
    raise ValueError("no video track in mp4")


def set_mp4_rotation(path, degrees: int) -> None:
    """Write a display matrix asking players to rotate the video clockwise by ``degrees``.

    Equivalent to the old ``-metadata:s:v:0 rotate=N`` (ignored by ffmpeg 5.1's
    muxer, and ``-display_rotation`` only exists from ffmpeg 6): ffprobe then
    reports ``side_data_list[].rotation == -degrees`` (counter-clockwise
    convention) and players show the rotated picture.  Patches the tkhd box.
    """
    data = bytearray(Path(path).read_bytes())
    tkhd = _video_tkhd_offset(bytes(data))
    version = data[tkhd]
    matrix_at = tkhd + 4 + (32 if version == 1 else 20) + 16
    width = int.from_bytes(data[matrix_at + 36 : matrix_at + 40], "big") >> 16
    height = int.from_bytes(data[matrix_at + 40 : matrix_at + 44], "big") >> 16
    a, b, c, d, tx, ty = {0: (1, 0, 0, 1, 0, 0), 90: (0, 1, -1, 0, height, 0),
                          180: (-1, 0, 0, -1, width, height), 270: (0, -1, 1, 0, 0, width)}[degrees % 360]
    values = [a << 16, b << 16, 0, c << 16, d << 16, 0, tx << 16, ty << 16, 1 << 30]
    data[matrix_at : matrix_at + 36] = b"".join((v & 0xFFFFFFFF).to_bytes(4, "big") for v in values)
    Path(path).write_bytes(bytes(data))


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
    _require("ffmpeg")
    shots = list(shots)
    if not shots:
        raise ValueError("need at least one shot")
    width, height = size
    if width % 2 or height % 2:
        raise ValueError("width and height must be even for yuv420p")
    if rotate not in (0, 90, 180, 270):
        raise ValueError("rotate must be 0, 90, 180 or 270")
    rate = _fps_fraction(fps)
    dissolve = _parse_transition(transition)
    starts, total, transitions, mixes = _timeline(shots, dissolve)
    duration = float(total / rate)
    renderers = [_ShotRenderer(s, size) for s in shots]

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


# --------------------------------------------------------------------------- audio


def _write_wav(path, samples: np.ndarray, sample_rate: int) -> None:
    """Write mono 16-bit PCM (deterministic, stdlib only)."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(samples.astype("<i2").tobytes())


def make_silence(path, duration, sample_rate=16000) -> dict:
    """Write ``duration`` seconds of digital silence as a mono 16-bit wav."""
    count = round(duration * sample_rate)
    _write_wav(path, np.zeros(count, dtype=np.int16), sample_rate)
    return {"sample_rate": sample_rate, "duration": round(count / sample_rate, 6), "segments": []}


@functools.lru_cache(maxsize=64)
def _espeak_wav(voice: str, text: str) -> bytes:
    """Raw espeak-ng output (a 22.05 kHz wav file) for ``text``."""
    _require("espeak-ng")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "say.wav"
        _run(["espeak-ng", "-v", voice, "-w", str(out), "--stdin"], input=text.encode())
        return out.read_bytes()


@functools.lru_cache(maxsize=16)
def check_voice(voice: str) -> None:
    """Raise ValueError if espeak-ng silently ignores the ``+variant`` of ``voice``.

    espeak-ng 1.51 does that for language aliases such as ``en-gb+f3`` (it
    speaks plain ``en-gb``, a male voice); ``en+f3`` or ``en-us+f3`` work.
    """
    base, plus, _variant = voice.partition("+")
    if plus and _espeak_wav(voice, "check") == _espeak_wav(base, "check"):
        raise ValueError(f"espeak-ng ignores the variant in {voice!r} (same audio as {base!r}); "
                         f"try 'en+f3' for British English or 'en-us+f3'")


@functools.lru_cache(maxsize=64)
def _utterance_bytes(voice: str, text: str, sample_rate: int) -> bytes:
    _require("ffmpeg")
    check_voice(voice)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "say.wav"
        raw.write_bytes(_espeak_wav(voice, text))
        pcm = _run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-i", str(raw),
                    "-ac", "1", "-ar", str(sample_rate), "-fflags", "+bitexact",
                    "-f", "s16le", "-acodec", "pcm_s16le", "pipe:1"]).stdout
    samples = np.frombuffer(pcm, dtype="<i2")
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > SPEECH_THRESHOLD * 32767)
    if loud.size == 0:
        raise RuntimeError(f"espeak-ng produced silence for voice {voice!r}: {text!r}")
    first, end = loud[0], loud[-1] + 1
    # Whole milliseconds, so that the 3-decimal segment times in the truth are exact.
    step = sample_rate // 1000 if sample_rate % 1000 == 0 else 1
    end = first + -(-(end - first) // step) * step
    utterance = samples[first:end]
    utterance = np.concatenate([utterance, np.zeros(end - first - len(utterance), dtype="<i2")])
    return utterance.tobytes()


def synthesize(voice: str, text: str, sample_rate: int = 16000) -> np.ndarray:
    """espeak-ng utterance as int16 mono at ``sample_rate``.

    Leading/trailing samples below :data:`SPEECH_THRESHOLD` are trimmed; the
    length is rounded up to whole milliseconds (when ``sample_rate`` is a
    multiple of 1000) so segment times are exact to the millisecond.
    """
    return np.frombuffer(_utterance_bytes(voice, text, sample_rate), dtype="<i2").copy()


def layout_turns(utterances, start=0.3, gap=0.5, sample_rate=16000) -> list[tuple[float, str, str]]:
    """Turn list for :func:`make_speech` with ``gap`` seconds between utterances.

    utterances: list of (voice, text).  Returns [(start_sec, voice, text), ...]
    (starts rounded to the millisecond); make_speech() reports the exact ends.
    """
    turns, t = [], start
    for voice, text in utterances:
        turns.append((round(t, 3), voice, text))
        t = round(t, 3) + len(synthesize(voice, text, sample_rate)) / sample_rate + gap
    return turns


def make_speech(path, turns, duration, sample_rate=16000) -> dict:
    """Write a mono wav of ``duration`` s with espeak-ng speech at the given turns.

    turns: list of (start_sec, voice, text).  Each utterance is trimmed of
    silence and starts exactly at start_sec rounded to the millisecond, so the
    returned times are exact (for sample rates that are multiples of 1000 Hz).
    Raises ValueError if turns overlap or run past ``duration``.
    Returns {"sample_rate", "duration", "segments": [{"start", "end", "speaker", "text"}]}.
    """
    total = round(duration * sample_rate)
    track = np.zeros(total, dtype=np.int16)
    segments, previous_end = [], 0
    for start_sec, voice, text in sorted(turns, key=lambda t: t[0]):
        if start_sec < 0:
            raise ValueError(f"turn {text!r} starts before 0")
        utterance = synthesize(voice, text, sample_rate)
        first = round(round(start_sec, 3) * sample_rate)
        last = first + len(utterance)
        if first < previous_end:
            raise ValueError(f"turn {text!r} at {start_sec}s overlaps the previous turn")
        if last > total:
            raise ValueError(f"turn {text!r} ends at {last / sample_rate:.3f}s, after {duration}s")
        track[first:last] = utterance
        previous_end = last
        segments.append({"start": round(first / sample_rate, 3), "end": round(last / sample_rate, 3),
                         "speaker": voice, "text": text})
    _write_wav(path, track, sample_rate)
    return {"sample_rate": sample_rate, "duration": round(total / sample_rate, 6), "segments": segments}


# --------------------------------------------------------------------------- CLI


def _parse_shot(spec: str) -> Shot:
    """IMAGE:FRAMES[:ZOOM0:ZOOM1[:CX0:CY0:CX1:CY1]]"""
    parts = spec.split(":")
    shot = Shot(parts[0], int(parts[1]))
    if len(parts) >= 4:
        shot.zoom = (float(parts[2]), float(parts[3]))
    if len(parts) >= 8:
        shot.pan = tuple(float(p) for p in parts[4:8])
    return shot


def _parse_turn(spec: str) -> tuple[float, str, str]:
    """START:VOICE:TEXT"""
    start, voice, text = spec.split(":", 2)
    return float(start), voice, text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="Make tiny real test media with known ground truth (printed as JSON).",
        epilog="example: media_factory.py video clip.mp4 --shot astronaut:50:1:1.2 --shot coffee:50 "
               "--turn '0.2:en-us+m3:Hello there' --turn '1.8:en+f3:Good morning'")
    sub = parser.add_subparsers(dest="cmd", required=True)
    video = sub.add_parser("video", help="write an MP4 (optionally with speech)")
    video.add_argument("output")
    video.add_argument("--shot", action="append", required=True,
                       help="IMAGE:FRAMES[:ZOOM0:ZOOM1[:CX0:CY0:CX1:CY1]]; images: " + ", ".join(IMAGES))
    video.add_argument("--turn", action="append", default=[], help="START:VOICE:TEXT speech turn")
    video.add_argument("--fps", default="25")
    video.add_argument("--size", default="320x180", help="WIDTHxHEIGHT")
    video.add_argument("--crf", type=int, default=23)
    video.add_argument("--transition", default=None, help="dissolve:N")
    video.add_argument("--vfr", action="store_true")
    video.add_argument("--rotate", type=int, default=0)
    video.add_argument("--truth", help="write the truth JSON here instead of stdout")
    speech = sub.add_parser("speech", help="write a speech wav")
    speech.add_argument("output")
    speech.add_argument("--turn", action="append", required=True, help="START:VOICE:TEXT")
    speech.add_argument("--duration", type=float, required=True)
    speech.add_argument("--sample-rate", type=int, default=16000)
    args = parser.parse_args(argv)

    if args.cmd == "speech":
        truth = make_speech(args.output, [_parse_turn(t) for t in args.turn], args.duration, args.sample_rate)
        print(json.dumps(truth, indent=1))
        return 0

    shots = [_parse_shot(s) for s in args.shot]
    width, height = (int(v) for v in args.size.lower().split("x"))
    rate = _fps_fraction(args.fps)
    duration = float(sum(s.frames for s in shots) / rate)
    with tempfile.TemporaryDirectory() as tmp:
        audio, speech_truth = None, None
        if args.turn:
            audio = Path(tmp) / "speech.wav"
            speech_truth = make_speech(audio, [_parse_turn(t) for t in args.turn], duration)
        truth = make_video(args.output, shots, rate, (width, height), audio=audio, crf=args.crf,
                           transition=args.transition, vfr=args.vfr, rotate=args.rotate)
    if speech_truth:
        truth["speech"] = speech_truth
    text = json.dumps(truth)
    if args.truth:
        Path(args.truth).write_text(text + "\n")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
