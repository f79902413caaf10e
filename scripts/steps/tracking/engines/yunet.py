"""Engine ``yunet``: OpenCV YuNet face detection + MediaPipe FaceMesh landmarks and blendshapes in ONNX.

Three user-supplied models (config ``tracking.yunet``, checked by SHA-256 before any frame is read):

- YuNet (``cv2.FaceDetectorYN``) finds faces, with 5 keypoints, on the frame scaled so that its long
  side is :data:`DETECT_SIDE` pixels (YuNet's training size: a fixed cost per frame whatever the video
  size, and faces down to ~3% of the frame height; 480 would be ~25% faster per detection).
- The FaceMesh landmark model (468 points) runs on MediaPipe's region of interest: a square 1.5x the
  face box, turned so that the eyes are level (from YuNet's eye keypoints, or from the landmarks
  33/263 of the face followed from the previous frame; once more from its own landmarks when these
  disagree by over :data:`REFINE_ANGLE`, as YuNet's keypoints under-read a strong roll), resized to
  192x192 RGB in [0, 1]. Its face presence score (a logit) confirms the face; a followed face below
  :data:`PRESENCE` is dropped.
  This ONNX conversion returns integer pixels of a crop size it is given, so it is given 192 x
  :data:`SUBPIXEL` to keep 1/SUBPIXEL of a model pixel.
- The blendshapes model takes MediaPipe's 146 selected landmarks (x, y) in pixels and returns the 52
  scores of :data:`BLENDSHAPE_NAMES`. The selection includes the 10 iris points of the 478-point
  attention mesh, which this 468-point model lacks: they are placed on a mean iris (position and
  size relative to the eye corners, measured on MediaPipe's own 478-point output), so the gaze
  blendshapes (``eyeLook*``) describe a straight gaze and carry no information.

The output ``bbox`` is the box of the landmarks (as in the MediaPipe engines), else YuNet's box. A
followed face that the landmark model rejects (faces under ~25 px are too blurred for it) is kept
when YuNet finds it again on its box (box-only, as on detection frames).
"""

import math

import cv2
import numpy as np
import onnxruntime

from steps.tracking.engines import BLENDSHAPE_NAMES, check_model_file
from steps.tracking.engines.crop import FOLLOW_MIN_IOU, CropLandmarkEngine, box_iou, non_max_suppression, points_box
from steps.tracking.engines.onnx import choose_onnx_device, session

KEY = "tracking.yunet"
DOWNLOADS = {
    "detector": "https://github.com/opencv/opencv_zoo/tree/main/models/face_detection_yunet "
                "(face_detection_yunet_2023mar.onnx)",
    "landmarks": "an ONNX conversion of MediaPipe's face_landmark model (face_landmark.onnx, 468 points, "
                 "inputs input/crop_x1/crop_y1/crop_width/crop_height)",
    "blendshapes": "an ONNX conversion of MediaPipe's face_blendshapes model (face_blendshapes.onnx, "
                   "input_points 146 x 2 -> 52 scores)",
}
DETECT_SIDE = 640  # long side of the image YuNet looks at (its training size): faces down to ~3% of the height
NMS_IOU = 0.3  # YuNet's own non-maximum suppression
ROI_SCALE = 1.5  # landmark ROI side / face box side, as in MediaPipe's face mesh graphs
INPUT_SIZE = 192
SUBPIXEL = 100
PRESENCE = 0.5  # face presence probability that confirms a face (MediaPipe's min_tracking_confidence)
EYES = (33, 263)  # outer eye corners: the ROI rotation of a followed face (MediaPipe's face_landmarks_to_roi)
REFINE_ANGLE = math.radians(10)  # the landmarks run again on a ROI turned by their own eye line if it is this far off

