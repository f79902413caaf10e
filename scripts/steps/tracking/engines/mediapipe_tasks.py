"""Engine ``mediapipe_tasks``: full-range face detection + the MediaPipe Tasks FaceLandmarker on each face.

The FaceLandmarker comes from a user-supplied ``.task`` bundle (``tracking.mediapipe_tasks.model``,
checked by SHA-256): 478 landmarks, the 52 ARKit-style blendshapes (names in
:data:`BLENDSHAPE_NAMES` order) and the facial transformation matrix, given here as head pose.
"""

import math

import mediapipe
from mediapipe.tasks.python import vision
from mediapipe.tasks.python.core import base_options

from steps.tracking.engines import BLENDSHAPE_NAMES, check_model_file
from steps.tracking.engines.crop import FOLLOW_MIN_IOU, box_iou, points_box, square_crop, to_frame_points
from steps.tracking.engines.mediapipe_common import MediaPipeCropEngine
from vidflow.devices import choose_device

MODEL_KEY = "tracking.mediapipe_tasks.model"
DOWNLOAD = ("https://storage.googleapis.com/mediapipe-models/face_landmarker/face_landmarker/float16/1/"
            "face_landmarker.task (MediaPipe model card 'face_landmarker')")


def head_pose(matrix):
    """Yaw, pitch, roll in degrees from a 4x4 facial transformation matrix (R = Rz(roll) Ry(yaw) Rx(pitch)).

    Pitch turns about the x axis (positive: chin down), yaw about the vertical axis (sign flips
    for a mirrored face), roll about the viewing axis, in MediaPipe's canonical face frame.
    """
    r = [[float(matrix[i][j]) for j in range(3)] for i in range(3)]
    yaw = math.degrees(math.atan2(-r[2][0], math.hypot(r[2][1], r[2][2])))
    pitch = math.degrees(math.atan2(r[2][1], r[2][2]))
    roll = math.degrees(math.atan2(r[1][0], r[0][0]))
    return {"yaw": yaw, "pitch": pitch, "roll": roll}


def face_landmarker(model, device):
    """The Tasks FaceLandmarker of the ``.task`` bundle ``model``, on MediaPipe's GPU delegate if ``device`` is
    "gpu", else on the CPU (XNNPACK, as without a delegate)."""
    delegate = base_options.BaseOptions.Delegate.GPU if device == "gpu" else None
    options = vision.FaceLandmarkerOptions(
        base_options=base_options.BaseOptions(model_asset_path=model, delegate=delegate),
        running_mode=vision.RunningMode.IMAGE, num_faces=2,
        output_face_blendshapes=True, output_facial_transformation_matrixes=True)
    return vision.FaceLandmarker.create_from_options(options)


class MediaPipeTasks(MediaPipeCropEngine):
    name = "mediapipe_tasks"

    def __init__(self, settings, device="cpu"):
        super().__init__(settings, device)
        self.landmarker = face_landmarker(settings.mediapipe_tasks["model"], device)

    @classmethod
    def choose_device(cls, settings, gpus):
        """The FaceLandmarker on MediaPipe's GPU delegate when the rule was given a GPU and the delegate starts
        (it draws through OpenGL ES on an EGL display, not CUDA); the detector and the FaceMesh fallback of the
        legacy solutions run on the CPU whatever the device (the PyPI wheel has CPU graphs only)."""
        if gpus <= 0:
            return choose_device(gpus, "tracking.gpu", probe=None)
        try:
            face_landmarker(settings.mediapipe_tasks["model"], "gpu").close()
        except (RuntimeError, NotImplementedError) as err:  # no EGL display: "kGpuService ... was not provided"
            return "cpu", f"MediaPipe's GPU delegate did not start ({' '.join(str(err).split())[:300]})"
        return "gpu", "MediaPipe's GPU delegate started (OpenGL ES)"

    @classmethod
    def check_models(cls, settings):
        bundle = settings.mediapipe_tasks
        digest = check_model_file(bundle["model"], bundle["sha256"], MODEL_KEY, DOWNLOAD)
        return {"name": "mediapipe-face-detection-full-range+face-landmarker-task", "version": mediapipe.__version__,
                "task_sha256": digest, "landmarks": 478}

    @classmethod
    def describe_output(cls, settings):
        return {"blendshape_names": list(BLENDSHAPE_NAMES)}

    def describe_one(self, frame, hint):
        """The FaceLandmarker on a crop around the face; if its own (short-range) detector misses the face
        (small or blurred faces), the FaceMesh landmarks from the wheel, without blendshapes and head pose."""
        height, width = frame.shape[:2]
        crop, x0, y0, side = square_crop(frame, hint["bbox"])
        result = self.landmarker.detect(mediapipe.Image(image_format=mediapipe.ImageFormat.SRGB, data=crop))
        best, best_iou = None, 0.0
        for k, points in enumerate(result.face_landmarks):
            pts = to_frame_points([(p.x, p.y, p.z) for p in points], x0, y0, side)
            box = points_box(pts, width, height)
            overlap = box_iou(box, hint["bbox"])
            if overlap <= best_iou:
                continue
            best, best_iou = {"bbox": box, "landmarks": pts}, overlap
            if k < len(result.face_blendshapes):
                names = tuple(c.category_name for c in result.face_blendshapes[k])
                if names != BLENDSHAPE_NAMES:
                    raise RuntimeError(f"the .task bundle's blendshapes are not the 52 canonical ones: {names}")
                best["blendshapes"] = {c.category_name: c.score for c in result.face_blendshapes[k]}
            if k < len(result.facial_transformation_matrixes):
                best["head_pose"] = head_pose(result.facial_transformation_matrixes[k])
        if best is None or best_iou < FOLLOW_MIN_IOU:
            return super().describe_one(frame, hint)
        return best

    def close(self):
        self.landmarker.close()
        super().close()


ENGINE = MediaPipeTasks
