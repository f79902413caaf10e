"""Step 5: the real engines on real faces with known boxes (tools/media_factory.py), run in their env.

One clip, four shots at 320x180: the astronaut panned and zoomed, two astronauts side by side
(the right one mirrored), a shot without a face, and a small face (10% of the frame height).
Model files the wheels do not ship are taken from $VIDFLOW_TEST_MODELS (default ../shared/models).
"""

import json
import os
import subprocess
import time
from pathlib import Path

import jsonschema
import pytest
from media_clips import make_video
from media_shots import Shot

from build_env import build
from conftest import ROOT, VENV_DIR, require_binaries, run_snakemake, schema_defaults
from steps.tracking.engines import BLENDSHAPE_NAMES
from steps.tracking.tracks import iou
from vidflow.job import job_command

MODELS = Path(os.environ.get("VIDFLOW_TEST_MODELS", ROOT.parent / "shared" / "models"))
TASK = MODELS / "mediapipe" / "face_landmarker_v2_with_blendshapes.task"
SCHEMA = json.loads((ROOT / "schemas" / "tracking.schema.json").read_text())
TASK_SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"
SHOTS = [Shot("astronaut", 40, zoom=(1.0, 1.6), pan=(0.4, 0.4, 0.5, 0.3)), Shot("astronaut_pair", 30),
         Shot("blank", 15), Shot("astronaut", 30, face_scale=0.1, pan=(0.45, 0.5, 0.55, 0.5))]


@pytest.fixture(scope="session")
def python():
    return build(ROOT / "envs" / "tracking_mediapipe.yaml", VENV_DIR / "tracking_mediapipe")


@pytest.fixture(scope="session")
def clip(tmp_path_factory):
    require_binaries("ffmpeg")
    folder = tmp_path_factory.mktemp("tracking")
    truth = make_video(folder / "video.mp4", SHOTS)
    scenes = [{"start_frame": s["start_frame"], "end_frame": s["end_frame"], "start_time": s["start_frame"] / 25,
               "end_time": (s["end_frame"] + 1) / 25} for s in truth["shots"]]
    (folder / "scenes.json").write_text(json.dumps({"fps": 25, "frame_count": truth["frame_count"], "scenes": scenes,
                                                    "model": {"name": "truth"}}))
    return folder, truth


def tracking_settings(engine="mediapipe", options=None, **changes):
    """The ``tracking`` section as config/schema.yaml fills it in, with ``changes`` and ``options`` (keys of the
    engine's own section ``tracking.<engine>``)."""
    settings = schema_defaults("tracking", engine=engine, **changes)
    settings[engine] = {**settings[engine], **(options or {})}
    return settings


def tracking_command(python, folder, output, log, settings, threads=1):
    """argv of the tracking step on ``folder``'s video.mp4 + scenes.json, as the rule runs it."""
    return job_command(python, "tracking",
                       {"video": folder / "video.mp4", "scenes": folder / "scenes.json"}, {"tracking": output},
                       settings, threads=threads, log=log)


def track(python, clip, name, threads=2, **settings):
    folder, _ = clip
    out = folder / f"{name}.json"
    cmd = tracking_command(python, folder, out, folder / f"{name}.log", tracking_settings(chunk_frames=25, **settings),
                           threads)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr + (folder / f"{name}.log").read_text()
    return out


def track_failing(python, clip, tmp_path, **settings):
    """Run the tracker expecting it to fail: ``(ERROR lines of stderr, log text, seconds)``; no output is written."""
    folder, _ = clip
    start = time.monotonic()
    proc = subprocess.run(tracking_command(python, folder, tmp_path / "t.json", tmp_path / "t.log",
                                           tracking_settings(**settings)), capture_output=True, text=True, check=False)
    assert proc.returncode == 1 and not (tmp_path / "t.json").exists(), proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "ERROR" in line]
    return errors, (tmp_path / "t.log").read_text(), time.monotonic() - start


@pytest.fixture(scope="session")
def legacy(python, clip):
    return track(python, clip, "mediapipe", engine="mediapipe")


@pytest.fixture(scope="session")
def tasks(python, clip):
    if not TASK.exists():
        pytest.skip(f"no FaceLandmarker bundle at {TASK} (set VIDFLOW_TEST_MODELS to the shared models folder)")
    return track(python, clip, "tasks", engine="mediapipe_tasks", options={"model": str(TASK), "sha256": TASK_SHA256})


def shot_frames(truth, k):
    shot = truth["shots"][k]
    return range(shot["start_frame"], shot["end_frame"] + 1)


def matches(result, truth, k):
    """Per truth face of shot ``k``: the track ids of the faces matching it (IoU >= 0.5), or None, per frame."""
    found = []
    for f in shot_frames(truth, k):
        faces = result["frames"][f]["faces"]
        row = []
        for face in truth["faces"][f]:
            best = max(faces, key=lambda x: iou(x["bbox"], face["bbox"]), default=None)
            row.append(best["track_id"] if best and iou(best["bbox"], face["bbox"]) >= 0.5 else None)
        found.append(row)
    return found


