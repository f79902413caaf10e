"""Engine ``openseeface``: OpenSeeFace's face detector and 66-point landmark model (ONNX) with onnxruntime.

OpenSeeFace is not on PyPI; only its two model files are used (user-supplied, checked by SHA-256),
with this module's own pre- and post-processing, written from the models' input/output contract:

- Both models take a 1 x 3 x 224 x 224 float RGB image normalised with the ImageNet mean and
  standard deviation ((pixel / 255 - mean) / std, per channel).
- Detector (``mnv3_detection_opt.onnx``): output ``output`` is 2 x 56 x 56 (stride 4): channel 0 a
  face-centre heatmap (the confidence), channel 1 the face's half size in units of 112 input
  pixels; output ``maxpool`` is the heatmap after a 3 x 3 max-pool, so a cell equal to it is a
  local maximum (the detector's own non-maximum suppression). A face is a square around its peak.
- Landmark model (``lm_model0_opt.onnx``): input is the face box grown by 10% of its width on the
  left and right and 12.5% of its height above and below (clipped to the frame), stretched to
  224 x 224; output is 198 x 28 x 28: 66 point heatmaps, then 66 maps of the vertical and 66 of
  the horizontal sub-cell offset. A point is its heatmap's maximum cell (28 cells span input pixels
  0..223) plus that cell's offset, decoded as ``223 * logit(value) / 16`` input pixels; the maximum
  is the point's confidence and their mean the face's confidence (a face is there above
  :data:`FACE_CONFIDENCE`).

The 66 points are the iBUG 300-W 68 points without the two *outer* mouth corners (48 and 54): 0-16
jaw, 17-26 brows, 27-35 nose, 36-47 eyes, 48-52 / 53-57 outer upper / lower lip, 58 and 62 the
mouth corners, 59-61 / 63-65 inner upper / lower lip (60 and 64 the middle of the lip gap).

Faces are found on square tiles of the frame (no letterbox, no stretching, so small faces keep
their size), the landmarks of a detection are taken twice: once on the crop around the detector's
box, whose centre sits high on the face, and again on the crop around those landmarks (the crop
the model sees when it follows a face, as OpenSeeFace does between frames); the better of the two
is kept. A face is reported only if the landmark model confirms it (the detector alone also fires
on face-like texture). The output ``bbox`` is the box of the landmarks (brows to chin, cheek to
cheek), ``score`` the detector's confidence (on detection frames), ``landmarks`` 66 x 2 pixels.
"""

import numpy as np
import onnxruntime

from steps.tracking.engines import check_model_file
from steps.tracking.engines.crop import CropLandmarkEngine, non_max_suppression, points_box, square_tiles
from steps.tracking.engines.onnx import choose_onnx_device, session

DETECTOR_KEY = "tracking.openseeface.detector"
LANDMARKS_KEY = "tracking.openseeface.landmarks"
DOWNLOAD = "https://github.com/emilianavt/OpenSeeFace/tree/master/models"

SIDE = 224  # input side of both models
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)  # ImageNet statistics, RGB
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
DETECTOR_STRIDE = 4  # input pixels per heatmap cell (56 x 56)
DETECTOR_HALF_SIZE = 112.0  # channel 1 * this = half the face side, input pixels
POINTS = 66
GRID = 28  # landmark heatmap cells per side
OFFSET_SCALE = 16.0  # offsets are logit(value) / 16 of the input side
MARGIN_X, MARGIN_Y = 0.1, 0.125  # landmark crop = face box grown by these fractions on each side
FACE_CONFIDENCE = 0.6  # mean point confidence of a face (OpenSeeFace's own default)
MIN_CROP = 4  # pixels; a smaller crop holds no face


