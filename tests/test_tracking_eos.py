"""Step 5, engine ``eos``: dlib HOG + 68 landmarks + eos 3D morphable model fit, on real faces with known boxes.

The clip is the one of tests/test_tracking.py (astronaut panned and zoomed, two astronauts side by
side with the right one mirrored, a shot without a face, a small face of 10% of the frame height).
The predictor comes from Debian's libdlib-data ($VIDFLOW_DLIB_PREDICTOR overrides its path), the
Surrey Face Model files from $VIDFLOW_TEST_MODELS/eos (default ../shared/models/eos).

Boxes are compared as in test_tracking: the engine's output ``bbox`` (the box of the 68 landmarks,
eyebrows to chin, cheek to cheek) against the factory's truth (hairline to chin): IoU 0.71-0.82 measured.
"""

import json
import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from test_tracking import check_tracking, clip, shot_frames, track, tracking_command, tracking_settings  # noqa: F401 (clip: a fixture)

from build_env import build
from conftest import ROOT, VENV_DIR
from steps.tracking.tracks import iou

MODELS = Path(os.environ.get("VIDFLOW_TEST_MODELS", ROOT.parent / "shared" / "models"))
SFM = MODELS / "eos"
PREDICTOR = Path(os.environ.get("VIDFLOW_DLIB_PREDICTOR", "/usr/share/dlib/shape_predictor_68_face_landmarks.dat"))
SFM_NAMES = ("sfm_shape_3448.bin", "expression_blendshapes_3448.bin", "ibug_to_sfm.txt",
             "sfm_3448_edge_topology.json", "sfm_model_contours.json")
EXPRESSIONS = ["anger", "disgust", "fear", "happiness", "sadness", "surprise"]


def require_models():
    if not PREDICTOR.is_file():
        pytest.skip(f"no dlib predictor at {PREDICTOR} (apt-get install libdlib-data, or tools/install_system_deps.sh)")
    missing = [name for name in SFM_NAMES if not (SFM / name).is_file()]
    if missing:
        pytest.skip(f"no Surrey Face Model files {', '.join(missing)} in {SFM} (set VIDFLOW_TEST_MODELS)")


def options(**extra):
    """The engine's own section (tracking.eos) on the test models."""
    return {"predictor": str(PREDICTOR), "model_dir": str(SFM), **extra}


@pytest.fixture(scope="session")
def python():
    return build(ROOT / "envs" / "tracking_eos.yaml", VENV_DIR / "tracking_eos")


@pytest.fixture(scope="session")
def fitted(python, clip):  # noqa: F811
    require_models()
    return json.loads(track(python, clip, "eos", engine="eos", options=options()).read_text())


def test_eos_finds_tracks_and_fits_faces(fitted, clip):  # noqa: F811
    result, truth = fitted, clip[1]
    assert result["engine"] == "eos"
    # every known face in >= 90% of its frames, also the small one (18 px high: at the HOG detector's limit,
    # its candidates are confirmed by their mean score over crops at several sizes)
    found = check_tracking(result, truth, 68, landmark_dims=2)
    # no false faces (the mission patches of the pair shot score just below the threshold)
    assert result["track_count"] == 4, "no tracks beyond the true faces"
    assert all(max(iou(face["bbox"], t["bbox"]) for t in truth["faces"][f]) >= 0.3 for f, face in found)
    faces = [face for _, face in found]
    assert faces and all("score" not in f and "blendshapes" not in f for f in faces), "an SVM margin is no score"
    for face in faces:
        assert len(face["landmarks"]) == 68 and all(len(p) == 2 for p in face["landmarks"])
        x, y, w, h = face["bbox"]
        assert all(x - 1 <= p[0] <= x + w + 1 and y - 1 <= p[1] <= y + h + 1 for p in face["landmarks"])
        assert set(face["head_pose"]) == {"yaw", "pitch", "roll"}
        assert len(face["shape_coefficients"]) == 63 and len(face["expression_coefficients"]) == 6
    assert result["expression_names"] == EXPRESSIONS
    # a near-frontal face: small angles (the clip only pans and zooms)
    large = [face for f in [*shot_frames(truth, 0), *shot_frames(truth, 1)] for face in result["frames"][f]["faces"]]
    assert all(abs(v) < 15 for face in large for v in face["head_pose"].values())
    model = result["model"]
    assert model["landmarks"] == 68 and set(model["sfm_sha256"]) == set(SFM_NAMES)
    assert model["predictor_sha256"] == "fbdc2cb80eb9aa7a758672cbfdda32ba6300efe9b6e6c7a299ff7e736b11b92f"


