"""Engine-independent parts of the detect-then-landmark engines (numpy only, no model stack).

Square tiles for full-range detection, non-maximum suppression, square face crops, landmark
boxes, and :class:`CropLandmarkEngine`: the shared ``describe`` (confirm detections, follow faces
between detections by their landmarks, drop duplicates) around an engine's ``describe_one``.
"""

import numpy as np

from steps.tracking.engines import Engine

CROP_SCALE = 2.0  # crop side / face size for models with their own short-range detector
MIN_CROP = 32  # pixels; smaller faces are upscaled by the landmark model's own resize
FOLLOW_MIN_IOU = 0.3  # a followed face must stay on its previous box (no jumping to a neighbour)
DUPLICATE_IOU = 0.5
NMS_OVERLAP = 0.5  # a detection mostly inside a better one (tile seams, face parts) is the same face


def square_tiles(width, height, max_aspect=1.2):
    """``[(x0, y0, side)]``: the frame itself if nearly square, else overlapping squares along its long side.

    The detector letterboxes its input to a square, so a 16:9 frame would waste 44% of it and
    shrink small faces below what it can see; two square tiles keep faces at their full size.
    """
    short, long = min(width, height), max(width, height)
    if long <= short * max_aspect:
        return [(0, 0, None)]
    count = -(-long // short)  # ceil
    offsets = [round(k * (long - short) / (count - 1)) for k in range(count)]
    return [(o, 0, short) if width >= height else (0, o, short) for o in offsets]


def overlap_of_smaller(a, b):
    iw = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    ih = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    return iw * ih / max(min(a[2] * a[3], b[2] * b[3]), 1e-9)


def non_max_suppression(detections, threshold=NMS_OVERLAP):
    """Best-first; drops detections whose intersection covers > ``threshold`` of the smaller box."""
    kept = []
    for det in sorted(detections, key=lambda d: (-d["score"], d["bbox"])):
        if all(overlap_of_smaller(det["bbox"], k["bbox"]) <= threshold for k in kept):
            kept.append(det)
    return kept


def box_iou(a, b):
    iw = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    ih = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    return iw * ih / (a[2] * a[3] + b[2] * b[3] - iw * ih)


def square_crop(frame, box, scale=CROP_SCALE):
    """A square crop centred on ``box``, ``scale`` times its larger side, zero-padded at the edges.

    Returns ``(crop, x0, y0, side)``: crop pixel (u, v) is frame pixel (x0 + u, y0 + v).
    """
    height, width = frame.shape[:2]
    cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
    side = max(int(round(max(box[2], box[3]) * scale)), MIN_CROP)
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    crop = np.zeros((side, side, 3), dtype=np.uint8)
    fx0, fy0, fx1, fy1 = max(x0, 0), max(y0, 0), min(x0 + side, width), min(y0 + side, height)
    if fx1 > fx0 and fy1 > fy0:
        crop[fy0 - y0:fy1 - y0, fx0 - x0:fx1 - x0] = frame[fy0:fy1, fx0:fx1]
    return crop, x0, y0, side


def to_frame_points(points, x0, y0, side):
    """Crop-normalised (x, y, z) landmarks -> frame pixels; z is scaled like x (MediaPipe's convention)."""
    pts = np.asarray(points, dtype=np.float64) * side
    pts[:, 0] += x0
    pts[:, 1] += y0
    return pts


def points_box(pts, width, height):
    """Bounding box ``[x, y, w, h]`` of landmark points, clipped to the frame."""
    x0, y0 = max(float(pts[:, 0].min()), 0.0), max(float(pts[:, 1].min()), 0.0)
    x1, y1 = min(float(pts[:, 0].max()), float(width)), min(float(pts[:, 1].max()), float(height))
    return [x0, y0, max(x1 - x0, 0.0), max(y1 - y0, 0.0)]


class CropLandmarkEngine(Engine):
    """An engine that finds faces with ``detect`` and describes each with ``describe_one``.

    ``describe_one(frame, hint)`` returns ``{"bbox", "landmarks", ...}`` for the face at
    ``hint["bbox"]``, or None when no face is there (which is how followed faces are dropped).
    A detection without landmarks is still reported (its box and score); a followed face must
    stay on its previous box (IoU >= FOLLOW_MIN_IOU).
    """

    def describe_one(self, frame, hint):
        raise NotImplementedError

    def describe(self, frame, hints):
        faces = []
        for hint in hints:
            followed = "score" not in hint
            face = self.describe_one(frame, hint)
            if face is not None and followed and box_iou(face["bbox"], hint["bbox"]) < FOLLOW_MIN_IOU:
                face = None  # drifted onto something else
            if face is None:
                if followed:
                    continue
                face = {"bbox": list(hint["bbox"])}  # a detection without landmarks is still a face
            if not followed:
                face["score"] = hint["score"]
            if all(box_iou(face["bbox"], other["bbox"]) < DUPLICATE_IOU for other in faces):
                faces.append(face)
        return faces
