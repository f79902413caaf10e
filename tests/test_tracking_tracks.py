"""Step 5 pure logic: optimal matching, track ids on synthetic box sequences, chunk plans, I/O, engine registry."""

import itertools
import json
import os
import re
import signal
import time

import numpy as np
import pytest
import yaml
from test_envs import imported_modules, rule_blocks

from build_env import read_env
from conftest import ROOT
from steps.tracking import pipeline
from steps.tracking.engines import BLENDSHAPE_NAMES, ENGINES, check_model_file, engine_family
from steps.tracking.output import face_line, landmarks_json, read_scenes, round_face, write_tracking
from steps.tracking.pipeline import RUNS_PER_WORKER, plan_chunks, plan_runs
from steps.tracking.tracks import TrackAssigner, assign_track_ids, iou, linear_sum_assignment
from vidflow.errors import UserError
from vidflow.io import dumps_json, sha256_file


def test_assignment_is_optimal_on_random_matrices():
    rng = np.random.default_rng(1)
    for _ in range(200):
        n, m = int(rng.integers(1, 6)), int(rng.integers(1, 6))
        cost = rng.integers(0, 20, size=(n, m)).astype(float)
        rows, cols = linear_sum_assignment(cost)
        assert len(rows) == min(n, m) and len(set(rows)) == len(rows) and len(set(cols)) == len(cols)
        if n <= m:
            best = min(sum(cost[i, p[i]] for i in range(n)) for p in itertools.permutations(range(m), n))
        else:
            best = min(sum(cost[p[j], j] for j in range(m)) for p in itertools.permutations(range(n), m))
        assert cost[rows, cols].sum() == pytest.approx(best)


def test_greedy_would_fail_where_optimal_matching_does_not():
    # track 0 is slightly closer to detection 0, but giving it to track 0 leaves track 1 without a match
    assert linear_sum_assignment([[0.1, 0.2], [0.15, 5.0]]) == ([0, 1], [1, 0])


def box_at(cx, cy, size=40):
    return [cx - size / 2, cy - size / 2, size, size]


def run(frames, cuts=(), **options):
    return assign_track_ids(list(enumerate(frames)), cuts, **options)


def test_two_faces_crossing_keep_their_ids():
    # A moves right, B moves left; they cross around frame 20 (fully overlapping there)
    frames = [[box_at(100 + 5 * t, 100), box_at(300 - 5 * t, 100)] for t in range(41)]
    ids = run(frames)
    a, b = ids[0]
    assert a != b
    assert [i[0] for i in ids[:20]] == [a] * 20 and [i[1] for i in ids[:20]] == [b] * 20
    # after the crossing the box at the right is A (moving right)
    for t in range(22, 41):
        right = 0 if frames[t][0][0] > frames[t][1][0] else 1
        assert ids[t][right] == a and ids[t][1 - right] == b


def test_detector_dropouts_within_the_gap_keep_the_id():
    frames = [[box_at(100 + t, 100)] if t % 4 else [] for t in range(40)]
    ids = run(frames, max_gap=2)
    assert {i[0] for i in ids if i} == {1}


def test_face_leaving_and_reentering():
    frames = [[box_at(100 + t, 100)] for t in range(10)] + [[]] * 3 + [[box_at(113 + t, 100)] for t in range(10)]
    assert {i[0] for i in run(frames, max_gap=5) if i} == {1}
    # gone longer than the gap tolerance: a new id, never a reused one
    ids = run(frames[:10] + [[]] * 10 + frames[13:], max_gap=5)
    assert [i[0] for i in ids if i] == [1] * 10 + [2] * 10


def test_far_jump_is_a_new_track():
    frames = [[box_at(100, 100)]] * 5 + [[box_at(400, 100)]] * 5
    assert [i[0] for i in run(frames)] == [1] * 5 + [2] * 5


def test_scene_cut_gives_new_ids_and_ids_are_never_reused():
    frames = [[box_at(100, 100), box_at(300, 100)]] * 10
    ids = run(frames, cuts=[5])
    assert ids[:5] == [[1, 2]] * 5 and ids[5:] == [[3, 4]] * 5


