"""Clusters: the workflow through a real SLURM scheduler gives the same results as a local run.

Needs a running SLURM cluster (CI starts a single-node one with `tools/slurm_single_node.sh start`,
with a fake GPU GRES so GPU-declaring rules can be scheduled); skipped otherwise.
"""

import hashlib
import json
import re
import shutil
import subprocess

import pytest

from conftest import ROOT, run_snakemake

DEMO_DIR = ROOT / "resources" / "demo"


def slurm_ready():
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        return False
    states = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True, check=False).stdout
    return any(s in ("idle", "mixed", "allocated") for s in states.split())


pytestmark = [pytest.mark.slurm, pytest.mark.skipif(not slurm_ready(), reason="needs a running SLURM cluster "
                                                     "(CI: tools/slurm_single_node.sh start)")]


def result_checksums(workdir):
    """sha256 of every result file; timings (benchmarks and the run-level report built from them) excluded."""
    results = workdir / "results"
    return {str(p.relative_to(results)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(results.rglob("*")) if p.is_file() and "benchmarks" not in p.parts
            and p.relative_to(results).parts[0] != "report"
            and p.name != ".snakemake_timestamp"}


def slurm_jobs():
    """SLURM job id -> (state, TRES per job), from squeue (finished jobs stay for MinJobAge)."""
    out = subprocess.run(["squeue", "--states=all", "-h", "-O", "JobID:|,State:|,tres-per-job:"],
                         capture_output=True, text=True, check=True).stdout
    return {int(i): (state, tres.strip()) for i, state, tres in (line.split("|") for line in out.splitlines())}


def test_slurm_run_matches_local_run_and_schedules_gpus(tmp_path):
    gpu_config = tmp_path / "gpu.yaml"
    gpu_config.write_text(json.dumps({"convert": {"gpu": 1}}))  # the GPU-capable rule asks for one GPU
    config, files = {"input_dir": str(DEMO_DIR)}, [gpu_config]
    local, cluster = tmp_path / "local", tmp_path / "slurm"
    run_snakemake(local, config=config, configfiles=files)
    before = set(slurm_jobs())
    proc = run_snakemake(cluster, "--profile", str(ROOT / "profiles" / "slurm"), "--seconds-between-status-checks",
                         "5", "--slurm-keep-successful-logs", config=config, configfiles=files, timeout=900)
    # every non-local job went through SLURM: one log per job id under .snakemake/slurm_logs/rule_<rule>/
    logs = {int(p.stem): p.relative_to(cluster / ".snakemake" / "slurm_logs").parts[0].removeprefix("rule_")
            for p in (cluster / ".snakemake" / "slurm_logs").rglob("*.log")}
    submitted = re.findall(r"has been submitted with SLURM jobid (\d+)", proc.stdout + proc.stderr)
    assert sorted(int(j) for j in submitted) == sorted(logs)
    assert {"extract", "convert", "project_summary"} <= set(logs.values())
    jobs = slurm_jobs()
    assert set(logs) <= set(jobs) - before
    for job_id, rule in logs.items():
        state, tres = jobs[job_id]
        assert state == "COMPLETED", f"{rule} job {job_id}: {state}"
        # GPU-declaring rules were submitted with --gpus=1, the others without
        assert (tres == "gres:gpu:1") == (rule == "convert"), f"{rule} job {job_id}: TRES per job {tres}"
    assert result_checksums(cluster) == result_checksums(local)
