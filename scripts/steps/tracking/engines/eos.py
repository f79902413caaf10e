"""Engine ``eos``: dlib's HOG face detector + 68 iBUG landmarks, then an eos 3D morphable model fit per face.

Detection: dlib's frontal face detector (HOG + linear SVM, 80x80-pixel window) finds faces down to
~80 px. To find faces of ``min_face`` x the frame height (hairline to chin; default 0.1, i.e. 18 px
in a 180 px frame) the frame is resized (bicubic, plus an unsharp mask of one source pixel when
enlarging, which restores the edges HOG needs on tiny faces) so that such a face is ~100 px high;
large frames are shrunk the same way, which is faster. The cost of a frame therefore depends on
``min_face`` (a 0.2 face: ~4x fewer pixels), not on the video's resolution.
A face that small is at the detector's limit: its score changes by +-0.3 with its size and position in
the 8-pixel HOG cell grid, so one full-frame detection is a noisy measure. Detections down to
``CANDIDATE_MARGIN`` below the threshold are candidates; the detector runs again on a square crop around
each, at 5 face sizes x 2 half-cell shifts, and the candidate is a face if the mean of these 10 scores
reaches the threshold (measured at threshold 0 on the test clip and the demo: the small real face
-0.02..0.26; non-faces at most -0.08, an eyebrow of a large face; the two mission patches -0.26, -0.21).
A face missed by the detector (or between detection frames) is followed: the detector runs again on a
square crop around its last box, resized to the same face size (then to the other sizes until one
succeeds), with a threshold lowered by ``FOLLOW_MARGIN`` (hysteresis: a face already seen needs less
evidence than a new one).

Landmarks: dlib's 68-point shape predictor (iBUG 300-W scheme; Debian package libdlib-data) in the
detector's box, on the enlarged crop for faces under ``LANDMARK_PX``. The output ``bbox`` is the box of
the landmarks (eyebrows to chin, cheek to cheek), as for the other landmark engines.

Fit: eos (Surrey Face Model, 3448 vertices, 63 shape components, 6 expression blendshapes, contour
fitting) -> ``shape_coefficients`` (63), ``expression_coefficients`` (6, in ``expression_names``
order) and ``head_pose``. dlib's detector gives an SVM margin, not a probability, so faces carry no
``score`` (``tracking.min_score`` does not apply; ``tracking.eos.threshold`` is the margin).

Cost (2 shared cores): detection ~0.15-0.3 s CPU per detection frame at min_face 0.1 (the crop runs of
candidates and followed faces are on small images), the fit ~50 ms per face and frame (5 iterations),
the rest is small: the test clip (320x180) runs at ~4 fps with 2 threads.
"""

import math
from importlib.metadata import version
from pathlib import Path

import dlib
import eos
import numpy as np
from PIL import Image, ImageFilter

from steps.tracking.engines import check_model_file
from steps.tracking.engines.crop import FOLLOW_MIN_IOU, CropLandmarkEngine, box_iou, points_box, square_crop

PREDICTOR_KEY = "tracking.eos.predictor"
MODEL_DIR_KEY = "tracking.eos.model_dir"
PREDICTOR_DOWNLOAD = ("the Debian/Ubuntu package libdlib-data (/usr/share/dlib/shape_predictor_68_face_landmarks.dat) "
                      "or http://dlib.net/files/shape_predictor_68_face_landmarks.dat.bz2 (unpacked)")
SFM_DOWNLOAD = "https://github.com/patrikhuber/eos/tree/master/share"
# The public Surrey Face Model files of eos' share/ folder (fixed files: any other digest is an error).
SFM_FILES = {
    "sfm_shape_3448.bin": "43750338ae533e7fb981e924b6f67ebde3d292f15ec4fc886ae5af14308ad980",
    "expression_blendshapes_3448.bin": "a77c81712fc5e8b08a1be4cd2824d51514e5bde6578109ae5240dfb3489efd43",
    "ibug_to_sfm.txt": "810810c457184526c7d54305ecbc5da764e2431b5e66025d921a7d424aebfac9",
    "sfm_3448_edge_topology.json": "5934e5ec34dd6779fda06d28a1f8d02ca9a238bff882e5ccd6da5af9fffe61d5",
    "sfm_model_contours.json": "c9e69bfa995ab19ac6b27abb07729eb0520a00bb192be12426ca6bce76f3fded",
}
FACE_PX = 100  # a face of min_face x frame height is resized to this height before detection
MAX_SCALE = 8.0  # ... but a frame is enlarged at most this much (memory: a 320x180 frame becomes 2560x1440)
FOLLOW_MARGIN = 0.3  # a followed face is confirmed with a detector threshold this much lower
CANDIDATE_MARGIN = 0.5  # full-frame detections down to threshold - this are candidates, checked on a crop
CONFIRM_PX = (100, 80, 90, 110, 125)  # face sizes (px) at which a candidate or a followed face is looked for
SHIFTS = (0, 4)  # ... and crop shifts (px after resizing; half a HOG cell)
SAMPLE_FLOOR = 1.0  # a sample without a detection counts as threshold - this
LANDMARK_PX = 100  # faces smaller than this are enlarged to it for the shape predictor
CROP_SCALE = 2.0  # side of the crop around a followed face / its box side
SHARPEN_PERCENT = 150


