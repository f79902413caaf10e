"""Optional step: py-feat action units and emotions per tracked face (scripts/steps/expressions).

py-feat's weights come from the HuggingFace hub, which tests cannot reach. So the test builds the model
folder itself, in the HuggingFace cache layout py-feat's loading code reads offline
(``models--py-feat--<repo>/refs/main`` + ``snapshots/<commit>/<file>`` -> ``blobs/<sha256>``), from py-feat's
own model classes with random weights: MobileFaceNet (torch.save ``{"state_dict"}``), the xgb AU model
(py-feat's XGBClassifier wrapper with fitted scalers, PCAs and one xgboost model per AU, saved with skops)
and ResMaskNet (``config.json`` + torch.save ``{"net"}``). The real script then runs on a real face
(the astronaut, tools/media_factory.py) with a tracking.json made from the factory's true face boxes.
Random weights say nothing about the values, so the checks are structural: every tracked face of every
frame, py-feat's AU and emotion names in py-feat's order, probabilities, provenance, reruns.
"""

import hashlib
import json
import shutil
import subprocess

import jsonschema
import numpy as np
import pytest
from media_clips import make_video
from media_shots import Shot

from build_env import build
from conftest import ROOT, VENV_DIR, require_binaries, schema_defaults
from steps.expressions import pipeline as ex
from vidflow.errors import UserError
from vidflow.job import job_command

SCHEMA = json.loads((ROOT / "schemas" / "expressions.schema.json").read_text())
MODELS = {"landmark_model": "mobilefacenet", "au_model": "xgb", "emotion_model": "resmasknet"}
SHOTS = [Shot("astronaut", 4, zoom=(1.0, 1.2)), Shot("astronaut_pair", 3), Shot("blank", 2)]

BUILD_MODELS = r'''
import hashlib, json, os, sys
from pathlib import Path

import feat.detector  # noqa: F401 - xgboost before torch, as py-feat loads them
import numpy as np
import pandas as pd
import torch
import xgboost
from feat.au_detectors.StatLearning.SL_test import XGBClassifier
from feat.emo_detectors.ResMaskNet.resmasknet_test import ResMasking
from feat.landmark_detectors.mobilefacenet_test import MobileFaceNet
from feat.pretrained import AU_LANDMARK_MAP
from feat.utils import FEAT_EMOTION_COLUMNS
from feat.utils.face_mask import extract_hog_features_batched
from feat.utils.image_operations import HOGLayer
from feat.utils.io import get_resource_path
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler
from skops.io import dump
from torch import nn

root = Path(sys.argv[1])
torch.manual_seed(0)
rng = np.random.default_rng(0)


def put(repo, filename, write):
    """Store a file as `hf download REPO --cache-dir ROOT` does: blobs/, snapshots/<commit>/<name>, refs/main."""
    repo_dir = root / f"models--{repo.replace('/', '--')}"
    commit = hashlib.sha1(repo.encode()).hexdigest()
    (repo_dir / "blobs").mkdir(parents=True, exist_ok=True)
    tmp = repo_dir / "blobs" / f".{filename}.tmp"
    write(tmp)
    digest = hashlib.sha256()
    with open(tmp, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    blob = tmp.rename(repo_dir / "blobs" / digest.hexdigest())
    link = repo_dir / "snapshots" / commit / filename
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(os.path.relpath(blob, link.parent))
    (repo_dir / "refs").mkdir(exist_ok=True)
    (repo_dir / "refs" / "main").write_text(commit)


# Landmarks: random MobileFaceNet whose output head sits near py-feat's neutral 68-point face, so the AU
# features' face alignment gets a plausible face (random points can make it degenerate).
landmarks = MobileFaceNet([112, 112], 136, device="cpu")
neutral = pd.read_csv(Path(get_resource_path()) / "neutral_face_coordinates.csv").to_numpy(np.float64)
neutral = 0.15 + 0.7 * (neutral - neutral.min(0)) / (neutral.max(0) - neutral.min(0))
with torch.no_grad():
    landmarks.output_layer.bn.bias.copy_(torch.tensor(neutral.reshape(-1), dtype=torch.float32))
    landmarks.output_layer.bn.weight.fill_(1e-3)
put("py-feat/mobilefacenet", "mobilefacenet_model_best.pth.tar",
    lambda p: torch.save({"state_dict": landmarks.state_dict()}, p))

# AUs: scalers + PCAs over HOG features of the length py-feat computes, one small xgboost model per AU.
hog_layer = HOGLayer(orientations=8, pixels_per_cell=8, cells_per_block=2, block_normalization="L2-Hys",
                     feature_vector=True, device="cpu")
points = torch.tensor(neutral.reshape(1, -1), dtype=torch.float32).repeat(2, 1)
hog, _ = extract_hog_features_batched(torch.rand(2, 3, 112, 112), points, hog_layer=hog_layer)
features = rng.random((60, hog.shape[1]))
parts = {}
for part in ("upper", "lower", "full"):
    scaler = StandardScaler().fit(features)
    parts[f"scaler_{part}"], parts[f"pca_model_{part}"] = scaler, PCA(6, random_state=0).fit(scaler.transform(features))
inputs = rng.random((60, 6 + 136))
au_model = XGBClassifier()
classifiers = {key: xgboost.XGBClassifier(n_estimators=4, max_depth=2, random_state=0, n_jobs=1).fit(
    inputs, rng.integers(0, 2, 60)) for key in au_model.au_keys}
au_model.load_weights(**parts, classifiers=classifiers)
put("py-feat/xgb_au", "xgb_au_classifier_v2.skops", lambda p: dump(au_model, p))

# Emotions: ResMaskNet as py-feat builds it from the repo's config.json.
put("py-feat/resmasknet", "config.json", lambda p: p.write_text(json.dumps({"in_channels": 3, "num_classes": 7})))
emotions = ResMasking("", in_channels=3)
emotions.fc = nn.Sequential(nn.Dropout(0.4), nn.Linear(512, 7))
put("py-feat/resmasknet", "ResMaskNet_Z_resmasking_dropout1_rot30.pth",
    lambda p: torch.save({"net": emotions.state_dict()}, p))
print(json.dumps({"action_units": AU_LANDMARK_MAP["Feat"], "emotions": FEAT_EMOTION_COLUMNS}))
'''