def test_mirrored_face_turns_the_other_way(fitted, clip):  # noqa: F811
    """The pair shot shows the astronaut and her mirror image: yaw and roll change sign, pitch does not."""
    first = fitted["frames"][clip[1]["shots"][1]["start_frame"]]["faces"]
    left, right = (face["head_pose"] for face in sorted(first, key=lambda f: f["bbox"][0]))
    assert left["yaw"] * right["yaw"] < 0 and left["roll"] * right["roll"] < 0
    assert abs(left["pitch"] - right["pitch"]) < 3


def test_head_roll_follows_an_in_plane_rotation(python, tmp_path):
    """The astronaut's face turned by +-20 degrees in the image plane: roll changes by about that much,
    counter-clockwise positive (as in mediapipe_tasks: R = Rz(roll) Ry(yaw) Rx(pitch), y up)."""
    require_models()
    from skimage import data
    from skimage.transform import rotate

    face = data.astronaut()[0:260, 96:356]
    for angle in (-20, 0, 20):  # skimage rotates counter-clockwise for positive angles
        turned = (rotate(face, angle, order=3, mode="edge") * 255).round().astype(np.uint8)
        np.save(tmp_path / f"{angle}.npy", turned)
        np.save(tmp_path / f"{angle}m.npy", np.ascontiguousarray(turned[:, ::-1]))
    code = ("import json, sys; import numpy as np; from steps.tracking.engines.eos import EosEngine\n"
            "from steps.tracking.pipeline import TrackingSettings; from vidflow.job import settings_from\n"
            "engine = EosEngine(settings_from(TrackingSettings, json.loads(sys.argv[2])))\n"
            "poses = {}\n"
            "for name in ('-20', '0', '20', '-20m', '0m', '20m'):\n"
            "    image = np.load(f'{sys.argv[1]}/{name}.npy')\n"
            "    poses[name] = [f['head_pose'] for f in engine.describe(image, engine.detect(image))]\n"
            "print(json.dumps(poses))\n")
    settings = json.dumps(tracking_settings("eos", options(), max_faces=2))
    proc = subprocess.run([str(python), "-c", code, str(tmp_path), settings], capture_output=True, text=True,
                          check=False, env={**os.environ, "PYTHONPATH": str(ROOT / "scripts")})
    assert proc.returncode == 0, proc.stderr
    poses = {name: found[0] for name, found in json.loads(proc.stdout).items() if len(found) == 1}
    assert len(poses) == 6, f"one face per image expected: {proc.stdout}"
    for mirrored in ("", "m"):
        sign = -1 if mirrored else 1
        base = poses["0" + mirrored]["roll"]
        assert abs(poses["20" + mirrored]["roll"] - base - 20 * sign) < 6
        assert abs(poses["-20" + mirrored]["roll"] - base + 20 * sign) < 6
    assert abs(poses["0"]["roll"] + poses["0m"]["roll"]) < 3


def test_missing_or_wrong_model_fails_at_once_with_one_line(python, clip, tmp_path):  # noqa: F811
    folder, _ = clip
    fake_predictor = tmp_path / "predictor.dat"
    fake_predictor.write_bytes(b"not a predictor")
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    (wrong / "sfm_shape_3448.bin").write_bytes(b"not the model")
    cases = [
        ({"predictor": str(tmp_path / "missing.dat")},
         "tracking.eos.predictor: model file", "download it from the Debian/Ubuntu package libdlib-data"),
        ({"predictor": str(fake_predictor), "predictor_sha256": "", "model_dir": str(tmp_path / "empty")},
         "tracking.eos.model_dir: model file", "sfm_shape_3448.bin not found; download it from "
                                               "https://github.com/patrikhuber/eos/tree/master/share"),
        ({"predictor": str(fake_predictor), "predictor_sha256": "", "model_dir": str(wrong)},
         "tracking.eos.model_dir: model file", "sfm_shape_3448.bin has SHA-256"),
    ]
    for n, (opts, subject, reason) in enumerate(cases):
        start = time.monotonic()
        out, log = tmp_path / f"t{n}.json", tmp_path / f"t{n}.log"
        cmd = tracking_command(python, folder, out, log, tracking_settings("eos", opts))
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        assert proc.returncode == 1 and not out.exists(), proc.stderr
        errors = [line for line in proc.stderr.splitlines() if "ERROR" in line]
        assert len(errors) == 1 and subject in errors[0] and reason in errors[0], proc.stderr
        assert "engine eos on" not in log.read_text(), "frames were read before the check"
        assert time.monotonic() - start < 20