def head_pose(rotation):
    """Yaw, pitch, roll in degrees from the fitted 3x3 model-view rotation (R = Rz(roll) Ry(yaw) Rx(pitch)).

    The same decomposition as :func:`steps.tracking.engines.mediapipe_tasks.head_pose`, in the same
    kind of frame (OpenGL: x to the image's right, y up, z towards the camera), so the signs agree:
    roll > 0 is a head tilted counter-clockwise in the image (checked: a face rotated by +-20 degrees
    gives roll +18/-22 here and +17/-23 with mediapipe_tasks, from -2.4 and -2.9 upright), yaw > 0 a
    face turned towards the image's right, pitch > 0 chin down. Yaw and roll change sign for a
    mirrored face. 0, 0, 0 is a face looking into the camera.
    """
    r = [[float(rotation[i][j]) for j in range(3)] for i in range(3)]
    yaw = math.degrees(math.atan2(-r[2][0], math.hypot(r[2][1], r[2][2])))
    pitch = math.degrees(math.atan2(r[2][1], r[2][2]))
    roll = math.degrees(math.atan2(r[1][0], r[0][0]))
    return {"yaw": yaw, "pitch": pitch, "roll": roll}


def resize(image, scale):
    """``image`` (RGB uint8) resized by ``scale`` (bicubic); enlarged images get an unsharp mask of one source pixel."""
    height, width = image.shape[:2]
    size = (max(int(round(width * scale)), 1), max(int(round(height * scale)), 1))
    picture = Image.fromarray(image).resize(size, Image.BICUBIC)
    if scale > 1:
        picture = picture.filter(ImageFilter.UnsharpMask(radius=scale, percent=SHARPEN_PERCENT, threshold=0))
    return np.asarray(picture)


def _rect(box, scale=1.0, dx=0.0, dy=0.0):
    """dlib rectangle of frame box ``[x, y, w, h]`` in an image where frame pixel p is (p - (dx, dy)) * scale."""
    x0, y0 = (box[0] - dx) * scale, (box[1] - dy) * scale
    return dlib.rectangle(int(round(x0)), int(round(y0)), int(round(x0 + box[2] * scale)),
                          int(round(y0 + box[3] * scale)))


