"""Step 3: shot boundaries with TransNetV2.

The pure parts (predictions -> scenes, formats, decoding; windowing in test_scenes_windows.py) are
unit-tested here in the driver venv (numpy only). The model runs for real through the workflow on clips from
tools/media_factory.py with known cuts (real photos, moving camera), a cross-dissolve, no cut,
fewer than 100 frames, a single frame and no audio track.
"""

import json
import platform
import subprocess
import sys

import numpy as np
import pytest
from media_clips import make_video
from media_shots import Shot
from media_speech import make_silence

from build_env import build
from conftest import ROOT, VENV_DIR, ffprobe_json, require_binaries, run_snakemake, schema_defaults
from steps.scenes import pipeline as sc
from vidflow.errors import UserError
from vidflow.job import job_command

SEED_CSV = ROOT.parent / "shared" / "reference" / "seed-v4-archive" / "example_scenes.csv"


# --------------------------------------------------------------------------- predictions -> scenes


def probs_with(n, spikes):
    probs = np.full(n, 0.01, np.float32)
    for frame, p in spikes.items():
        probs[frame] = p
    return probs


def test_single_frame_spikes_cut_after_the_spike():
    scenes, runs = sc.scenes_from_predictions(probs_with(150, {39: 0.98, 74: 0.7, 119: 0.51}))
    assert scenes == [(0, 39), (40, 74), (75, 119), (120, 149)]
    assert [r["peak_frame"] for r in runs] == [39, 74, 119]


def test_a_run_above_threshold_is_one_transition_not_a_chain_of_scenes():
    probs = probs_with(120, {54: 0.6, 55: 0.7, 56: 0.9, 57: 0.95, 58: 0.8, 59: 0.7, 60: 0.55})
    scenes, runs = sc.scenes_from_predictions(probs)
    assert scenes == [(0, 57), (58, 119)]
    assert runs == [{"start_frame": 54, "end_frame": 60, "peak_frame": 57, "probability": 0.95}]


def test_threshold_is_strict_and_configurable():
    probs = probs_with(100, {30: 0.5, 60: 0.8})
    assert sc.scenes_from_predictions(probs)[0] == [(0, 60), (61, 99)]
    assert sc.scenes_from_predictions(probs, threshold=0.4)[0] == [(0, 30), (31, 60), (61, 99)]
    assert sc.scenes_from_predictions(probs, threshold=0.9)[0] == [(0, 99)]


def test_no_cut_one_frame_and_edge_runs():
    assert sc.scenes_from_predictions(probs_with(80, {})) == ([(0, 79)], [])
    assert sc.scenes_from_predictions(np.array([0.9]))[0] == [(0, 0)]
    assert sc.scenes_from_predictions(np.full(40, 0.9))[0] == [(0, 39)]  # all "transition": one scene
    assert sc.scenes_from_predictions(probs_with(50, {49: 0.9}))[0] == [(0, 49)]  # peak on the last frame
    assert sc.scenes_from_predictions(probs_with(50, {0: 0.9}))[0] == [(0, 0), (1, 49)]  # 1-frame first shot


def test_min_scene_frames_merges_short_scenes():
    probs = probs_with(100, {9: 0.9, 12: 0.9, 59: 0.9, 95: 0.9})
    assert sc.scenes_from_predictions(probs)[0] == [(0, 9), (10, 12), (13, 59), (60, 95), (96, 99)]
    assert sc.scenes_from_predictions(probs, min_scene_frames=5)[0] == [(0, 9), (10, 59), (60, 99)]
    assert sc.scenes_from_predictions(probs, min_scene_frames=200)[0] == [(0, 99)]


# --------------------------------------------------------------------------- formats


def test_csv_has_the_seed_header_and_number_formatting():
    text = sc.scenes_csv([(0, 60), (61, 119), (120, 90010)])
    assert text == ("No,Timecode In,Timecode Out,Frame In,Frame Out\r\n"
                    "1,00:00:00.000,00:00:02.400,1,61\r\n"
                    "2,00:00:02.440,00:00:04.760,62,120\r\n"
                    "3,00:00:04.800,01:00:00.400,121,90011\r\n")


def test_csv_regenerates_the_seed_file_byte_for_byte():
    if not SEED_CSV.exists():
        pytest.skip(f"no seed reference at {SEED_CSV}")
    seed = SEED_CSV.read_bytes()
    rows = [line.split(",") for line in seed.decode().splitlines()[1:]]
    scenes = [(int(r[3]) - 1, int(r[4]) - 1) for r in rows]
    assert sc.scenes_csv(scenes).encode() == seed


