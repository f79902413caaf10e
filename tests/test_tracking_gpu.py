"""Step 5 given a GPU: the device choice (pure functions), the rule's ``gpu`` resource and env variant, and the
CPU fallback of each engine with a GPU path when no GPU can be used (this machine: no CUDA, no EGL display).

The fallback runs give the very bytes of the runs without a GPU (the device used, "cpu", is in the output),
with the reason in the log. The GPU paths themselves are checked by benchmarks/gpu_check.py on a GPU machine.
"""

import json
import subprocess
from pathlib import Path

import pytest
from test_tracking import TASK, TASK_SHA256, clip, track, tracking_command, tracking_settings  # noqa: F401
from test_tracking_openseeface import options as openseeface_options
from test_tracking_yunet import model_options as yunet_options

from build_env import build
from conftest import ROOT, VENV_DIR, require_binaries, run_snakemake
from steps.tracking.engines import ENGINES, tracking_env, tracking_gpus
from vidflow.devices import ONNX_CPU, ONNX_CUDA, choose_device, onnx_cuda_status, onnx_device, onnx_providers


def test_onnx_cuda_provider_only_when_onnxruntime_has_it_and_no_gpu_is_hidden(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    visible, why = onnx_cuda_status([ONNX_CPU], "1.32.0")
    assert not visible and "onnxruntime 1.32.0 has no CUDAExecutionProvider" in why and "onnxruntime-gpu" in why
    assert onnx_cuda_status(["TensorrtExecutionProvider", ONNX_CUDA, ONNX_CPU], "1.31.1")[0]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert onnx_cuda_status([ONNX_CUDA, ONNX_CPU], "1.31.1") == (False, "CUDA_VISIBLE_DEVICES hides all GPUs")


def test_onnx_providers_and_the_device_a_session_got():
    assert onnx_providers("cuda") == [ONNX_CUDA, ONNX_CPU] and onnx_providers("cpu") == [ONNX_CPU]
    assert onnx_device([ONNX_CUDA, ONNX_CPU]) == "cuda"
    assert onnx_device([ONNX_CPU]) == onnx_device([]) == "cpu"  # onnxruntime fell back quietly


@pytest.mark.parametrize("gpus, available, expected", [
    (0, [ONNX_CUDA, ONNX_CPU], ("cpu", "the rule was given no GPU (tracking.gpu is 0)")),
    (1, [ONNX_CPU], ("cpu", "no GPU visible (onnxruntime 1.32.0 has no CUDAExecutionProvider")),
    (1, [ONNX_CUDA, ONNX_CPU], ("cuda", "GPU visible (onnxruntime 1.32.0 has CUDAExecutionProvider)")),
])
def test_provider_choice(monkeypatch, gpus, available, expected):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    device, why = choose_device(gpus, "tracking.gpu", lambda: onnx_cuda_status(available, "1.32.0"))
    assert device == expected[0] and why.startswith(expected[1])


def test_engines_with_a_gpu_path_ask_for_one_and_the_onnx_ones_run_in_their_gpu_env_variant():
    assert {name for name, spec in ENGINES.items() if spec.gpu} == {"yunet", "openseeface", "mediapipe_tasks"}
    for name in ENGINES:
        family = ENGINES[name].family
        assert tracking_gpus(name, 0) == 0 and tracking_env(name, 0) == f"tracking_{family}"  # CPU users
    assert [tracking_gpus(name, 2) for name in ("yunet", "openseeface", "mediapipe_tasks")] == [2, 2, 2]
    assert tracking_gpus("mediapipe", 1) == tracking_gpus("eos", 1) == 0  # no GPU path: no GPU held for nothing
    assert tracking_env("yunet", 1) == "tracking_yunet_gpu"
    assert tracking_env("openseeface", 1) == "tracking_openseeface_gpu"
    assert tracking_env("mediapipe_tasks", 1) == "tracking_mediapipe"  # the GPU delegate is in the same wheel
    assert tracking_env("eos", 1) == "tracking_eos"
    for name in ENGINES:
        assert (ROOT / "envs" / f"{tracking_env(name, 1)}.yaml").is_file()


@pytest.mark.parametrize("engine, gpu, env, gpus", [("yunet", 1, "tracking_yunet_gpu", 1),
                                                    ("yunet", 0, "tracking_yunet", 0),
                                                    ("eos", 1, "tracking_eos", 0)])
def test_the_rule_declares_gpu_from_config_and_runs_the_env_it_picks(tmp_path, engine, gpu, env, gpus):
    """A dry run (-n -p) of the tracking job: its gpu resource, the --gpus it hands the step and the env's python."""
    require_binaries("ffmpeg")
    inputs = tmp_path / "input"
    inputs.mkdir()
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=64x36:rate=25:duration=0.2",
                    str(inputs / "clip.mp4")], check=True)
    config = tmp_path / "gpu.yaml"
    config.write_text(json.dumps({"tracking": {"engine": engine, "gpu": gpu}}))
    proc = run_snakemake(tmp_path, "-n", "-p", "--nolock", "results/_loose/clip/tracking.json",
                         config={"input_dir": str(inputs)}, configfiles=[config])
    job = proc.stdout[proc.stdout.index("rule tracking:"):]
    job = job[:job.index("\n\n")]
    assert f"--gpus {gpus} " in job and f"/.venvs/{env}/bin/python" in job, job
    assert ("gpu=1" in job) == (gpus == 1), job
    wanted = [line for line in proc.stdout.splitlines() if "/.venvs/tracking_" in line and "ready-" in line]
    assert wanted and all(f"/.venvs/{env}/ready-" in line for line in wanted), wanted  # only that env is built