class EosEngine(CropLandmarkEngine):
    name = "eos"

    def __init__(self, settings, device="cpu"):
        super().__init__(settings, device)
        opts = settings.eos
        folder = Path(opts["model_dir"])
        self.min_face, self.threshold = float(opts["min_face"]), float(opts["threshold"])
        self.iterations = int(opts["fit_iterations"])
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(str(opts["predictor"]))
        model = eos.morphablemodel.load_model(str(folder / "sfm_shape_3448.bin"))
        expressions = eos.morphablemodel.load_blendshapes(str(folder / "expression_blendshapes_3448.bin"))
        self.model = eos.morphablemodel.MorphableModel(
            model.get_shape_model(), expressions, color_model=eos.morphablemodel.PcaModel(), vertex_definitions=None,
            texture_coordinates=model.get_texture_coordinates())
        self.mapper = eos.core.LandmarkMapper(str(folder / "ibug_to_sfm.txt"))
        self.edges = eos.morphablemodel.load_edge_topology(str(folder / "sfm_3448_edge_topology.json"))
        self.contour_landmarks = eos.fitting.ContourLandmarks.load(str(folder / "ibug_to_sfm.txt"))
        self.model_contour = eos.fitting.ModelContour.load(str(folder / "sfm_model_contours.json"))

    @classmethod
    def check_models(cls, settings):
        opts = settings.eos
        predictor = check_model_file(opts["predictor"], opts["predictor_sha256"], PREDICTOR_KEY, PREDICTOR_DOWNLOAD)
        folder = Path(opts["model_dir"]) if opts["model_dir"] else None
        sfm = {name: check_model_file(str(folder / name) if folder else "", digest, MODEL_DIR_KEY,
                                      f"{SFM_DOWNLOAD} ({name})")
               for name, digest in SFM_FILES.items()}
        return {"name": "dlib-hog+shape-predictor-68+eos-sfm-3448", "version": f"dlib {dlib.__version__}, "
                f"eos-py {version('eos-py')}", "dlib": dlib.__version__, "eos": version("eos-py"),
                "predictor": Path(opts["predictor"]).name, "predictor_sha256": predictor, "sfm_sha256": sfm,
                "landmarks": 68, "min_face": float(opts["min_face"]), "threshold": float(opts["threshold"]),
                "fit_iterations": int(opts["fit_iterations"])}

    @classmethod
    def describe_output(cls, settings):
        folder = Path(settings.eos["model_dir"])
        names = [b.name for b in eos.morphablemodel.load_blendshapes(str(folder / "expression_blendshapes_3448.bin"))]
        return {"expression_names": names}

    def detect(self, frame):
        height = frame.shape[0]
        scale = min(FACE_PX / (self.min_face * height), MAX_SCALE)
        image = resize(frame, scale)
        found = []
        rects, scores, _ = self.detector.run(image, 0, self.threshold - CANDIDATE_MARGIN)
        for rect, score in zip(rects, scores):
            box = self._frame_box(rect, frame, scale)
            if box is not None and score < self.threshold:  # a candidate: confirmed by its mean score over samples
                box, score = self._confirm(frame, box) or (None, None)
            if box is not None:
                found.append({"bbox": box, "score": float(score)})
        found.sort(key=lambda d: (-d["score"], d["bbox"]))
        return found[: self.settings.max_faces]

    @staticmethod
    def _frame_box(rect, frame, scale, dx=0.0, dy=0.0):
        """``rect`` of an image resized by ``scale`` from frame pixels offset by (dx, dy) -> frame box clipped to it."""
        height, width = frame.shape[:2]
        x0, y0 = max(rect.left() / scale + dx, 0.0), max(rect.top() / scale + dy, 0.0)
        x1, y1 = min(rect.right() / scale + dx, float(width)), min(rect.bottom() / scale + dy, float(height))
        return [x0, y0, x1 - x0, y1 - y0] if x1 - x0 >= 2 and y1 - y0 >= 2 else None

    def describe(self, frame, hints):
        faces = super().describe(frame, hints)
        for face in faces:
            face.pop("score", None)  # an SVM margin, not a probability in [0, 1]
        return faces

    def describe_one(self, frame, hint):
        box = hint["bbox"]
        if "score" not in hint:  # a followed face: find it again near its last box, with the lower threshold
            box = self._find_near(frame, box)
            if box is None:
                return None
        height, width = frame.shape[:2]
        points = self._landmarks(frame, box)
        face = {"bbox": points_box(points, width, height), "landmarks": points}
        landmarks = [eos.core.Landmark(str(k + 1), [float(x), float(y)]) for k, (x, y) in enumerate(points)]
        _mesh, pose, shape, expression = eos.fitting.fit_shape_and_pose(
            self.model, landmarks, self.mapper, width, height, self.edges, self.contour_landmarks,
            self.model_contour, num_iterations=self.iterations)
        face["head_pose"] = head_pose(np.asarray(pose.get_modelview())[:3, :3])
        face["shape_coefficients"] = [float(c) for c in shape]
        face["expression_coefficients"] = [float(c) for c in expression]
        return face

    def _find_near(self, frame, box):
        """The detector's box of the face near ``box`` (first sample reaching the followed faces' threshold) or None."""
        for found, _score in self._samples(frame, box, self.threshold - FOLLOW_MARGIN):
            if found is not None:  # the detector reports only what reaches the threshold it is given
                return found
        return None

    def _confirm(self, frame, box):
        """``(box, mean score)`` of a candidate whose mean score over the samples reaches the threshold, or None.

        HOG cells are 8 px: a small face's score changes by +-0.3 with its size and position in the cell grid,
        so one detection is a noisy measure; the mean over CONFIRM_PX sizes x SHIFTS (10 samples) is steadier
        (see the module's docstring for the values measured).
        """
        samples = list(self._samples(frame, box, self.threshold - SAMPLE_FLOOR))
        score = sum(s for _, s in samples) / len(samples)
        if score < self.threshold:
            return None
        best = max((s, found) for found, s in samples if found is not None)
        return best[1], score

    def _samples(self, frame, box, threshold):
        """Per face size in CONFIRM_PX and shift in SHIFTS: ``(box, score)`` of the best detection of the face at
        ``box`` in a square crop around it, resized so that the face is that size, or ``(None, threshold)``."""
        for face_px in CONFIRM_PX:
            scale = face_px / max(box[2], box[3], 1.0)
            for shift in SHIFTS:
                moved = [box[0] + shift / scale, box[1] + shift / scale, box[2], box[3]]
                crop, x0, y0, _side = square_crop(frame, moved, CROP_SCALE)
                rects, scores, _ = self.detector.run(resize(crop, scale), 0, threshold)
                best, best_score = None, threshold
                for rect, score in zip(rects, scores):
                    found = self._frame_box(rect, frame, scale, x0, y0)
                    if found is not None and box_iou(found, box) >= FOLLOW_MIN_IOU and score > best_score:
                        best, best_score = found, float(score)
                yield best, best_score

    def _landmarks(self, frame, box):
        """68 x 2 landmarks (frame pixels) of the face in detector box ``box``."""
        size = max(box[2], box[3])
        if size >= LANDMARK_PX:
            shape = self.predictor(frame, _rect(box))
            return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
        crop, x0, y0, _side = square_crop(frame, box, CROP_SCALE)
        scale = LANDMARK_PX / max(size, 1.0)
        shape = self.predictor(resize(crop, scale), _rect(box, scale, x0, y0))
        points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64) / scale
        points[:, 0] += x0
        points[:, 1] += y0
        return points


ENGINE = EosEngine