def check_tracking(result, truth, landmark_count, landmark_dims=3):
    """The checks every engine meets on the clip: each known face found (IoU >= 0.5) in >= 90% of its shot's
    frames with one track id per shot and new ids after a cut, no face in the blank shot, and
    ``landmark_count`` landmarks of ``landmark_dims`` coordinates inside the box of each face of the large shots.
    Returns ``[(frame, face)]`` of all faces."""
    jsonschema.validate(result, SCHEMA)
    assert (result["width"], result["height"], result["frame_count"], result["fps"]) == (320, 180, 115, 25)
    assert [f["frame"] for f in result["frames"]] == list(range(115))
    shot_ids = []
    for k in (0, 1, 3):
        found = matches(result, truth, k)
        for face in range(len(found[0])):
            ids = [row[face] for row in found]
            assert sum(i is not None for i in ids) >= 0.9 * len(ids), f"shot {k} face {face}: found in too few frames"
            assert len({i for i in ids if i is not None}) == 1, f"shot {k} face {face}: id not stable: {ids}"
        shot_ids.append({row[face] for row in found for face in range(len(row))} - {None})
    assert len(shot_ids[1]) == 2, "two faces side by side need two ids"
    assert not (shot_ids[0] & shot_ids[1]) and not (shot_ids[1] & shot_ids[2]), "a cut must give new ids"
    assert all(result["frames"][f]["faces"] == [] for f in shot_frames(truth, 2)), "faces found in a shot without"
    assert result["track_count"] == max(t for ids in shot_ids for t in ids)
    for f in [*shot_frames(truth, 0), *shot_frames(truth, 1)]:
        for face in result["frames"][f]["faces"]:
            assert len(face["landmarks"]) == landmark_count and len(face["landmarks"][0]) == landmark_dims
            x, y, w, h = face["bbox"]
            assert all(x - 2 <= p[0] <= x + w + 2 and y - 2 <= p[1] <= y + h + 2 for p in face["landmarks"])
    return [(frame["frame"], face) for frame in result["frames"] for face in frame["faces"]]


LEAN_CALLS = """
import sys
import numpy as np
from steps.frames import read_frames
from steps.tracking.engines.mediapipe_common import FaceLandmarksOnRoi, landmark_xyz, run_graph
from mediapipe.python.solutions import face_detection
from google.protobuf import text_format
from mediapipe.framework.formats import landmark_pb2
detector, mesh = face_detection.FaceDetection(model_selection=1), FaceLandmarksOnRoi()
checked = 0
for index, frame in read_frames(sys.argv[1], 320, 180, 0, 70):
    expected = detector.process(frame).detections
    assert run_graph(detector, {"image": frame})["detections"] == expected
    if expected:
        box = expected[0].location_data.relative_bounding_box
        box = [box.xmin * 320, box.ymin * 180, box.width * 320, box.height * 180]
        points = mesh(frame, box)
        message = mesh.graph.process({"image": frame, "roi": mesh.region(320, 180, box)}).landmarks
        assert np.array_equal(points, np.array([(p.x * 320, p.y * 180, p.z * 320) for p in message.landmark]))
        checked += 1
odd = text_format.Parse("landmark {x: 0.5 y: 0.25 z: -1} landmark {x: 0 y: 1 z: 2 visibility: 0.5}",
                        landmark_pb2.NormalizedLandmarkList())
assert landmark_xyz(odd).tolist() == [[0.5, 0.25, -1.0], [0.0, 1.0, 2.0]]
print(checked)
"""


def test_graph_calls_without_process_give_what_mediapipe_process_gives(python, clip):
    """``run_graph`` (MediaPipe's ``process`` without the class it builds per call) and ``landmark_xyz`` (the
    landmarks read from their serialized bytes) against ``process`` and the message's fields, on real faces."""
    folder, _ = clip
    proc = subprocess.run([python, "-c", LEAN_CALLS, str(folder / "video.mp4")], capture_output=True, text=True,
                          check=False, env={**os.environ, "PYTHONPATH": str(ROOT / "scripts")})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert int(proc.stdout.split()[-1]) >= 60  # frames with a face, of the first two shots' 70


def test_mediapipe_finds_tracks_and_describes_faces(legacy, clip):
    result = json.loads(legacy.read_text())
    check_tracking(result, clip[1], 478)
    assert result["engine"] == "mediapipe" and result["device"] == "cpu"
    faces = [face for frame in result["frames"] for face in frame["faces"]]
    assert all("blendshapes" not in f and "head_pose" not in f for f in faces), "fields it cannot produce are absent"
    assert "blendshape_names" not in result
    log = (clip[0] / "mediapipe.log").read_text()
    assert "progress: 115 / 115 frames" in log and "2 worker process(es)" in log