def test_json_document_uses_0_based_frames_and_millisecond_times():
    model = {"name": "TransNetV2", "version": "1.0.5", "threshold": 0.5}
    doc = sc.scenes_document([(0, 39), (40, 149)], [], 150, model)
    assert doc["scenes"] == [{"start_frame": 0, "end_frame": 39, "start_time": 0.0, "end_time": 1.56},
                             {"start_frame": 40, "end_frame": 149, "start_time": 1.6, "end_time": 5.96}]
    assert (doc["fps"], doc["frame_count"], doc["model"]) == (25, 150, model)
    probs = sc.probabilities_document(np.array([0.00049, 0.12345, 0.99999], np.float32), 0.5)
    assert probs == {"fps": 25, "frame_count": 3, "threshold": 0.5, "probabilities": [0.0, 0.123, 1.0]}


# --------------------------------------------------------------------------- decoding


def test_decoding_streams_small_frames_without_audio(tmp_path):
    require_binaries("ffmpeg")
    make_video(tmp_path / "v.mp4", [Shot("coffee", 30), Shot("rocket", 23)], size=(320, 180))
    assert [s["codec_type"] for s in ffprobe_json(tmp_path / "v.mp4")["streams"]] == ["video"]  # no audio
    chunks = list(sc.decode_small_frames(tmp_path / "v.mp4", chunk_frames=20))
    assert [len(c) for c in chunks] == [20, 20, 13]
    assert all(c.shape[1:] == (27, 48, 3) and c.dtype == np.uint8 for c in chunks)
    frames = np.concatenate(chunks).astype(float)
    assert np.abs(frames[29] - frames[30]).mean() > 5 * np.abs(frames[28] - frames[29]).mean()  # the cut


def test_undecodable_file_is_a_one_line_user_error(tmp_path):
    require_binaries("ffmpeg")
    fake = tmp_path / "fake.mp4"
    fake.write_text("not a video\n")
    with pytest.raises(UserError) as err:
        list(sc.decode_small_frames(fake))
    assert str(err.value).startswith(str(fake)) and "\n" not in str(err.value)


# --------------------------------------------------------------------------- the real model


CLIPS = {
    # hard cuts at 40, 75, 120 between different photos, every shot with a moving camera; a silent audio track
    "cuts": dict(shots=[Shot("astronaut", 40, zoom=(1.0, 1.3)),
                        Shot("coffee", 35, zoom=(1.2, 1.2), pan=(0.3, 0.5, 0.7, 0.5)),
                        Shot("rocket", 45, zoom=(1.3, 1.0)),
                        Shot("chelsea", 30, zoom=(1.1, 1.4), pan=(0.4, 0.4, 0.6, 0.6))], audio=True),
    "dissolve": dict(shots=[Shot("astronaut", 60, zoom=(1.0, 1.3)),
                            Shot("coffee", 60, zoom=(1.2, 1.2), pan=(0.3, 0.5, 0.7, 0.5))],
                     transition="dissolve:12"),
    "nocut": dict(shots=[Shot("astronaut_pair", 100, zoom=(1.0, 1.5), pan=(0.3, 0.5, 0.7, 0.4))]),
    "short": dict(shots=[Shot("rocket", 30, zoom=(1.0, 1.2)), Shot("camera", 30, zoom=(1.2, 1.0))]),
    "single": dict(shots=[Shot("coffee", 1)]),
}


@pytest.fixture(scope="module")
def workflow(tmp_path_factory):
    """Every clip through the real workflow (extract -> convert -> scenes) in one Snakemake run."""
    require_binaries("ffmpeg", "ffprobe")
    work = tmp_path_factory.mktemp("scenes")
    inputs = work / "input"
    inputs.mkdir()
    truths = {}
    for name, spec in CLIPS.items():
        audio = None
        if spec.get("audio"):
            audio = work / f"{name}.wav"
            make_silence(audio, sum(s.frames for s in spec["shots"]) / 25)
        truths[name] = make_video(inputs / f"{name}.mp4", spec["shots"], fps=25, size=(320, 180), audio=audio,
                                  transition=spec.get("transition"))
    targets = [f"results/_loose/{name}/scenes.json" for name in CLIPS]
    run_snakemake(work, "-p", *targets, config={"input_dir": str(inputs)}, timeout=600)
    return work, truths


