"""The benchmarks' arithmetic and parsing (benchmarks/common.py) on known values; the GPU check's CPU fallback."""

import json
import subprocess
import sys

import pytest

from conftest import ROOT, load_benchmark, make_testsrc


@pytest.fixture(scope="module")
def common():
    return load_benchmark("common", "bench_common")


def test_rates_against_the_decode_floor(common):
    # 60 s at 25 fps in 30 s wall, decoding alone took 3 s
    row = common.rates(60.0, 1500, 30.0, 3.0)
    assert row == {"video_s_per_s": 2.0, "fps": 50.0, "floor_fps": 500.0, "x_floor": 10.0}
    assert common.rates(10.0, 250, 20.0) == {"video_s_per_s": 0.5, "fps": 12.5}


def test_overlap_and_scaling_summaries(common):
    assert common.overlap_summary(100.0, [60.0, 50.0, 40.0], cores=2) == {
        "wall_s": 100.0, "sum_job_s": 150.0, "overlap": 1.5, "core_utilisation": 0.75}
    points = [{"seconds": 10, "wall_s": 20.0, "peak_rss_mib": 500.0},
              {"seconds": 60, "wall_s": 60.0, "peak_rss_mib": 510.0},
              {"seconds": 600, "wall_s": 540.0, "peak_rss_mib": 1000.0}]
    summary = common.scaling_summary(points)
    assert [p["s_per_video_s"] for p in summary["points"]] == [2.0, 1.0, 0.9]
    assert summary["cost_growth"] == 0.9  # start-up cost amortised: never more per second, no superlinear step
    assert summary["rss_growth"] == 1.96  # memory nearly doubled from 60 s to 600 s: flagged
    assert "cpu_growth" not in summary
    with_cpu = common.scaling_summary([{**p, "cpu_s": c} for p, c in zip(points, (15.0, 60.0, 1200.0))])
    assert [p["cpu_s_per_video_s"] for p in with_cpu["points"]] == [1.5, 1.0, 2.0]
    assert with_cpu["cpu_growth"] == 2.0  # a superlinear step in CPU shows even where wall time hides it
    assert common.largest_step([3.0]) is None and common.largest_step([0.0, 1.0]) is None


def test_the_whole_run_and_each_jobs_seconds_per_length():
    run_all = load_benchmark("run_all", "bench_run_all")
    points = [{"seconds": 60, "wall_s": 48.0, "cpu_s": 54.0}, {"seconds": 600, "wall_s": 293.0, "cpu_s": 438.0}]
    job = lambda seconds, wall, cpu: {"seconds": seconds, "wall_s": wall, "cpu_s": cpu}  # noqa: E731
    rules = {"convert": [job(60, 4.04, 4.8), job(600, 34.2, 53.1)],
             "tracking": [job(60, 7.8, 11.6), job(600, 58.2, None)]}
    rows = run_all.seconds_rows(points, rules)
    assert rows[0] == {"rule": "whole run (Snakemake included)", "wall@60": 48.0, "wall@600": 293.0, "cpu@60": 54.0,
                       "cpu@600": 438.0}
    assert [r["rule"] for r in rows[1:]] == ["tracking", "convert"]  # longest job at the longest length first
    assert rows[2] == {"rule": "convert", "wall@60": 4.0, "wall@600": 34.2, "cpu@60": 4.8, "cpu@600": 53.1}
    assert rows[1]["cpu@600"] == 0  # a job without a CPU reading


def test_markdown_table_aligns_numbers_right_and_marks_missing_values(common):
    rows = [{"rule": "convert", "fps": 123.456, "rss": 80}, {"rule": "detect_scenes", "fps": 9.5}]
    table = common.format_table(rows, [("rule", "rule"), ("fps", "fps"), ("rss", "peak RSS MiB")], "Per rule")
    lines = table.splitlines()
    assert lines[0] == "**Per rule**" and lines[1] == ""
    assert lines[2] == "| rule          |     fps | peak RSS MiB |"
    assert lines[3] == "|---------------|--------:|-------------:|"
    assert lines[4] == "| convert       | 123.456 |           80 |"
    assert lines[5] == "| detect_scenes |     9.5 |            - |"
    # every line has the same width: the table reads as a table in a terminal too
    assert len({len(line) for line in lines[2:]}) == 1


