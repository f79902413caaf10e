"""Shared by the MediaPipe engines: full-range face detection, then FaceMesh landmarks per face.

MediaPipe's own FaceMesh/FaceLandmarker detector is short-range (faces larger than ~20% of the
image), so faces are found with the full-range detector (on square tiles of the frame), and the
FaceMesh landmark model (``FaceLandmarkCpu`` from the wheel) then runs on a region of interest
around each face: MediaPipe's own detection -> ROI -> landmarks pipeline, with the full-range
detector and several faces. The landmark model also confirms a face (it outputs nothing below its
face-presence threshold), which lets faces be followed between detections. Imports mediapipe:
only the tracking_mediapipe env imports this module.
"""

import numpy as np
from google.protobuf import text_format
from mediapipe.framework import calculator_pb2
from mediapipe.framework.formats import rect_pb2
from mediapipe.python.solution_base import SolutionBase
from mediapipe.python.solutions import face_detection

from steps.tracking.engines import Engine

ROI_SCALE = 1.5  # landmark ROI side / face box side, as in MediaPipe's face mesh graphs
LANDMARK_GRAPH = """
input_stream: "image"
input_stream: "roi"
output_stream: "landmarks"
node {
  calculator: "FaceLandmarkCpu"
  input_stream: "IMAGE:image"
  input_stream: "ROI:roi"
  input_side_packet: "WITH_ATTENTION:with_attention"
  output_stream: "LANDMARKS:landmarks"
}
"""
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


class FaceLandmarksOnRoi:
    """The FaceMesh landmark model (468 points, 478 with attention/irises) on a given face region."""

    def __init__(self, with_attention=True):
        config = text_format.Parse(LANDMARK_GRAPH, calculator_pb2.CalculatorGraphConfig())
        self.graph = SolutionBase(graph_config=config, side_inputs={"with_attention": bool(with_attention)},
                                  outputs=["landmarks"])

    def __call__(self, frame, box):
        """Landmarks (N x 3, frame pixels, z scaled like x) for the face in ``box``, or None if no face there."""
        height, width = frame.shape[:2]
        side = max(box[2], box[3]) * ROI_SCALE
        roi = rect_pb2.NormalizedRect(x_center=(box[0] + box[2] / 2) / width, y_center=(box[1] + box[3] / 2) / height,
                                      width=side / width, height=side / height, rotation=0.0)
        result = self.graph.process({"image": frame, "roi": roi}).landmarks
        if result is None:
            return None
        return np.array([(p.x * width, p.y * height, p.z * width) for p in result.landmark], dtype=np.float64)

    def close(self):
        self.graph.close()


class MediaPipeCropEngine(Engine):
    """Full-range detection on the frame + FaceMesh landmarks on each face's region.

    Subclasses may override ``describe_one(frame, hint) -> face or None`` (see :meth:`describe_one`).
    The output ``bbox`` is the box of the landmarks (hairline to chin, cheek to cheek) when there
    are landmarks, else the detector's box.
    """

    def __init__(self, settings):
        super().__init__(settings)
        self.detector = face_detection.FaceDetection(model_selection=1,
                                                     min_detection_confidence=settings["min_score"])
        self.mesh = FaceLandmarksOnRoi(settings["refine_landmarks"])

    def detect(self, frame):
        height, width = frame.shape[:2]
        found = []
        for tx, ty, side in square_tiles(width, height):
            tile = frame if side is None else np.ascontiguousarray(frame[ty:ty + side, tx:tx + side])
            th, tw = tile.shape[:2]
            for detection in self.detector.process(tile).detections or []:
                rel = detection.location_data.relative_bounding_box
                x, y = tx + rel.xmin * tw, ty + rel.ymin * th
                x0, y0 = max(x, float(tx)), max(y, float(ty))
                x1, y1 = min(x + rel.width * tw, float(tx + tw)), min(y + rel.height * th, float(ty + th))
                if x1 - x0 >= 2 and y1 - y0 >= 2:
                    found.append({"bbox": [x0, y0, x1 - x0, y1 - y0], "score": float(detection.score[0])})
        return non_max_suppression(found)[: self.settings["max_faces"]]

    def describe_one(self, frame, hint):
        """``{"bbox", "landmarks", ...}`` for the face at ``hint["bbox"]``, or None if no face is there."""
        height, width = frame.shape[:2]
        pts = self.mesh(frame, hint["bbox"])
        if pts is None:
            return None
        return {"bbox": points_box(pts, width, height), "landmarks": pts}

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

    def close(self):
        self.mesh.close()
        self.detector.close()