# --------------------------------------------------------------------------- plain parts (driver venv)


def fake_cache(root, files):
    """A HuggingFace cache folder holding ``{"repo/file": bytes}`` (plain files, no blobs)."""
    for name, data in files.items():
        owner, repo, filename = name.split("/")
        repo_dir = root / f"models--{owner}--{repo}"
        (repo_dir / "refs").mkdir(parents=True, exist_ok=True)
        (repo_dir / "refs" / "main").write_text("abc123")
        (repo_dir / "snapshots" / "abc123").mkdir(parents=True, exist_ok=True)
        (repo_dir / "snapshots" / "abc123" / filename).write_bytes(data)
    return root


def test_model_files_resolve_like_the_hub_cache_and_fall_back_like_py_feat(tmp_path):
    cache = fake_cache(tmp_path, {"py-feat/mobilefacenet/mobilefacenet_model_best.pth.tar": b"l",
                                  "py-feat/xgb_au/xgb_au_classifier.skops": b"a",  # py-feat's fallback name
                                  "py-feat/resmasknet/config.json": b"{}",
                                  "py-feat/resmasknet/ResMaskNet_Z_resmasking_dropout1_rot30.pth": b"e"})
    found = ex.resolve_model_files(cache, MODELS)
    assert sorted(found) == ["py-feat/mobilefacenet/mobilefacenet_model_best.pth.tar",
                             "py-feat/resmasknet/ResMaskNet_Z_resmasking_dropout1_rot30.pth",
                             "py-feat/resmasknet/config.json", "py-feat/xgb_au/xgb_au_classifier.skops"]
    assert found["py-feat/xgb_au/xgb_au_classifier.skops"].read_bytes() == b"a"


def test_missing_model_files_are_named_in_one_line(tmp_path):
    cache = fake_cache(tmp_path / "cache", {"py-feat/resmasknet/config.json": b"{}"})
    with pytest.raises(UserError) as err:
        ex.resolve_model_files(cache, MODELS)
    message = str(err.value)
    assert message.startswith("expressions.model_dir: ") and "\n" not in message
    for missing in ("py-feat/mobilefacenet/mobilefacenet_model_best.pth.tar",
                    "py-feat/xgb_au/xgb_au_classifier_v2.skops or xgb_au_classifier.skops",
                    "py-feat/resmasknet/ResMaskNet_Z_resmasking_dropout1_rot30.pth"):
        assert missing in message
    assert "py-feat/resmasknet/config.json" not in message and "hf download" in message
    for folder in ("", str(tmp_path / "nowhere")):
        with pytest.raises(UserError, match="^expressions.model_dir: "):
            ex.resolve_model_files(folder, MODELS)
    with pytest.raises(UserError, match="^expressions.au_model: 'svm' is not supported"):
        ex.resolve_model_files(cache, {**MODELS, "au_model": "svm"})