def resample(frame, x0, y0, x1, y1, size=SIDE):
    """Frame region ``[x0, x1) x [y0, y1)`` (float pixel edges, inside the frame) as a ``size x size`` float32 image.

    Bilinear (pixel centres at half-integers, as OpenCV's INTER_LINEAR), after an integer box
    filter when the region shrinks more than twice (no aliasing on large frames).
    """
    factor = int(min(x1 - x0, y1 - y0) / size)
    if factor >= 2:
        left, top = int(x0), int(y0)
        region = frame[top:int(np.ceil(y1)), left:int(np.ceil(x1))]
        rh, rw = region.shape[0] // factor * factor, region.shape[1] // factor * factor
        frame = region[:rh, :rw].reshape(rh // factor, factor, rw // factor, factor, 3).mean(axis=(1, 3))
        x0, x1, y0, y1 = (x0 - left) / factor, (x1 - left) / factor, (y0 - top) / factor, (y1 - top) / factor
    height, width = frame.shape[:2]
    xs = np.clip(x0 + (np.arange(size) + 0.5) * (x1 - x0) / size - 0.5, 0, width - 1)
    ys = np.clip(y0 + (np.arange(size) + 0.5) * (y1 - y0) / size - 0.5, 0, height - 1)
    xa, ya = xs.astype(np.intp), ys.astype(np.intp)
    xb, yb = np.minimum(xa + 1, width - 1), np.minimum(ya + 1, height - 1)
    fx, fy = (xs - xa).astype(np.float32)[None, :, None], (ys - ya).astype(np.float32)[:, None, None]
    c0, c1 = int(xa[0]), int(xb[-1]) + 1  # the columns in use: rows are interpolated first, on those only
    upper, lower = frame[ya, c0:c1].astype(np.float32), frame[yb, c0:c1].astype(np.float32)
    rows = upper + (lower - upper) * fy
    left_px, right_px = np.take(rows, xa - c0, axis=1), np.take(rows, xb - c0, axis=1)
    return left_px + (right_px - left_px) * fx


def model_input(images):
    """float32 ``N x 224 x 224 x 3`` RGB in 0..255 -> the models' normalised ``N x 3 x 224 x 224``."""
    batch = (np.asarray(images, dtype=np.float32) / 255.0 - MEAN) / STD
    return np.ascontiguousarray(batch.transpose(0, 3, 1, 2))


def decode_detections(heatmap, maxpool, threshold):
    """``[(score, cx, cy, half)]`` in input pixels from one image's detector outputs (2 x 56 x 56 each)."""
    peaks = (heatmap[0] == maxpool[0]) & (heatmap[0] >= threshold)
    found = []
    for row, col in zip(*np.nonzero(peaks)):
        half = float(heatmap[1, row, col]) * DETECTOR_HALF_SIZE
        found.append((float(heatmap[0, row, col]), (col + 0.5) * DETECTOR_STRIDE, (row + 0.5) * DETECTOR_STRIDE, half))
    return found


def _logit(p):
    p = np.clip(p.astype(np.float64), 1e-7, 1 - 1e-7)
    return np.log(p / (1 - p))


def decode_landmarks(output):
    """66 x 2 ``(x, y)`` in input pixels and 66 confidences from one crop's 198 x 28 x 28 landmark output."""
    maps = output.reshape(3, POINTS, GRID * GRID)
    cell = maps[0].argmax(axis=1)
    rows = np.arange(POINTS)
    confidence = maps[0][rows, cell].astype(np.float64)
    span = SIDE - 1  # the 28 cells span input pixels 0 .. 223
    y = span * (cell // GRID / (GRID - 1) + _logit(maps[1][rows, cell]) / OFFSET_SCALE)
    x = span * (cell % GRID / (GRID - 1) + _logit(maps[2][rows, cell]) / OFFSET_SCALE)
    return np.stack([x, y], axis=1), confidence


def landmark_crop(box, width, height):
    """The landmark model's crop ``(x0, y0, x1, y1)`` around face ``box``, clipped to the frame (None if empty)."""
    x, y, w, h = box
    x0, y0 = max(x - MARGIN_X * w, 0.0), max(y - MARGIN_Y * h, 0.0)
    x1, y1 = min(x + w + MARGIN_X * w, float(width)), min(y + h + MARGIN_Y * h, float(height))
    if x1 - x0 < MIN_CROP or y1 - y0 < MIN_CROP:
        return None
    return x0, y0, x1, y1


class OpenSeeFace(CropLandmarkEngine):
    name = "openseeface"

    def __init__(self, settings, device="cpu"):
        super().__init__(settings, device)
        options = settings.openseeface
        self.detector = session(options["detector"], device)
        self.landmarker = session(options["landmarks"], device)

    @classmethod
    def check_models(cls, settings):
        options = settings.openseeface
        detector = check_model_file(options["detector"], options["detector_sha256"],
                                    DETECTOR_KEY, DOWNLOAD)
        landmarks = check_model_file(options["landmarks"], options["landmarks_sha256"],
                                     LANDMARKS_KEY, DOWNLOAD)
        return {"name": "openseeface", "detector": _file_name(options["detector"]), "detector_sha256": detector,
                "landmark_model": _file_name(options["landmarks"]), "landmarks_sha256": landmarks,
                "landmarks": POINTS, "onnxruntime": onnxruntime.__version__}

    @classmethod
    def choose_device(cls, settings, gpus):
        return choose_onnx_device(gpus, settings.openseeface["landmarks"])

    def detect(self, frame):
        height, width = frame.shape[:2]
        tiles = [(x0, y0, side or width, side or height) for x0, y0, side in square_tiles(width, height)]
        images = [resample(frame, x0, y0, x0 + w, y0 + h) for x0, y0, w, h in tiles]
        heatmaps, maxpools = self.detector.run(None, {"input": model_input(images)})
        found = []
        for (tx, ty, tw, th), heatmap, maxpool in zip(tiles, heatmaps, maxpools):
            sx, sy = tw / SIDE, th / SIDE
            for score, cx, cy, half in decode_detections(heatmap, maxpool, self.settings.min_score):
                x0, y0 = max(tx + (cx - half) * sx, 0.0), max(ty + (cy - half) * sy, 0.0)
                x1, y1 = min(tx + (cx + half) * sx, float(width)), min(ty + (cy + half) * sy, float(height))
                if x1 - x0 >= 2 and y1 - y0 >= 2:
                    found.append({"bbox": [x0, y0, x1 - x0, y1 - y0], "score": min(max(score, 0.0), 1.0)})
        return non_max_suppression(found)[: self.settings.max_faces]

    def landmarks(self, frame, box):
        """``(points 66 x 2 frame pixels, confidence)`` for the face at ``box``, or None if the crop is empty."""
        height, width = frame.shape[:2]
        crop = landmark_crop(box, width, height)
        if crop is None:
            return None
        x0, y0, x1, y1 = crop
        output = self.landmarker.run(None, {"input": model_input([resample(frame, *crop)])})[0][0]
        points, confidence = decode_landmarks(output)
        points[:, 0] = x0 + points[:, 0] * (x1 - x0) / SIDE
        points[:, 1] = y0 + points[:, 1] * (y1 - y0) / SIDE
        return points, float(confidence.mean())

    def describe_one(self, frame, hint):
        height, width = frame.shape[:2]
        result = self.landmarks(frame, hint["bbox"])
        if result is not None and "score" in hint:  # a detection: again on the crop around its landmarks
            again = self.landmarks(frame, points_box(result[0], width, height))
            result = again if again is not None and again[1] >= result[1] else result
        if result is None or not result[1] >= FACE_CONFIDENCE or not np.isfinite(result[0]).all():
            return None
        points, _ = result
        return {"bbox": points_box(points, width, height), "landmarks": points}

    def describe(self, frame, hints):
        """Only faces the landmark model confirms: the detector alone finds face-like texture."""
        return [face for face in super().describe(frame, hints) if "landmarks" in face]

    def close(self):
        self.detector = self.landmarker = None


def _file_name(path):
    return str(path).replace("\\", "/").rsplit("/", 1)[-1]


ENGINE = OpenSeeFace
