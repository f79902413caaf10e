"""Shared pieces of the benchmarks: media, the decode floor, peak memory, the real workflow, tables.

Runs in the driver venv (.venvs/workflow). Standard library at import time; media generation imports
tools/media_factory (numpy, scikit-image) when a clip is first made. The pure functions (``rates``,
``format_table``, ``parse_proc_status``, ``parse_time_verbose``, ``parse_benchmark_tsv``, ``resolve_model_options``,
``overlap_summary``, ``scaling_summary``) are unit-tested in tests/test_benchmarks.py.

Media: a 10 s *unit* per frame size is rendered once with tools/media_factory (real astronaut faces, one
and two faces, a hard cut, two espeak-ng voices taking turns), at 30 fps so the convert step really
re-encodes to 25 fps. Longer clips (60 s, 600 s) are the unit repeated by FFmpeg's concat demuxer without
re-encoding: every length has the same content per second (a cut every 5 s, the same talk), so a per
video-second cost that grows with length is the code's doing, not the media's. Everything is cached under
``--work`` (default results/benchmarks/work) by its parameters.
"""

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for _folder in ("scripts", "tools", "benchmarks"):
    if str(ROOT / _folder) not in sys.path:
        sys.path.insert(0, str(ROOT / _folder))

RESULTS = ROOT / "results" / "benchmarks"
WORK = RESULTS / "work"
VENV_DIR = ROOT / ".venvs"
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
# the same, with job benchmarks sampled all along (Snakemake alone stops sampling often after ~15 s of a job)
SAMPLED_SNAKEMAKE = [sys.executable, str(Path(__file__).with_name("snakemake_sampled.py"))]
MODELS = Path(os.environ.get("VIDFLOW_TEST_MODELS", ROOT.parent / "shared" / "models"))

# the media (benchmarks/bench_media.py), called by the benchmarks as common.clip, common.unit_clip, ...
from bench_media import (  # noqa: E402, F401
    SOURCE_FPS,
    UNIT_SECONDS,
    clip,
    clip_25fps,
    media_dir,
    parse_size,
    tiny_clips,
    unit_clip,
    variant,
)


def video_info(path):
    """(duration seconds, frames at 25 fps after conversion, width, height) of ``path``."""
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "stream=width,height:format=duration", "-of", "json", str(path)],
                         capture_output=True, text=True, check=True)
    info = json.loads(out.stdout)
    duration = float(info["format"]["duration"])
    stream = info["streams"][0]
    return duration, round(duration * 25), stream["width"], stream["height"]


# --------------------------------------------------------------------------- measuring


def decode_floor(path, threads=2, repeats=2):
    """Seconds of ``ffmpeg -threads N -i path -f null -`` (the best of ``repeats``): the floor every
    frame-reading step pays at least once."""
    best = None
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-threads", str(threads), "-i", str(path),
                        "-f", "null", "-"], check=True)
        took = time.perf_counter() - start
        best = took if best is None else min(best, took)
    return best


def parse_proc_status(text):
    """(parent pid, resident bytes) from the text of /proc/<pid>/status (VmRSS is absent for zombies)."""
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    rss = fields.get("VmRSS", "0 kB").split()
    return int(fields["PPid"].strip()), int(rss[0]) * 1024