def test_batches_group_frames_with_faces_and_convert_boxes():
    tracking = {"frames": [{"frame": 0, "faces": [{"track_id": 1, "bbox": [10, 20, 30, 40]}]},
                           {"frame": 1, "faces": []},
                           {"frame": 2, "faces": [{"track_id": 2, "bbox": [0, 0, 5, 5]},
                                                  {"track_id": 3, "bbox": [1, 2, 3, 4]}]}]}
    frames = [(i, np.full((4, 6, 3), i, np.uint8)) for i in range(3)]
    out = list(ex.batches(tracking, iter(frames), batch_frames=1))
    assert [keys for *_, keys in out] == [[(0, 1)], [(2, 2), (2, 3)]]
    images, boxes, owners, _ = out[1]
    assert images.shape == (1, 4, 6, 3) and images[0, 0, 0, 0] == 2 and owners.tolist() == [0, 0]
    assert boxes.tolist() == [[0, 0, 5, 5], [1, 2, 4, 6]]
    (images, boxes, owners, keys), = ex.batches(tracking, iter(frames), batch_frames=16)
    assert images.shape[0] == 2 and owners.tolist() == [0, 1, 1] and len(keys) == 3


def test_document_lists_every_frame_rounds_and_writes_nan_as_null():
    tracking = {"fps": 25, "width": 8, "height": 6,
                "frames": [{"frame": 0, "faces": [{"track_id": 2, "bbox": [0, 0, 1, 1]},
                                                  {"track_id": 1, "bbox": [2, 2, 1, 1]}]},
                           {"frame": 1, "faces": []}]}
    results = {(0, 1): ([0.123456, float("nan")], [0.25, 0.75]), (0, 2): ([1.0, 0.0], [1.0, 0.0])}
    doc = ex.expressions_document(tracking, results, ["AU01", "AU02"], ["joy", "calm"], {"package": "py-feat"})
    assert [f["frame"] for f in doc["frames"]] == [0, 1] and doc["frames"][1]["faces"] == []
    first = doc["frames"][0]["faces"][0]
    assert first == {"track_id": 1, "action_units": {"AU01": 0.1235, "AU02": None},
                     "emotions": {"joy": 0.25, "calm": 0.75}}
    assert doc["frames"][0]["faces"][1]["track_id"] == 2 and doc["frame_count"] == 2


def test_bad_tracking_is_a_one_line_error(tmp_path):
    path = tmp_path / "tracking.json"
    path.write_text(json.dumps({"width": 320, "height": 180, "frames": [{"frame": 0, "faces": [{"bbox": [1, 2]}]}]}))
    with pytest.raises(UserError, match="not a tracking.json"):
        ex.read_tracking(path)
    path.write_text(json.dumps({"width": 320, "height": 180, "frames": [{"frame": 1, "faces": []}]}))
    with pytest.raises(UserError, match="not numbered 0, 1, 2"):
        ex.read_tracking(path)


# --------------------------------------------------------------------------- the real script in its env


@pytest.fixture(scope="session")
def python():
    return build(ROOT / "envs" / "expressions.yaml", VENV_DIR / "expressions")


@pytest.fixture(scope="session")
def clip(tmp_path_factory):
    """A clip with one face, then two, then none, and its tracking.json from the true boxes (an id per face, shot)."""
    require_binaries("ffmpeg")
    folder = tmp_path_factory.mktemp("expressions")
    truth = make_video(folder / "video.mp4", SHOTS)
    frames = []
    for frame, faces in enumerate(truth["faces"]):
        shot = max(k for k, s in enumerate(truth["shots"]) if s["start_frame"] <= frame)
        faces = sorted(faces, key=lambda face: face["bbox"][0])
        frames.append({"frame": frame, "faces": [{"track_id": 10 * shot + i + 1, "bbox": face["bbox"], "score": 1.0}
                                                 for i, face in enumerate(faces)]})
    tracking = {"fps": 25, "width": 320, "height": 180, "frame_count": len(frames), "engine": "truth",
                "frames": frames}
    (folder / "tracking.json").write_text(json.dumps(tracking))
    assert sum(len(f["faces"]) for f in frames) >= 6 and any(len(f["faces"]) == 2 for f in frames)
    return folder, tracking


