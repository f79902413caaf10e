"""Step 5, engine ``openseeface``: OpenSeeFace's ONNX detector + 66-point landmark model on real faces.

The clip and its truth are those of tests/test_tracking.py (astronaut panned and zoomed, two astronauts
side by side, a blank shot, a small face at 10% of the frame height). The engine's ``bbox`` is the box
of its landmarks (brows to chin, cheek to cheek); it is compared with the factory's truth box
(hairline to chin, cheek to cheek) at IoU >= 0.5, as for the other engines. The model files come
from $VIDFLOW_TEST_MODELS/openseeface (default ../shared/models); the tests skip without them.
"""

import json

import numpy as np
import pytest
from test_tracking import MODELS, check_tracking, clip, shot_frames, track, track_failing  # noqa: F401 (clip is a fixture)

from build_env import build, read_env
from conftest import ROOT, VENV_DIR
from steps.link_speakers import MOUTH_POINTS
from steps.tracking.tracks import iou

DETECTOR = MODELS / "openseeface" / "mnv3_detection_opt.onnx"
LANDMARKS = MODELS / "openseeface" / "lm_model0_opt.onnx"
DETECTOR_SHA256 = "0e8e4806766d85ab067a52c7af0dcb59eb7f9dfe580b44f20a8e6ab712d89809"
LANDMARKS_SHA256 = "43c9c58f03701cc15b8423c49b78af348a6397334d348887e0fda59013275c29"
ENV = ROOT / "envs" / "tracking_openseeface.yaml"


def options(**changes):
    values = {"detector": str(DETECTOR), "detector_sha256": DETECTOR_SHA256,
              "landmarks": str(LANDMARKS), "landmarks_sha256": LANDMARKS_SHA256, **changes}
    return {"engine": "openseeface", "options": values}


@pytest.fixture(scope="session")
def python():
    return build(ENV, VENV_DIR / "tracking_openseeface")


@pytest.fixture(scope="session")
def models():
    missing = [str(path) for path in (DETECTOR, LANDMARKS) if not path.is_file()]
    if missing:
        pytest.skip(f"no OpenSeeFace model files {', '.join(missing)} (set VIDFLOW_TEST_MODELS to the shared "
                    "models folder; download from https://github.com/emilianavt/OpenSeeFace/tree/master/models)")


@pytest.fixture(scope="session")
def result_path(python, clip, models):
    return track(python, clip, "openseeface", **options())


def check_landmarks(face):
    """Anatomy of the 66 points (iBUG 68 without the outer mouth corners) on a frontal face."""
    pts = np.array(face["landmarks"])
    assert pts.shape == (66, 2), pts.shape
    x, y, w, h = face["bbox"]
    assert np.all((pts[:, 0] >= x - 2) & (pts[:, 0] <= x + w + 2) & (pts[:, 1] >= y - 2) & (pts[:, 1] <= y + h + 2))
    right_eye, left_eye = pts[36:42].mean(0), pts[42:48].mean(0)  # the person's right eye is on the image's left
    mouth, brows, nose_tip, chin = pts[48:66].mean(0), pts[17:27].mean(0), pts[30], pts[8]
    assert right_eye[0] < nose_tip[0] < left_eye[0] and pts[0, 0] < right_eye[0] and left_eye[0] < pts[16, 0]
    assert brows[1] < min(right_eye[1], left_eye[1]) < nose_tip[1] < mouth[1] < chin[1]
    assert chin[1] >= pts[0:17, 1].max() - 1, "the chin is the lowest jaw point"
    # mouth: 58 and 62 are the corners (the widest mouth points), 60 / 64 the middle of the inner upper / lower lip
    assert pts[58, 0] <= pts[48:66, 0].min() + 1 and pts[62, 0] >= pts[48:66, 0].max() - 1
    middle = (pts[58, 0] + pts[62, 0]) / 2
    width = pts[62, 0] - pts[58, 0]
    assert abs(pts[60, 0] - middle) < 0.15 * width and abs(pts[64, 0] - middle) < 0.15 * width
    assert pts[50, 1] <= pts[60, 1] <= pts[64, 1] <= pts[55, 1], "outer upper, inner upper, inner lower, outer lower"