def test_peak_rss_parsers(common):
    status = "Name:\tpython\nState:\tS (sleeping)\nPPid:\t4242\nVmPeak:\t  900000 kB\nVmRSS:\t  204800 kB\n"
    assert common.parse_proc_status(status) == (4242, 204800 * 1024)
    assert common.parse_proc_status("Name:\tzombie\nState:\tZ (zombie)\nPPid:\t1\n") == (1, 0)
    time_v = ("\tCommand being timed: \"ffmpeg -i x.mp4 -f null -\"\n"
              "\tElapsed (wall clock) time (h:mm:ss or m:ss): 0:01.52\n"
              "\tMaximum resident set size (kbytes): 131072\n\tExit status: 0\n")
    assert common.parse_time_verbose(time_v) == 128.0
    with pytest.raises(ValueError, match="Maximum resident set size"):
        common.parse_time_verbose("Exit status: 0\n")


def test_tree_rss_counts_this_process(common):
    import os

    assert common.tree_rss(os.getpid()) > 10 * 2**20


def test_snakemake_benchmark_tsv_and_collection(common, tmp_path):
    tsv = ("s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
           "12.5\t0:00:12\t350.25\t900.1\tNA\t-\t0.5\t2.0\t180.0\t22.5\n")
    assert common.parse_benchmark_tsv(tsv) == [{"s": 12.5, "h:m:s": "0:00:12", "max_rss": 350.25, "max_vms": 900.1,
                                                "max_uss": None, "max_pss": None, "io_in": 0.5, "io_out": 2.0,
                                                "mean_load": 180.0, "cpu_time": 22.5}]
    folder = tmp_path / "results" / "benchmarks" / "convert" / "_loose"
    folder.mkdir(parents=True)
    (folder / "talk.tsv").write_text(tsv)
    (tmp_path / "results" / "benchmarks" / "report_run").mkdir()
    (tmp_path / "results" / "benchmarks" / "report_run" / "all.tsv").write_text(tsv)
    jobs = common.collect_benchmarks(tmp_path)
    assert [(j["rule"], j["wildcards"], j["s"]) for j in jobs] == [("convert", "_loose/talk", 12.5),
                                                                   ("report_run", "all", 12.5)]


def test_model_paths_are_found_under_the_models_folder(common, tmp_path):
    models = tmp_path / "models"
    (models / "yunet").mkdir(parents=True)
    (models / "yunet" / "det.onnx").write_bytes(b"det")
    (models / "mediapipe").mkdir()
    (models / "mediapipe" / "bundle_v2.task").write_bytes(b"task")
    section = {"detector": "models/yunet/det.onnx", "detector_sha256": "abc", "threshold": 0.5,
               "model": "models/face_landmarker.task", "sha256": "sum-of-task", "landmarks": "models/x/lm.onnx",
               "blendshapes": "", "predictor": "/nonexistent/predictor.dat"}
    fake_sum = {"bundle_v2.task": "sum-of-task"}
    options, missing = common.resolve_model_options(section, models, lambda p: fake_sum.get(p.name, "other"))
    assert options["detector"] == str(models / "yunet" / "det.onnx")  # same relative path
    assert options["model"] == str(models / "mediapipe" / "bundle_v2.task")  # found by its checksum
    assert options["threshold"] == 0.5 and options["blendshapes"] == "" and options["detector_sha256"] == "abc"
    assert missing == [str(models / "x" / "lm.onnx"), "/nonexistent/predictor.dat"]


def test_every_tracking_engine_is_listed_with_its_env_and_overlay(common):
    from steps.tracking.engines import ENGINES

    engines = common.tracking_engines()
    assert [e["name"] for e in engines] == list(ENGINES)
    for engine in engines:
        assert engine["env"] == f"tracking_{ENGINES[engine['name']].family}"
        overlay = json.loads(json.dumps(common.engine_config(engine)))
        assert overlay["tracking"]["engine"] == engine["name"]