@pytest.fixture(scope="session")
def models(python, tmp_path_factory):
    folder = tmp_path_factory.mktemp("py-feat-models")
    proc = subprocess.run([str(python), "-c", BUILD_MODELS, str(folder)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return folder, json.loads(proc.stdout.strip().splitlines()[-1])


def analyse(python, clip, model_dir, name):
    folder, _ = clip
    cmd = job_command(python, "expressions",
                      {"video": folder / "video.mp4", "tracking": folder / "tracking.json"},
                      {"json": folder / f"{name}.json"}, schema_defaults("expressions", model_dir=str(model_dir)),
                      threads=2, log=folder / f"{name}.log")
    return subprocess.run(cmd, capture_output=True, text=True, check=False), folder / f"{name}.json"


@pytest.fixture(scope="session")
def result(python, clip, models):
    proc, out = analyse(python, clip, models[0], "first")
    assert proc.returncode == 0, proc.stderr + (clip[0] / "first.log").read_text()
    return out


@pytest.mark.slow
def test_every_tracked_face_gets_py_feat_action_units_and_emotions(result, clip, models):
    data = json.loads(result.read_text())
    jsonschema.validate(data, SCHEMA)
    tracking, names = clip[1], models[1]
    assert names["action_units"][:3] == ["AU01", "AU02", "AU04"] and len(names["action_units"]) == 20
    assert data["action_unit_names"] == names["action_units"] and data["emotion_names"] == names["emotions"]
    assert (data["fps"], data["width"], data["height"], data["frame_count"]) == (25, 320, 180, len(tracking["frames"]))
    assert [f["frame"] for f in data["frames"]] == list(range(len(tracking["frames"])))
    for ours, theirs in zip(data["frames"], tracking["frames"]):
        assert [face["track_id"] for face in ours["faces"]] == [face["track_id"] for face in theirs["faces"]]
        for face in ours["faces"]:
            assert list(face["action_units"]) == sorted(names["action_units"])  # sorted keys; zero-padded names
            assert set(face["action_units"]) == set(names["action_units"])
            assert all(0 <= v <= 1 for v in face["action_units"].values())
            assert set(face["emotions"]) == set(names["emotions"])
            assert sum(face["emotions"].values()) == pytest.approx(1, abs=5e-4)
    values = {json.dumps(face["action_units"]) for frame in data["frames"] for face in frame["faces"]}
    assert len(values) > 1, "AU values do not depend on the face crop"
    model = data["model"]
    assert {k: model[k] for k in ("package", "version", "device")} == {"package": "py-feat", "version": "2.1.5",
                                                                        "device": "cpu"}
    assert {k: model[k] for k in MODELS} == MODELS
    for name, digest in model["files"].items():
        owner, repo, filename = name.split("/")
        snapshot = next((models[0] / f"models--{owner}--{repo}" / "snapshots").iterdir())
        assert hashlib.sha256((snapshot / filename).read_bytes()).hexdigest() == digest
    assert len(model["files"]) == 4
    log = (clip[0] / "first.log").read_text()
    assert "device cpu" in log and "faces/s" in log


@pytest.mark.slow
def test_rerun_is_byte_identical(python, clip, models, result):
    proc, again = analyse(python, clip, models[0], "again")
    assert proc.returncode == 0, proc.stderr
    assert again.read_bytes() == result.read_bytes()


@pytest.mark.slow
def test_missing_model_is_one_line_naming_the_config_key(python, clip, models, tmp_path):
    partial = tmp_path / "partial"
    shutil.copytree(models[0], partial, symlinks=True, ignore=shutil.ignore_patterns("models--py-feat--resmasknet"))
    proc, out = analyse(python, clip, partial, "missing")
    assert proc.returncode == 1 and not out.exists()
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "expressions.model_dir" in lines[0] and "py-feat/resmasknet/config.json" in lines[0]