def test_output_does_not_depend_on_the_thread_count(legacy, python, clip):
    one = track(python, clip, "mediapipe_1thread", engine="mediapipe", threads=1)
    assert one.read_bytes() == legacy.read_bytes()


def test_by_default_faces_are_detected_every_fifth_frame_and_followed_by_their_landmarks(legacy, clip):
    result = json.loads(legacy.read_text())
    assert result["settings"]["detect_every"] == 5
    # in the pair shot, only every fifth frame runs the detector (so has scores); the others follow the faces
    scored = {f for f in shot_frames(clip[1], 1) for face in result["frames"][f]["faces"] if "score" in face}
    assert scored == {f for f in shot_frames(clip[1], 1) if (f - clip[1]["shots"][1]["start_frame"]) % 5 == 0}


def test_detecting_on_every_frame(python, clip):
    result = json.loads(track(python, clip, "every1", engine="mediapipe", detect_every=1).read_text())
    check_tracking(result, clip[1], 478)
    # the detector runs on every frame; where it misses the small face, its landmarks still follow it
    for k in (0, 1):
        assert all("score" in face for f in shot_frames(clip[1], k) for face in result["frames"][f]["faces"])
    faces = [face for frame in result["frames"] for face in frame["faces"]]
    assert sum("score" in face for face in faces) >= 0.9 * len(faces)


def test_mediapipe_tasks_adds_blendshapes_and_head_pose(tasks, clip):
    result = json.loads(tasks.read_text())
    truth = clip[1]
    check_tracking(result, truth, 478)
    assert result["blendshape_names"] == list(BLENDSHAPE_NAMES) and len(BLENDSHAPE_NAMES) == 52
    assert BLENDSHAPE_NAMES[25] == "jawOpen" and BLENDSHAPE_NAMES[0] == "_neutral"
    assert result["model"]["task_sha256"] == TASK_SHA256
    large = [face for f in [*shot_frames(truth, 0), *shot_frames(truth, 1)] for face in result["frames"][f]["faces"]]
    assert large and all(list(f["blendshapes"]) == list(BLENDSHAPE_NAMES) for f in large)
    assert all(set(f["head_pose"]) == {"yaw", "pitch", "roll"} for f in large)
    assert all(0 <= v <= 1 for f in large for v in f["blendshapes"].values())
    # the right astronaut of the pair is mirrored: its head roll has the opposite sign
    first = result["frames"][truth["shots"][1]["start_frame"]]["faces"]
    left, right = sorted(first, key=lambda f: f["bbox"][0])
    assert left["head_pose"]["roll"] * right["head_pose"]["roll"] < 0 and abs(left["head_pose"]["roll"]) > 1


def test_missing_model_fails_at_once_with_one_line(python, clip, tmp_path):
    folder, _ = clip
    start = time.monotonic()
    settings = tracking_settings("mediapipe_tasks", {"model": str(tmp_path / "missing.task")})
    proc = subprocess.run(tracking_command(python, folder, tmp_path / "t.json", tmp_path / "t.log", settings),
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 1 and not (tmp_path / "t.json").exists()
    errors = [line for line in proc.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and "tracking.mediapipe_tasks.model: model file" in errors[0]
    assert "download it from https://storage.googleapis.com/mediapipe-models/" in errors[0]
    assert "engine mediapipe_tasks on" not in (tmp_path / "t.log").read_text(), "frames were read before the check"
    assert time.monotonic() - start < 20


@pytest.mark.skipif(not (ROOT / "rules" / "scenes.smk").exists(), reason="needs the scenes step (rules/scenes.smk)")
def test_workflow_tracks_faces_across_a_detected_cut(tmp_path):
    """The real workflow: convert -> scenes (TransNetV2) -> tracking (mediapipe), on one loose video."""
    require_binaries("ffmpeg")
    inputs = tmp_path / "input"
    inputs.mkdir()
    truth = make_video(inputs / "cut.mp4", [SHOTS[0], Shot("astronaut_pair", 40)])
    target = "results/_loose/cut/tracking.json"
    run_snakemake(tmp_path, "--nolock", target, config={"input_dir": str(inputs)})
    result = json.loads((tmp_path / target).read_text())
    assert result["engine"] == "mediapipe" and result["frame_count"] == truth["frame_count"]
    before = {face["track_id"] for frame in result["frames"][:38] for face in frame["faces"]}
    after = {face["track_id"] for frame in result["frames"][42:] for face in frame["faces"]}
    assert len(before) == 1 and len(after) == 2 and not before & after
    assert (tmp_path / "logs" / "tracking" / "_loose" / "cut.log").exists()
    assert (tmp_path / "results" / "benchmarks" / "tracking" / "_loose" / "cut.tsv").exists()