def result(workflow, name):
    work, truths = workflow
    folder = work / "results" / "_loose" / name
    return json.loads((folder / "scenes.json").read_text()), truths[name], folder


def starts(doc):
    return [s["start_frame"] for s in doc["scenes"][1:]]


def assert_tiles(doc, frame_count):
    scenes = doc["scenes"]
    assert doc["frame_count"] == frame_count and scenes[0]["start_frame"] == 0
    assert scenes[-1]["end_frame"] == frame_count - 1
    assert all(b["start_frame"] == a["end_frame"] + 1 for a, b in zip(scenes, scenes[1:]))
    assert all(s["start_time"] == round(s["start_frame"] / 25, 3) and s["end_time"] == round(s["end_frame"] / 25, 3)
               for s in scenes)


def test_hard_cuts_between_moving_shots_are_found_within_one_frame(workflow):
    doc, truth, folder = result(workflow, "cuts")
    assert_tiles(doc, truth["frame_count"])
    found = starts(doc)
    assert len(found) == len(truth["cuts"]) == 3, found  # no false cut inside the moving shots
    assert all(abs(f - c) <= 1 for f, c in zip(found, truth["cuts"])), (found, truth["cuts"])
    model = doc["model"]
    assert (model["name"], model["version"], model["threshold"], model["device"]) == ("TransNetV2", "1.0.5", 0.5, "cpu")
    assert len(model["weights_sha256"]) == 64
    assert (model["runtime"], model["runtime_version"][:9]) == ("openvino", "2026.4.1-")  # auto on CPU: OpenVINO
    assert model["precision"] in ("f32", "bf16")  # auto: bf16 where the CPU has BF16 instructions
    probs = json.loads((folder / "scenes_probs.json").read_text())
    assert probs["frame_count"] == len(probs["probabilities"]) == truth["frame_count"]
    assert all(probs["probabilities"][c - 1] > 0.5 or probs["probabilities"][c] > 0.5 for c in truth["cuts"])
    log = (workflow[0] / "logs" / "scenes" / "_loose" / "cuts.log").read_text()
    assert "device: cpu" in log and "done: 150 frames" in log, log
    assert f"on openvino {model['runtime_version']}, {model['precision']} precision" in log, log
    schema = ROOT / "schemas" / "scenes.schema.json"
    if schema.exists():
        import jsonschema

        jsonschema.validate(doc, json.loads(schema.read_text()))


def test_csv_matches_the_json_scenes(workflow):
    doc, _, folder = result(workflow, "cuts")
    lines = (folder / "scenes.csv").read_bytes().decode().split("\r\n")
    assert lines[0] == "No,Timecode In,Timecode Out,Frame In,Frame Out" and lines[-1] == ""
    rows = [line.split(",") for line in lines[1:-1]]
    assert [(int(r[3]) - 1, int(r[4]) - 1) for r in rows] == [(s["start_frame"], s["end_frame"]) for s in doc["scenes"]]
    assert [r[0] for r in rows] == [str(i) for i in range(1, len(rows) + 1)]


def test_cross_dissolve_is_one_boundary(workflow):
    doc, truth, _ = result(workflow, "dissolve")
    assert_tiles(doc, truth["frame_count"])
    (first, last), = truth["transitions"]
    assert len(doc["scenes"]) == 2, doc["transitions"]
    assert first <= starts(doc)[0] <= last + 1


@pytest.mark.parametrize("name", ["nocut", "short", "single"])
def test_edge_cases(workflow, name):
    doc, truth, folder = result(workflow, name)
    assert [s["codec_type"] for s in ffprobe_json(folder / "video.mp4")["streams"]] == ["video"]  # no audio track
    assert_tiles(doc, truth["frame_count"])
    assert len(starts(doc)) == len(truth["cuts"])
    assert all(abs(f - c) <= 1 for f, c in zip(starts(doc), truth["cuts"]))