def test_short_tracks_are_dropped_and_the_rest_renumbered():
    frames = [[box_at(100, 100)] + ([box_at(300, 300)] if t == 2 else []) for t in range(6)]
    ids = run(frames, min_track_frames=3)
    assert ids[2] == [1, None] and all(i == [1] for k, i in enumerate(ids) if k != 2)


def test_assigner_validates_options_and_frames_can_be_sparse():
    with pytest.raises(ValueError):
        TrackAssigner(min_iou=2)
    assigner = TrackAssigner(max_gap=1)
    assert assigner.update(0, [box_at(50, 50)]) == [1]
    assert assigner.update(2, [box_at(50, 50)]) == [1]  # missed frame 1 only
    assert assigner.update(5, [box_at(50, 50)]) == [2]


def test_iou():
    assert iou([0, 0, 10, 10], [0, 0, 10, 10]) == 1
    assert iou([0, 0, 10, 10], [5, 0, 10, 10]) == pytest.approx(1 / 3)
    assert iou([0, 0, 10, 10], [20, 20, 5, 5]) == 0


def test_chunks_split_at_cuts_on_detection_frames_and_cover_every_frame():
    chunks = plan_chunks([0, 30, 100], 130, 25, 4)
    assert chunks == [(0, 24), (24, 6), (30, 24), (54, 24), (78, 22), (100, 24), (124, 6)]
    covered = [f for start, count in chunks for f in range(start, start + count)]
    assert covered == list(range(130))
    assert plan_chunks([], 0, 500, 1) == []


def test_runs_group_consecutive_chunks_one_for_one_worker_else_several_per_worker():
    chunks = plan_chunks(list(range(0, 15000, 125)), 15000, 250, 5)  # the 600 s benchmark clip: a cut every 5 s
    assert plan_runs(chunks, 1) == [chunks]  # one FFmpeg read for the whole video
    runs = plan_runs(chunks, 2)
    assert [chunk for run in runs for chunk in run] == chunks  # in order, each chunk once
    assert all(run[-1][0] + run[-1][1] == after[0][0] for run, after in zip(runs, runs[1:]))  # runs are contiguous
    assert 2 * RUNS_PER_WORKER - 1 <= len(runs) <= 2 * RUNS_PER_WORKER
    sizes = [sum(count for _, count in run) for run in runs]
    assert max(sizes[:-1]) - min(sizes[:-1]) <= 125
    assert plan_runs(chunks[:3], 2) == [[c] for c in chunks[:3]]  # fewer chunks than runs: one each
    assert plan_runs([], 2) == plan_runs([], 1) == []


def write(path, data):
    path.write_text(json.dumps(data))
    return path


def test_scenes_are_checked_against_the_video(tmp_path):
    scenes = [{"start_frame": 0, "end_frame": 9}, {"start_frame": 10, "end_frame": 19}]
    assert read_scenes(write(tmp_path / "s.json", {"frame_count": 20, "scenes": scenes}), 20) == [0, 10]
    assert read_scenes(write(tmp_path / "s.json", {"scenes": []}), 20) == [0]
    for bad, reason in [({"frame_count": 25, "scenes": scenes}, "frame_count 25"),
                        ({"scenes": [{"start_frame": 0, "end_frame": 30}]}, "outside"),
                        ({"scenes": scenes[::-1]}, "out of order"), ({"shots": []}, "not a scenes.json")]:
        with pytest.raises(UserError, match=reason):
            read_scenes(write(tmp_path / "s.json", bad), 20)


