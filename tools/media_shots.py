"""Frames of tiny *real* clips with *exact* face boxes: camera shots of photos (tools/media_factory.py).

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

Boxes are integer pixels in the *coded* (stored) frame, clipped to the frame;
faces less than half visible are omitted; ``face`` tells which face of the
canvas a box is (0 = left one of ``astronaut_pair``).

At zoom 1 the window already spans the photo's full height (or width), so it
can only pan along the other axis; use zoom > 1 to pan freely.  A shot whose
window does not move (zoom and pan constant) gives identical frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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


def _texture(height: int, width: int, seed: int = 7) -> np.ndarray:
    """Smooth, low-contrast coloured texture without any face (float32 RGB)."""
    rng = np.random.default_rng(seed)
    wall = np.array([196, 186, 170], dtype=np.float32)  # muted beige
    coarse = wall + rng.uniform(-40, 40, size=(6, 10, 1)) + rng.uniform(-12, 12, size=(6, 10, 3))
    ys = np.linspace(0, coarse.shape[0] - 1, height, dtype=np.float32)
    xs = np.linspace(0, coarse.shape[1] - 1, width, dtype=np.float32)
    smooth = bilinear(coarse, ys, xs)
    grain = rng.normal(0, 6, size=(height, width, 1)).astype(np.float32)
    return np.clip(smooth + grain, 0, 255)


def bilinear(img: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
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


class ShotRenderer:
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
        return bilinear(self.canvas.pixels, ys, xs)

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