def tree_rss(pid):
    """Resident bytes of ``pid`` and all its descendants right now (Linux /proc)."""
    children, rss = {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid, resident = parse_proc_status((entry / "status").read_text())
        except (OSError, KeyError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
        rss[int(entry.name)] = resident
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo += children.get(p, [])
    return total


def parse_time_verbose(text):
    """Peak resident MiB from the output of GNU ``/usr/bin/time -v`` (its "Maximum resident set size")."""
    for line in text.splitlines():
        if "Maximum resident set size" in line:
            return int(line.rsplit(":", 1)[1]) / 1024
    raise ValueError("no 'Maximum resident set size' line in the /usr/bin/time -v output")


def run_measured(cmd, cwd=None, poll=0.1, env=None):
    """Run ``cmd``; return {"wall_s", "peak_rss_mib", "returncode", "output"}.

    Peak RSS is the larger of (a) the largest *sum* over the process and its descendants, sampled every
    ``poll`` s (worker pools count in full), and (b) the kernel's own maximum for the largest single
    process in the tree (``wait4`` rusage: catches short spikes between samples).
    """
    with tempfile.TemporaryFile() as output:
        start = time.perf_counter()
        proc = subprocess.Popen([str(c) for c in cmd], cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT)
        peak, done = 0, threading.Event()

        def sample():
            nonlocal peak
            while not done.wait(poll):
                peak = max(peak, tree_rss(proc.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        done.set()
        sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        output.seek(0)
        text = output.read().decode(errors="replace")
    return {"wall_s": wall, "peak_rss_mib": max(peak / 2**20, usage.ru_maxrss / 1024),
            "returncode": proc.returncode, "output": text}


def rates(video_seconds, frames, wall_s, floor_s=None):
    """Throughput of one run: video-seconds per wall-second, frames per second, and the ratio to the floor
    (``wall / floor``: 1 = as fast as decoding alone, 5 = five times the decode time)."""
    row = {"video_s_per_s": round(video_seconds / wall_s, 2), "fps": round(frames / wall_s, 1)}
    if floor_s:
        row["floor_fps"] = round(frames / floor_s, 1)
        row["x_floor"] = round(wall_s / floor_s, 2)
    return row


# --------------------------------------------------------------------------- the real workflow


def parse_benchmark_tsv(text):
    """Snakemake's per-job benchmark TSV -> one dict per repeat (numbers as floats, 'NA'/'-' as None)."""
    lines = [line for line in text.splitlines() if line.strip()]
    header = lines[0].split("\t")
    rows = []
    for line in lines[1:]:
        row = {}
        for key, value in zip(header, line.split("\t")):
            try:
                row[key] = float(value)
            except ValueError:
                row[key] = None if value in ("NA", "-", "") else value
        rows.append(row)
    return rows


def collect_benchmarks(workdir):
    """Every job's benchmark under ``workdir``/results/benchmarks: [{"rule", "wildcards", "s", "max_rss", ...}]."""
    base = Path(workdir) / "results" / "benchmarks"
    jobs = []
    for tsv in sorted(base.rglob("*.tsv")):
        rel = tsv.relative_to(base).with_suffix("")
        for row in parse_benchmark_tsv(tsv.read_text()):
            jobs.append({"rule": rel.parts[0], "wildcards": "/".join(rel.parts[1:]), **row})
    return jobs


def read_config(path=ROOT / "config" / "config.yaml"):
    """The project's config (the defaults every benchmark runs with)."""
    import yaml  # noqa: PLC0415 - the driver venv has it (Snakemake needs it)

    return yaml.safe_load(Path(path).read_text())


def workflow_command(workdir, input_dir, *args, cores=2, configfiles=(), serial=False, targets=()):
    """The real ``snakemake`` command on ``input_dir`` in ``workdir`` (the project's config and venvs).

    ``serial`` runs one job at a time while every job keeps its configured threads (a resource every job
    takes one of, out of one), so per-rule times are not disturbed by each other.
    """
    cmd = [*SAMPLED_SNAKEMAKE, *map(str, targets), "-s", str(ROOT / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(ROOT / "config" / "config.yaml"), *map(str, configfiles), "--cores", str(cores)]
    if serial:
        cmd += ["--resources", "bench_slot=1", "--default-resources", "mem_mb=2048", "runtime=60", "gpu=0",
                "bench_slot=1"]
    cmd += [*map(str, args), "--config", f"venv_dir={VENV_DIR}", f"input_dir={input_dir}"]
    return cmd


def link_input(folder, sources):
    """A fresh input folder holding ``sources`` {name: path} (hard links, copies across file systems)."""
    folder = Path(folder)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for name, src in sources.items():
        try:
            os.link(src, folder / name)
        except OSError:
            shutil.copy2(src, folder / name)
    return folder


def run_workflow(workdir, input_dir, *args, check=True, **kwargs):
    """Run the workflow (see :func:`workflow_command`); returns run_measured's dict."""
    Path(workdir).mkdir(parents=True, exist_ok=True)
    result = run_measured(workflow_command(workdir, input_dir, *args, **kwargs))
    if check and result["returncode"] != 0:
        raise RuntimeError(f"snakemake failed ({result['returncode']}) in {workdir}:\n{result['output'][-6000:]}")
    return result


def overlap_summary(wall_s, job_seconds, cores):
    """How well the scheduler overlapped jobs: the sum of job times over the wall time (1 = no overlap,
    ``cores`` = every core busy all the time) and that as a share of ``cores``."""
    total = sum(job_seconds)
    return {"wall_s": round(wall_s, 1), "sum_job_s": round(total, 1), "overlap": round(total / wall_s, 2),
            "core_utilisation": round(total / wall_s / cores, 2)}


def largest_step(values):
    """The largest ratio between a value and the one before it (lengths in increasing order): at most ~1
    means the quantity never grew from one length to the next; None with fewer than two or a zero."""
    steps = [b / a for a, b in zip(values, values[1:]) if a]
    return round(max(steps), 2) if steps and len(steps) == len(values) - 1 else None


def scaling_summary(points):
    """Cost per video-second across lengths. ``points``: [{"seconds", "wall_s", "peak_rss_mib"[, "cpu_s"]}]
    sorted by length. Adds ``s_per_video_s`` (and ``cpu_s_per_video_s``) to each point, and the largest
    step up of each from one length to the next: ``cost_growth``, ``cpu_growth``, ``rss_growth``
    (<= ~1.0: flat or falling, as fixed start-up costs are shared by more seconds; above: a superlinear
    step, or memory that grows with length). CPU seconds are less sensitive to other load than wall time."""
    out = [{**p, "s_per_video_s": round(p["wall_s"] / p["seconds"], 3)} for p in points]
    for point in out:
        if point.get("cpu_s") is not None:
            point["cpu_s_per_video_s"] = round(point["cpu_s"] / point["seconds"], 3)
    summary = {"points": out, "cost_growth": largest_step([p["s_per_video_s"] for p in out]),
               "rss_growth": largest_step([p["peak_rss_mib"] for p in out])}
    if all(p.get("cpu_s_per_video_s") is not None for p in out):
        summary["cpu_growth"] = largest_step([p["cpu_s_per_video_s"] for p in out])
    return summary


# --------------------------------------------------------------------------- tracking engines


def resolve_model_options(section, models_dir=MODELS, sha256_of=None):
    """An engine's config section with its ``models/...`` paths pointed at ``models_dir``.

    A value ``models/<rest>`` becomes ``models_dir/<rest>`` if that exists, else the file under
    ``models_dir`` with the same name (config and shared folder may differ by a folder) or, when the
    section gives ``<key>_sha256``, the file with that checksum. Returns (options, missing paths).
    """
    options, missing = dict(section), []
    files = [p for p in Path(models_dir).rglob("*") if p.is_file()] if Path(models_dir).is_dir() else []
    for key, value in section.items():
        if not isinstance(value, str) or not value or key.endswith("sha256"):
            continue
        if value.startswith("models/"):
            candidate = Path(models_dir) / value[len("models/"):]
            if not candidate.exists():
                digest = section.get(f"{key}_sha256") or (section.get("sha256") if key == "model" else "")
                found = [p for p in files if p.name == candidate.name] or [
                    p for p in files if digest and sha256_of and sha256_of(p) == digest]
                candidate = (found or [candidate])[0]
            options[key] = str(candidate)
        elif not value.startswith("/"):
            continue  # not a path
        if not Path(options[key]).exists():
            missing.append(options[key])
    return options, missing


def tracking_engines(config_path=ROOT / "config" / "config.yaml", models_dir=MODELS):
    """Every engine in ENGINES: {"name", "family", "env", "options", "missing" (reasons to skip)}.

    Options are the engine's section of the project config with model paths under ``models_dir``
    ($VIDFLOW_TEST_MODELS); the venv is .venvs/tracking_<family> (built by tools/build_env.py).
    """
    from steps.tracking.engines import ENGINES  # noqa: PLC0415
    from vidflow.io import sha256_file  # noqa: PLC0415

    tracking = read_config(config_path)["tracking"]
    engines = []
    for name, spec in ENGINES.items():
        options, missing = resolve_model_options(tracking.get(name, {}), models_dir, sha256_file)
        env = f"tracking_{spec.family}"
        for needed in (ROOT / "envs" / f"{env}.yaml", ROOT / "scripts" / "steps" / "tracking" / "engines" /
                       f"{spec.module}.py"):
            if not needed.exists():
                missing.append(str(needed.relative_to(ROOT)))
        engines.append({"name": name, "family": spec.family, "env": env, "options": options, "missing": missing})
    return engines


def engine_config(engine):
    """A config overlay (JSON is YAML) that makes the workflow run ``engine`` with its resolved models."""
    tracking = {"engine": engine["name"], engine["name"]: engine["options"]}
    return {"tracking": tracking}


def build_venv(env):
    """Build (or reuse) .venvs/<env> from envs/<env>.yaml; returns its python."""
    from build_env import build  # noqa: PLC0415

    return build(ROOT / "envs" / f"{env}.yaml", VENV_DIR / env)


# --------------------------------------------------------------------------- output


def _cell(value):
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}" if abs(value) < 1e6 else f"{value:.0f}"
    return str(value)


def format_table(rows, columns, title=None):
    """A Markdown table of ``rows`` (dicts) with ``columns`` [(key, header)]; missing values print as '-'."""
    cells = [[header for _, header in columns]] + [[_cell(row.get(key)) for key, _ in columns] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    numeric = [all(_is_number(r[i]) for r in cells[1:]) and len(cells) > 1 for i in range(len(columns))]

    def line(values):
        return "| " + " | ".join(v.rjust(w) if n else v.ljust(w) for v, w, n in zip(values, widths, numeric)) + " |"

    rule = "|" + "|".join(("-" * (w + 1) + ":") if n else ("-" * (w + 2)) for w, n in zip(widths, numeric)) + "|"
    text = [line(cells[0]), rule, *(line(r) for r in cells[1:])]
    return "\n".join(([f"**{title}**", ""] if title else []) + text)


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return text == "-"
    return True


def machine():
    """What the numbers were measured on (load average included: other work slows every row)."""
    return {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "loadavg": [round(v, 2) for v in os.getloadavg()]}


def write_result(name, payload, results=RESULTS):
    """Write results/benchmarks/<name>.json (with the machine description) and return its path."""
    results = Path(results)
    results.mkdir(parents=True, exist_ok=True)
    path = results / f"{name}.json"
    document = {"benchmark": name, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "machine": machine(), **payload}
    tmp = path.with_suffix(".json.partial")
    tmp.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return path
