"""Shared fixtures: import paths, tiny real media, and a helper that runs the real workflow."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
for folder in ("scripts", "tools"):
    if str(ROOT / folder) not in sys.path:
        sys.path.insert(0, str(ROOT / folder))

VENV_DIR = ROOT / ".venvs"
SEED = ROOT.parent / "shared" / "reference" / "seed-v4-archive"  # the old system's real outputs
SNAKEMAKE = Path(sys.executable).with_name("snakemake")


def schema_defaults(section, **overrides):
    """The defaults of config section ``section`` as config/schema.yaml declares them (the only place they live),
    with ``overrides``: the settings a test hands a step's dataclass or job."""
    import yaml

    def defaults(node):
        if node.get("type") == "object" and "properties" in node:
            return {key: defaults(sub) for key, sub in node["properties"].items() if "default" in sub or
                    (sub.get("type") == "object" and "properties" in sub)}
        return node["default"]

    schema = yaml.safe_load((ROOT / "config" / "schema.yaml").read_text())
    return {**defaults(schema["properties"][section]), **overrides}


def load_benchmark(name, alias=None):
    """The module ``benchmarks/<name>.py`` (benchmarks is no package), imported under ``alias`` or its own name."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(alias or name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def require_binaries(*names):
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} on PATH (run `make setup`)")


def make_testsrc(path, seconds=1.0, fps=25, size="320x180", audio=True, extra=()):
    """A tiny synthetic clip from ffmpeg's test sources (for container/codec properties only)."""
    require_binaries("ffmpeg")
    cmd = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={fps}:duration={seconds}"]
    if audio:
        cmd += ["-f", "lavfi", "-i", f"sine=frequency=330:sample_rate=48000:duration={seconds}", "-c:a", "aac"]
    cmd += ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "ultrafast", *extra, str(path)]
    subprocess.run(cmd, check=True)
    return Path(path)


@pytest.fixture(scope="session")
def tiny_video(tmp_path_factory):
    """A 1 s, 25 fps, 320x180 H.264/AAC clip."""
    return make_testsrc(tmp_path_factory.mktemp("media") / "tiny.mp4")


def run_snakemake(workdir, *args, config=None, configfiles=(), check=True, timeout=1800):
    """Run the real workflow CLI in ``workdir`` with the project's config and shared venvs.

    ``config`` sets top-level keys (``--config``); ``configfiles`` are merged over the project's config.
    The run is stopped with SIGINT after ``timeout`` seconds (Snakemake cancels its jobs on SIGINT).
    """
    overrides = {"venv_dir": str(VENV_DIR), **(config or {})}
    cmd = ["timeout", "-s", "INT", str(timeout), str(SNAKEMAKE), "-s", str(ROOT / "Snakefile"),
           "--directory", str(workdir),
           "--configfile", str(ROOT / "config" / "config.yaml"), *map(str, configfiles), "--cores", "2", *args,
           "--config", *[f"{k}={v}" for k, v in overrides.items()]]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}")
    return proc


def read_tsv(path):
    """Rows of a TSV table as dicts (the run's tables: videos.tsv, downloads.tsv)."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [dict(zip(lines[0].split("\t"), line.split("\t"))) for line in lines[1:]]


def ffprobe_json(path):
    from vidflow.media import ffprobe

    return ffprobe(path)


# --- comparing our JSON with the old system's (tests/test_reduce.py, tests/test_finalize.py) ---

def shape(value):
    """Keys, types and nesting of a JSON value (lists: the union of their items' shapes)."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        merged = {}
        for item in value:
            merged = merge(merged, shape(item))
        return [merged]
    return type(value).__name__


def merge(a, b):
    if isinstance(a, dict) and isinstance(b, dict):
        return {k: merge(a.get(k, {}), b.get(k, {})) if k in a and k in b else a.get(k, b.get(k)) for k in a | b}
    if isinstance(a, list) and isinstance(b, list):
        return [merge(a[0], b[0])]
    return b if a == {} else a


def covers(ours, seed, path="$"):
    """Every key of the seed's shape exists in ours with the same type and nesting."""
    if isinstance(seed, dict):
        assert isinstance(ours, dict), path
        for key, sub in seed.items():
            assert key in ours, f"{path}.{key} missing"
            covers(ours[key], sub, f"{path}.{key}")
    elif isinstance(seed, list):
        assert isinstance(ours, list), path
        covers(ours[0], seed[0], path + "[]")
    elif seed != {}:
        assert ours == seed or {ours, seed} <= {"int", "float"}, f"{path}: {ours} vs seed {seed}"