# kLandmarksSubsetIdxs of MediaPipe's face_blendshapes_graph.cc: the 146 of the 478 landmarks the model reads.
BLENDSHAPE_INPUT = (
    0, 1, 4, 5, 6, 7, 8, 10, 13, 14, 17, 21, 33, 37, 39, 40, 46, 52, 53, 54, 55, 58, 61, 63, 65, 66, 67, 70, 78, 80,
    81, 82, 84, 87, 88, 91, 93, 95, 103, 105, 107, 109, 127, 132, 133, 136, 144, 145, 146, 148, 149, 150, 152, 153,
    154, 155, 157, 158, 159, 160, 161, 162, 163, 168, 172, 173, 176, 178, 181, 185, 191, 195, 197, 234, 246, 249,
    251, 263, 267, 269, 270, 276, 282, 283, 284, 285, 288, 291, 293, 295, 296, 297, 300, 308, 310, 311, 312, 314,
    317, 318, 321, 323, 324, 332, 334, 336, 338, 356, 361, 362, 365, 373, 374, 375, 377, 378, 379, 380, 381, 382,
    384, 385, 386, 387, 388, 389, 390, 397, 398, 400, 402, 405, 409, 415, 454, 466, 468, 469, 470, 471, 472, 473,
    474, 475, 476, 477,
)
# Mean iris of MediaPipe's attention mesh, in eye widths from the middle of the eye corners along the
# corner-to-corner axis (x, image-left to image-right corner) and across it (y, down): the centre sits
# IRIS_OFFSET towards the temple and IRIS_UP above; points 468-472 (eye of corners 33/133) and 473-477
# (362/263) are the centre, then the +x, -y, -x and +y edge.
IRIS_CORNERS = ((33, 133, -1), (362, 263, 1))  # image-left and image-right eye corner, sign of the temple side
IRIS_OFFSET, IRIS_UP, IRIS_RX, IRIS_RY = 0.045, 0.053, 0.225, 0.193


def mean_irises(points):
    """The 10 iris landmarks (468-477) of the 478-point mesh, placed on a mean iris from the eye corners."""
    out = []
    for left, right, temple in IRIS_CORNERS:
        ex = points[right, :2] - points[left, :2]
        ey = np.array([-ex[1], ex[0]])
        centre = (points[left, :2] + points[right, :2]) / 2 + temple * IRIS_OFFSET * ex - IRIS_UP * ey
        out += [centre, centre + IRIS_RX * ex, centre - IRIS_RY * ey, centre - IRIS_RX * ex, centre + IRIS_RY * ey]
    return np.array(out)


def eye_angle(points):
    """Direction (radians) of the line through the outer eye corners, image-left to image-right."""
    (x0, y0), (x1, y1) = points[EYES[0], :2], points[EYES[1], :2]
    return math.atan2(y1 - y0, x1 - x0)


def roi_transform(box, angle):
    """2x3 affine map from model-input pixels (192 x 192) to frame pixels.

    The ROI is a square ROI_SCALE times the larger side of ``box``, on its centre, turned by ``angle``
    (radians, the direction of the model's x axis in the frame).
    """
    cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
    k = max(box[2], box[3]) * ROI_SCALE / INPUT_SIZE
    c, s = k * math.cos(angle), k * math.sin(angle)
    half = INPUT_SIZE / 2
    return np.array([[c, -s, cx - c * half + s * half], [s, c, cy - s * half - c * half]])