def run(python, clip, name, gpus, **settings):  # noqa: F811
    """Run the step as the rule does, with ``--gpus gpus``: (tracking.json bytes, log text)."""
    folder, _ = clip
    out, log = folder / f"{name}.json", folder / f"{name}.log"
    cmd = tracking_command(python, folder, out, log, tracking_settings(chunk_frames=25, **settings), threads=2)
    cmd[cmd.index("--gpus") + 1] = str(gpus)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr + log.read_text()
    return out.read_bytes(), log.read_text()


ONNX_FALLBACK = "device: cpu (no GPU visible (onnxruntime 1.32.0 has no CUDAExecutionProvider"
CASES = {
    "openseeface": ("tracking_openseeface", openseeface_options, ONNX_FALLBACK),
    "yunet": ("tracking_yunet", lambda: {"engine": "yunet", "options": yunet_options()}, ONNX_FALLBACK),
    "mediapipe_tasks": ("tracking_mediapipe",
                        lambda: {"engine": "mediapipe_tasks", "options": {"model": str(TASK), "sha256": TASK_SHA256}},
                        "device: cpu (MediaPipe's GPU delegate did not start ("),
}


@pytest.mark.parametrize("engine", CASES)
def test_given_a_gpu_it_cannot_use_the_engine_falls_back_to_the_cpu_with_the_same_output(clip, engine):  # noqa: F811
    env, settings, reason = CASES[engine]
    chosen = settings()
    models = [v for k, v in chosen["options"].items() if k in ("detector", "landmarks", "model")]
    missing = [path for path in models if not Path(path).is_file()]
    if missing:
        pytest.skip(f"no model files {missing} (set VIDFLOW_TEST_MODELS to the shared models folder)")
    python = build(ROOT / "envs" / f"{env}.yaml", VENV_DIR / env)
    without, log0 = run(python, clip, f"{engine}_gpu0", 0, **chosen)
    given, log1 = run(python, clip, f"{engine}_gpu1", 1, **chosen)
    assert given == without  # byte for byte
    result = json.loads(given)
    assert result["device"] == "cpu" and result["engine"] == engine and result["track_count"] >= 3
    assert "device: cpu (the rule was given no GPU (tracking.gpu is 0))" in log0
    assert reason in log1 and "device cpu" in log1, log1


def test_gpu_check_tracking_part_compares_the_runs_given_a_gpu_and_not(clip, tmp_path):  # noqa: F811
    """benchmarks/gpu_check.py --parts tracking on this machine (no CUDA): both runs on the CPU, same faces."""
    import sys

    env, settings, _ = CASES["openseeface"]
    if not all(Path(v).is_file() for k, v in settings()["options"].items() if k in ("detector", "landmarks")):
        pytest.skip("no OpenSeeFace model files (set VIDFLOW_TEST_MODELS to the shared models folder)")
    build(ROOT / "envs" / f"{env}.yaml", VENV_DIR / env)
    folder, truth = clip
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--parts", "tracking",
                           "--video", str(folder / "video.mp4"), "--out", str(tmp_path / "check.json"),
                           "--tracking-engines", "openseeface", "--models",
                           str(Path(settings()["options"]["detector"]).parents[1])],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "check.json").read_text())["tracking"]["openseeface"]
    assert report["env"] == env and report["frames"] == truth["frame_count"]  # the GPU variant is not built here
    assert report["gpu"]["device"] == report["cpu"]["device"] == "cpu"
    assert report["gpu"]["why"].startswith("no GPU visible (onnxruntime") and report["cpu"]["step_fps"] > 0
    assert report["same_output"] and report["boxes"]["matched"] > 50 and report["boxes"]["unmatched"] == 0
    assert report["boxes"]["mean_iou"] == report["boxes"]["min_iou"] == 1.0
    assert report["boxes"]["max_landmark_diff_px"] == 0.0