def test_same_input_gives_identical_files_and_model_state_does_not_leak(workflow, tmp_path):
    """Rerun the step in-process on one clip: byte-identical outputs, global torch/numpy/random state untouched."""
    work, _ = workflow
    python = build(ROOT / "envs" / "scenes.yaml", VENV_DIR / "scenes")
    folder = work / "results" / "_loose" / "short"
    check = """
import json, random, sys
import numpy as np, torch
sys.path.insert(0, sys.argv[1])
from steps.scenes.pipeline import ScenesSettings, detect_scenes
from vidflow.job import settings_from
def state():
    return (torch.are_deterministic_algorithms_enabled(), torch.get_rng_state(), np.random.get_state()[1].copy(),
            random.getstate(), torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic)
torch.manual_seed(7); np.random.seed(7); random.seed(7)
before = state()
detect_scenes(sys.argv[2], *sys.argv[3:6], settings_from(ScenesSettings, json.loads(sys.argv[6])), threads=2)
after = state()
assert before[0] is after[0] is False and torch.equal(before[1], after[1]) and (before[2] == after[2]).all()
assert before[3:] == after[3:]
print("ok")
"""
    out = [tmp_path / f"scenes{suffix}" for suffix in (".json", ".csv", "_probs.json")]
    proc = subprocess.run([str(python), "-c", check, str(ROOT / "scripts"), str(folder / "video.mp4"), *map(str, out),
                           json.dumps(schema_defaults("scenes"))], capture_output=True, text=True)
    assert proc.stdout.strip() == "ok", proc.stderr
    for path in out:
        assert path.read_bytes() == (folder / path.name).read_bytes(), path.name


FRAGMENTED_HEAP = """
import ctypes, sys
sys.path.insert(0, sys.argv[1])
from steps.scenes.pipeline import release_free_memory
def rss_mib():
    return int(next(line for line in open("/proc/self/status") if line.startswith("VmRSS")).split()[1]) >> 10
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_size_t], [ctypes.c_void_p]
def block(size):
    address = libc.malloc(size)
    ctypes.memset(address, 1, size)
    return address
libc.free(block(16 << 20))  # freeing an mmap'ed block raises glibc's dynamic threshold to 16 MiB
before = rss_mib()
blocks = [block(4 << 20) for _ in range(25)]  # 100 MiB, like the model's per-window tensors
for address in blocks[:-1]:  # the last block pins the top of the heap: free() gives nothing back
    libc.free(address)
if sys.argv[2] == "released":
    assert release_free_memory()
print(rss_mib() - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                    reason="glibc's malloc only")
def test_freed_model_tensors_go_back_to_the_system():
    """The mechanism behind memory growing with video length, and its fix (see release_free_memory)."""
    kept = {mode: int(subprocess.run([sys.executable, "-c", FRAGMENTED_HEAP, str(ROOT / "scripts"), mode],
                                     capture_output=True, text=True, check=True).stdout)
            for mode in ("kept", "released")}
    assert kept["kept"] >= 90 and kept["released"] <= 8, kept


def test_ctrl_c_while_loading_the_model_stays_a_ctrl_c():
    """A Ctrl-C that cuts an import short breaks the import torch does while restoring its state; that error
    must not replace the KeyboardInterrupt (it did: "unexpected AttributeError" and a traceback)."""
    python = VENV_DIR / "scenes" / "bin" / "python"
    if not python.exists():
        pytest.skip("scenes venv not built")
    check = """
import sys
sys.path.insert(0, sys.argv[1])
import torch
from steps.scenes.model import preserved_global_state
def broken(*args, **kwargs):  # as after a Ctrl-C during the import of sympy
    raise AttributeError("module 'sympy' has no attribute 'printing'")
torch.use_deterministic_algorithms = broken
try:
    with preserved_global_state("cpu"):
        raise KeyboardInterrupt
except KeyboardInterrupt:
    print("interrupted")
try:
    with preserved_global_state("cpu"):
        pass
except AttributeError:
    print("restore errors are raised when nothing else is")
"""
    proc = subprocess.run([str(python), "-c", check, str(ROOT / "scripts")], capture_output=True, text=True)
    assert proc.stdout.splitlines() == ["interrupted", "restore errors are raised when nothing else is"], proc.stderr


def test_bad_video_fails_with_one_line(tmp_path):
    python = VENV_DIR / "scenes" / "bin" / "python"
    if not python.exists():
        pytest.skip("scenes venv not built")
    fake = tmp_path / "fake.mp4"
    fake.write_text("not a video\n")
    cmd = job_command(python, "scenes", {"video": fake},
                      {"json": tmp_path / "s.json", "csv": tmp_path / "s.csv", "probs": tmp_path / "p.json"},
                      schema_defaults("scenes"), log=tmp_path / "log")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and str(fake) in proc.stderr, proc.stderr
    assert not (tmp_path / "s.json").exists()


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