def test_serial_workflow_command_keeps_threads_and_runs_one_job_at_a_time(common, tmp_path):
    cmd = common.workflow_command(tmp_path / "wd", tmp_path / "in", "-n", cores=2, serial=True,
                                  targets=["results/x/y/tracking.json"])
    assert cmd[:2] == common.SAMPLED_SNAKEMAKE and cmd[2] == "results/x/y/tracking.json"
    assert cmd[cmd.index("--cores") + 1] == "2"
    assert cmd[cmd.index("--resources") + 1] == "bench_slot=1"
    assert "bench_slot=1" in cmd[cmd.index("--default-resources"):]
    assert cmd[-2:] == [f"venv_dir={common.VENV_DIR}", f"input_dir={tmp_path / 'in'}"]


SAMPLING = """import os, sys
sys.path.insert(0, sys.argv[1])
from snakemake import benchmark
def intervals():  # the gaps between samples a job benchmark arms: before and after its first 30 samples
    timer = benchmark.BenchmarkTimer(os.getpid(), benchmark.BenchmarkRecord())
    gaps = []
    for called in (1, 31):
        timer._times_called = called
        timer._schedule()
        gaps.append(timer._timer.interval)
        timer._timer.cancel()
    return gaps
print(intervals())
import snakemake_sampled
snakemake_sampled.sample_all_along()
print(intervals())
seen = []
class Spy(benchmark.BenchmarkTimer):
    def __init__(self, pid, record, interval):
        seen.append(interval)
        super().__init__(pid, record, interval)
benchmark.BenchmarkTimer = Spy
with benchmark.benchmarked(os.getpid()):  # how Snakemake's shell() benchmarks a job
    pass
print(seen)
"""


def test_benchmark_runs_sample_every_job_all_along(common):
    """Snakemake alone samples a job every 0.5 s only for ~15 s, then every 30 s (cpu_time and max_rss of longer
    jobs miss their end); the benchmarks' launcher samples every 0.5 s throughout."""
    proc = subprocess.run([common.SAMPLED_SNAKEMAKE[0], "-c", SAMPLING, str(common.ROOT / "benchmarks")],
                          capture_output=True, text=True, check=True)
    assert proc.stdout.splitlines() == ["[0.5, 30]", "[0.5, 0.5]", "[0.5]"]


def test_gpu_check_reports_the_cpu_fallback_on_a_machine_without_gpu(tmp_path):
    """benchmarks/gpu_check.py, convert part: without nvidia-smi both runs use libx264 and agree exactly."""
    src = make_testsrc(tmp_path / "in.mp4", seconds=1, fps=30)
    env = {"PATH": "/usr/bin:/bin", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--video", str(src), "--out",
                           str(tmp_path / "gpu_check.json"), "--parts", "convert"], capture_output=True, text=True,
                          env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "gpu_check.json").read_text())["convert"]
    assert report["gpu"]["encoder"] == report["cpu"]["encoder"] == "libx264"
    assert report["gpu"]["frames"] == report["cpu"]["frames"] == 25 and report["gpu"]["fps"] == "25"
    assert report["same_frames"] and report["psnr_gpu_vs_cpu_db"] == "inf"


def test_gpu_check_diarization_falls_back_to_the_cpu_with_the_same_turns(tmp_path):
    """benchmarks/gpu_check.py, diarization part (segment_embed, the rule's script in its env): given a GPU that is
    not there, the step runs on the CPU and finds the same turns as without one."""
    from test_diarization import VOICES, make_clip

    if not (ROOT / ".venvs" / "diarization" / "bin" / "python").exists():
        pytest.skip("diarization venv not built (tests/test_diarization.py builds it)")
    video, _ = make_clip(tmp_path, "two", [(0.3, VOICES[0], "Good morning and welcome."),
                                           (2.5, VOICES[1], "Thank you, it is good to be here.")])
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--video", str(video), "--out",
                           str(tmp_path / "gpu_check.json"), "--parts", "diarization"], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "CUDA_VISIBLE_DEVICES": ""}, check=False)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "gpu_check.json").read_text())["diarization"]
    assert report["gpu"]["device"] == report["cpu"]["device"] == "cpu" and report["same_turns"]
    assert report["cpu"]["speakers"] == 2