def test_streamed_output_equals_compact_sorted_json(tmp_path):
    face = {**round_face({"bbox": [1.04, 2, 3, 4], "score": 0.12345}), "track_id": 1}
    frames = [{"frame": 0, "faces": []}, {"frame": 1, "faces": [face]}]
    header = {"width": 320, "fps": 25, "engine": "x", "model": {"b": 1, "a": 2}}
    write_tracking(tmp_path / "t.json", header, (json.dumps(f, sort_keys=True, separators=(",", ":")) for f in frames))
    assert (tmp_path / "t.json").read_text() == dumps_json({**header, "frames": frames}, compact=True)
    assert frames[1]["faces"][0] == {"bbox": [1.0, 2.0, 3.0, 4.0], "score": 0.123, "track_id": 1}
    shapes = round_face({"blendshapes": {"_neutral": 0.123456, "jawOpen": 1 / 3}, "landmarks": [[1.06, 2.04, -0.25]]})
    assert shapes == {"blendshapes": {"_neutral": 0.1235, "jawOpen": 0.3333}, "landmarks": [[1.1, 2.0, -0.2]]}
    assert list(BLENDSHAPE_NAMES) == sorted(BLENDSHAPE_NAMES) and len(BLENDSHAPE_NAMES) == 52
    other = round_face({"head_pose": {"yaw": 12.345}, "shape_coefficients": np.array([0.123456, -2.0]),
                        "expression_coefficients": [np.float32(1 / 3)]})
    assert other == {"head_pose": {"yaw": 12.3}, "shape_coefficients": [0.1235, -2.0],
                     "expression_coefficients": [0.3333]}
    with pytest.raises(ValueError, match="sort before 'track_id'"):
        round_face({"bbox": [0, 0, 1, 1], "zoom": 1})


def test_a_face_line_with_landmarks_by_numpy_is_the_json_text_of_the_rounded_face():
    rng = np.random.default_rng(7)
    for _ in range(300):
        scale = 10.0 ** int(rng.integers(-2, 14))
        points = rng.normal(0, 1, (int(rng.integers(0, 40)), int(rng.integers(1, 4)))) * scale
        points[rng.random(points.shape) < 0.1] = -0.04  # rounds to a negative zero: "-0.0"
        points[rng.random(points.shape) < 0.1] = 2.05  # halfway: rounds to even
        face = {"bbox": [1.04, 2, 3.25, 4], "landmarks": points, "score": 0.12345,
                "blendshapes": {"jawOpen": 1 / 3, "_neutral": 0.5}, "head_pose": {"yaw": -0.04}}
        assert face_line(face) == dumps_json(round_face(face), compact=True)
    assert landmarks_json(np.array([[-0.04, 1234.56, 0.05]])) == "[[-0.0,1234.6,0.0]]"
    for beyond in ([[float("nan"), 1.0]], [[1e15, 0.0]], [1.0, 2.0]):  # json's own text for these
        assert landmarks_json(beyond) is None
        assert face_line({"landmarks": beyond}) == dumps_json(round_face({"landmarks": beyond}), compact=True)


def test_track_ids_are_added_without_reparsing_faces_and_give_the_same_bytes(tmp_path):
    """Chunk files hold ``[frame, boxes]`` then one line per face; unmatched faces are dropped."""
    faces = [[round_face({"bbox": [1, 2, 3, 4], "score": 0.9, "landmarks": [[1.0, 2.0, 3.0]]}),
              round_face({"bbox": [50, 2, 3, 4], "blendshapes": {"jawOpen": 0.5}})], [],
             [round_face({"bbox": [1, 2, 3, 5]})]]
    chunk = tmp_path / "000000000.jsonl"
    with open(chunk, "w", encoding="utf-8") as out:
        for index, frame_faces in enumerate(faces):
            out.write(dumps_json([index, [f["bbox"] for f in frame_faces]], compact=True))
            out.writelines(dumps_json(f, compact=True) for f in frame_faces)
    assert list(pipeline._boxes([chunk])) == [(i, [f["bbox"] for f in ff]) for i, ff in enumerate(faces)]
    ids = [[1, None], [], [1]]
    expected = [json.dumps({"frame": i, "faces": [{**f, "track_id": t} for f, t in zip(ff, fi) if t is not None]},
                           sort_keys=True, separators=(",", ":"), ensure_ascii=False)
                for i, (ff, fi) in enumerate(zip(faces, ids))]
    assert list(pipeline._frames_with_ids([chunk], ids)) == expected


def test_missing_or_wrong_model_is_one_line_naming_the_key(tmp_path):
    key = "tracking.mediapipe_tasks.model"
    with pytest.raises(UserError, match=rf"^{re.escape(key)}: model file .*nope.task not found; download it from "):
        check_model_file(str(tmp_path / "nope.task"), "", key, "https://example.org/m.task")
    with pytest.raises(UserError, match="no model file configured"):
        check_model_file("", "", key, "https://example.org/m.task")
    model = tmp_path / "m.task"
    model.write_bytes(b"model")
    assert check_model_file(str(model), "", key, "u") == sha256_file(model)
    assert check_model_file(str(model), sha256_file(model).upper(), key, "u") == sha256_file(model)
    with pytest.raises(UserError, match="has SHA-256"):
        check_model_file(str(model), "0" * 64, key, "u")