def check_openseeface_tracking(result, truth):
    """The content checks of tests/test_tracking.py, with 66 x 2 landmarks and their anatomy."""
    faces = check_tracking(result, truth, 66, landmark_dims=2)
    assert result["engine"] == "openseeface" and result["device"] == "cpu"
    assert result["track_count"] == 4, "no tracks beyond the true faces"
    assert all(max(iou(face["bbox"], t["bbox"]) for t in truth["faces"][f]) >= 0.3 for f, face in faces)
    for _, face in faces:
        assert 0 <= face.get("score", 0) <= 1
        assert "blendshapes" not in face and "head_pose" not in face, "fields it cannot produce are absent"
        if face["bbox"][3] >= 25:  # the anatomy is checked where the face is large enough to resolve it
            check_landmarks(face)
        else:
            assert len(face["landmarks"]) == 66 and len(face["landmarks"][0]) == 2
    return faces


def test_openseeface_finds_tracks_and_describes_faces(result_path, clip):
    folder, truth = clip
    result = json.loads(result_path.read_text())
    check_openseeface_tracking(result, truth)
    pins = dict(pin.split("==") for pin in read_env(ENV)["pip"])
    assert result["model"] == {"name": "openseeface", "detector": DETECTOR.name, "detector_sha256": DETECTOR_SHA256,
                               "landmark_model": LANDMARKS.name, "landmarks_sha256": LANDMARKS_SHA256,
                               "landmarks": 66, "onnxruntime": pins["onnxruntime"]}
    log = (folder / "openseeface.log").read_text()
    assert "progress: 115 / 115 frames" in log and "2 worker process(es)" in log
    # by default the detector runs on every fifth frame (those faces have scores); landmarks follow the faces between
    assert result["settings"]["detect_every"] == 5
    scored = {f for f in shot_frames(truth, 1) for face in result["frames"][f]["faces"] if "score" in face}
    assert scored == {f for f in shot_frames(truth, 1) if (f - truth["shots"][1]["start_frame"]) % 5 == 0}


def test_detecting_on_every_frame(python, clip, models):
    truth = clip[1]
    result = json.loads(track(python, clip, "openseeface_every1", **options(), detect_every=1).read_text())
    faces = check_openseeface_tracking(result, truth)
    # the detector runs on every frame; where it misses a face, the landmarks still follow it
    for k in (0, 1):
        assert all("score" in face for f in shot_frames(truth, k) for face in result["frames"][f]["faces"])
    assert sum("score" in face for _, face in faces) >= 0.9 * len(faces)


def test_lip_gap_points_of_66_landmarks_open_with_the_mouth(result_path, clip):
    """link_speakers measures the inner-lip gap between the middles of the inner lips (60, 64)."""
    result = json.loads(result_path.read_text())
    upper, lower, top, chin = MOUTH_POINTS[66]
    assert (upper, lower, top, chin) == (60, 64, 27, 8)
    for f in shot_frames(clip[1], 1):
        for face in result["frames"][f]["faces"]:
            pts = np.array(face["landmarks"])
            assert pts[top, 1] < pts[upper, 1] < pts[lower, 1] < pts[chin, 1]
            # the astronaut smiles with her teeth showing: a visible gap, much smaller than the face
            gap = np.linalg.norm(pts[upper] - pts[lower]) / np.linalg.norm(pts[top] - pts[chin])
            assert 0.02 < gap < 0.3, gap


def test_output_does_not_depend_on_the_thread_count(result_path, python, clip):
    one = track(python, clip, "openseeface_1thread", **options(), threads=1)
    assert one.read_bytes() == result_path.read_bytes()


@pytest.mark.parametrize("key, changes", [
    ("detector", {"detector": "missing.onnx"}),
    ("landmarks", {"landmarks": "missing.onnx"}),
    ("landmarks", {"landmarks_sha256": "0" * 64}),
])
def test_missing_or_wrong_model_fails_at_once_with_one_line(python, clip, models, tmp_path, key, changes):
    changes = {k: str(tmp_path / v) if v == "missing.onnx" else v for k, v in changes.items()}
    errors, log, seconds = track_failing(python, clip, tmp_path, **options(**changes))
    assert len(errors) == 1 and f"tracking.openseeface.{key}: model file" in errors[0], errors
    assert "download it from https://github.com/emilianavt/OpenSeeFace/tree/master/models" in errors[0]
    assert "engine openseeface on" not in log, "frames were read before the check"
    assert seconds < 20