class YuNet(CropLandmarkEngine):
    name = "yunet"

    def __init__(self, settings, device="cpu"):
        super().__init__(settings, device)
        cv2.setNumThreads(1)
        options = settings.yunet
        self.detector = cv2.FaceDetectorYN.create(options["detector"], "", (DETECT_SIDE, DETECT_SIDE),
                                                  settings.min_score, NMS_IOU, 5000)
        self.detector_size = None
        self.mesh = session(options["landmarks"], device)
        self.blend = session(options["blendshapes"], device) if options["blendshapes"] else None
        self.angles = {}  # bbox of each face of the last frame -> its eye angle (for faces followed into this one)
        self.detected = (None, [])  # (frame, its detections): the last frame the detector ran on

    @classmethod
    def check_models(cls, settings):
        options = settings.yunet
        model = {"name": "yunet+facemesh-onnx", "onnxruntime": onnxruntime.__version__, "opencv": cv2.__version__,
                 "landmarks": 468}
        for part, name in (("detector", "detector"), ("landmarks", "landmark_model"),
                           ("blendshapes", "blendshape_model")):
            path = options[part]
            if part == "blendshapes" and not path:
                continue
            model[name] = path.replace("\\", "/").rsplit("/", 1)[-1]
            model[f"{part}_sha256"] = check_model_file(path, options[f"{part}_sha256"], f"{KEY}.{part}",
                                                       DOWNLOADS[part])
        return model

    @classmethod
    def choose_device(cls, settings, gpus):
        """The landmark and blendshape models on CUDA when they can be; YuNet itself always runs on the CPU
        (``cv2.FaceDetectorYN`` runs OpenCV's DNN module, which the PyPI OpenCV wheels build without CUDA)."""
        return choose_onnx_device(gpus, settings.yunet["landmarks"])

    @classmethod
    def describe_output(cls, settings):
        return {"blendshape_names": list(BLENDSHAPE_NAMES)} if settings.yunet["blendshapes"] else {}

    def detect(self, frame):
        if self.detected[0] is frame:
            return [dict(d) for d in self.detected[1]]
        height, width = frame.shape[:2]
        scale = DETECT_SIDE / max(width, height)
        size = (max(round(width * scale), 1), max(round(height * scale), 1))
        if size != self.detector_size:
            self.detector.setInputSize(size)
            self.detector_size = size
        image = cv2.resize(frame, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        _, rows = self.detector.detect(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        found = []
        for row in [] if rows is None else rows:
            x, y, w, h = (float(v) / scale for v in row[:4])
            x0, y0, x1, y1 = max(x, 0.0), max(y, 0.0), min(x + w, float(width)), min(y + h, float(height))
            if x1 - x0 >= 2 and y1 - y0 >= 2:
                right_eye, left_eye = row[4:6] / scale, row[6:8] / scale  # the subject's: image left, image right
                angle = math.atan2(float(left_eye[1] - right_eye[1]), float(left_eye[0] - right_eye[0]))
                found.append({"bbox": [x0, y0, x1 - x0, y1 - y0], "score": float(row[14]), "angle": angle})
        found = non_max_suppression(found)[: self.settings.max_faces]
        self.detected = (frame, found)
        return [dict(d) for d in found]

    def describe(self, frame, hints):
        faces = super().describe(frame, hints)
        self.angles = {tuple(face["bbox"]): face.pop("angle") for face in faces if "angle" in face}
        self.detected = (None, [])
        return faces

    def describe_one(self, frame, hint):
        """The face at ``hint["bbox"]`` (``{"bbox", "landmarks", "blendshapes"?, "angle"}``) or None."""
        height, width = frame.shape[:2]
        angle = hint.get("angle", self.angles.get(tuple(hint["bbox"]), 0.0))
        pts = self.landmarks(frame, hint["bbox"], angle)
        if pts is None:
            return None if "score" in hint else self.redetect(frame, hint)
        eyes = eye_angle(pts)
        if abs(math.remainder(eyes - angle, math.tau)) > REFINE_ANGLE:  # YuNet's eye keypoints under-read strong roll
            pts = self.landmarks(frame, hint["bbox"], eyes)
            if pts is None:
                return None if "score" in hint else self.redetect(frame, hint)
            eyes = eye_angle(pts)
        face = {"bbox": points_box(pts, width, height), "landmarks": pts, "angle": eyes}
        if self.blend is not None:
            selected = np.concatenate([pts[:, :2], mean_irises(pts)])[list(BLENDSHAPE_INPUT)]
            scores = self.blend.run(None, {"input_points": selected[None].astype(np.float32)})[0]
            face["blendshapes"] = dict(zip(BLENDSHAPE_NAMES, np.clip(scores.astype(np.float64), 0.0, 1.0).tolist()))
        return face

    def landmarks(self, frame, box, angle):
        """The 468 landmarks (frame pixels, z scaled like x) on the ROI of ``box`` turned by ``angle``, or None."""
        affine = roi_transform(box, angle)
        crop = cv2.warpAffine(frame, affine, (INPUT_SIZE, INPUT_SIZE), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        tensor = (crop.astype(np.float32) / 255.0).transpose(2, 0, 1)[None]
        zero, side = np.zeros((1, 1), np.int32), np.full((1, 1), INPUT_SIZE * SUBPIXEL, np.int32)
        logit, points = self.mesh.run(None, {"input": tensor, "crop_x1": zero, "crop_y1": zero,
                                             "crop_width": side, "crop_height": side})
        if 1.0 / (1.0 + math.exp(-float(logit[0, 0]))) < PRESENCE:
            return None
        points = points[0].astype(np.float64)  # x, y in 1/SUBPIXEL model pixels (rounded), z in model pixels
        pts = np.empty_like(points)
        pts[:, :2] = (points[:, :2] / SUBPIXEL) @ affine[:, :2].T + affine[:, 2]
        pts[:, 2] = points[:, 2] * math.hypot(affine[0, 0], affine[1, 0])  # z scaled like x (MediaPipe's convention)
        return pts

    def redetect(self, frame, hint):
        """A followed face without landmarks: YuNet's box that overlaps it most, if YuNet finds it again."""
        best = max(self.detect(frame), key=lambda d: box_iou(d["bbox"], hint["bbox"]), default=None)
        if best is None or box_iou(best["bbox"], hint["bbox"]) < FOLLOW_MIN_IOU:
            return None
        return {"bbox": best["bbox"], "angle": best["angle"]}


ENGINE = YuNet