def test_every_engine_has_its_rule_env_and_config_choice():
    schema = yaml.safe_load((ROOT / "config" / "schema.yaml").read_text())
    assert set(schema["properties"]["tracking"]["properties"]["engine"]["enum"]) == set(ENGINES)
    rules = dict(rule_blocks())
    with pytest.raises(UserError, match="tracking.engine"):
        engine_family("nope")
    text = rules["tracking"]  # one rule: the configured engine's family names its env, its spec the memory
    assert 'output:\n        tracking="results/{project}/{video}/tracking.json"' in text
    assert "env_file(TRACKING_ENV)" in text and "TRACKING_ENGINE.mem_mb(TRACKING_THREADS)" in text
    assert not [rule for rule in rules if rule.startswith("track_faces")]
    for name, spec in ENGINES.items():
        assert spec.mem_mb(2) - spec.mem_mb(1) == spec.thread_mb >= 512 and spec.mem_mb(0) >= 1024
        env = read_env(ROOT / "envs" / f"tracking_{spec.family}.yaml")
        provided = {req.split("==")[0].lower() for req in env["pip"] + env["nodeps"]}
        module = ROOT / "scripts" / "steps" / "tracking" / "engines" / f"{spec.module}.py"
        distributions = {"cv2": {"opencv-contrib-python-headless", "opencv-python-headless"},
                         "google": {"protobuf"}, "dlib": {"dlib-bin"}, "eos": {"eos-py"}, "PIL": {"pillow"}}
        for imported in imported_modules(module):
            assert distributions.get(imported, {imported}) & provided, (name, imported)


def test_a_face_in_every_frame_of_a_scene_shorter_than_min_track_frames_is_kept():
    """One-frame videos and two-frame scenes keep their faces; a blip inside a long scene is still dropped."""
    box = [10, 10, 20, 20]
    assert assign_track_ids([(0, [box])], [0], min_track_frames=3, frame_count=1) == [[1]]
    frames = [(0, [box]), (1, [box]), (2, [box]), (3, [box]), (4, [[100, 100, 20, 20]])]
    assert assign_track_ids(frames, [0, 2, 4], min_track_frames=3, frame_count=10) == [[1], [1], [2], [2], [None]]
    assert assign_track_ids(frames[:2], [0], min_track_frames=3) == [[1], [1]]  # the video ends after frame 1


def signal_masks(pid):
    """``(blocked, ignored)`` signal sets of a process, from /proc."""
    fields = dict(line.split(":\t", 1) for line in open(f"/proc/{pid}/status").read().splitlines() if ":\t" in line)
    return int(fields["SigBlk"], 16), int(fields["SigIgn"], 16)


def test_tracking_workers_leave_ctrl_c_to_the_step_and_a_spare_one_takes_only_idle_cpu():
    """Workers ignore SIGINT (the step's process stops them), with the usual mask for their ffmpeg decoders;
    the step's own thread gets SIGINT unblocked back. A spare worker (past the job's threads) runs at nice 19."""
    sigint = 1 << (signal.SIGINT - 1)
    with pipeline._pool(2, 1) as pool:
        assert pool.map(abs, [-1, -2, -3, -4]) == [1, 2, 3, 4]
        pids = [worker.pid for worker in pool._pool]
        deadline = time.monotonic() + 30
        while not all(signal_masks(pid)[1] & sigint for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.05)  # a worker that took no task may still be starting
        masks = [signal_masks(pid) for pid in pids]
        assert [(blocked & sigint, ignored & sigint) for blocked, ignored in masks] == [(0, sigint)] * 2
        base = os.getpriority(os.PRIO_PROCESS, 0)
        assert sorted(os.getpriority(os.PRIO_PROCESS, pid) for pid in pids) == [base, min(base + 19, 19)]
    assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, [])
