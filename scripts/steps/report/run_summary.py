"""Report, the run: every project and video with its status (run.html), every rule's benchmarks (benchmarks.html,
a table per rule from pandas) and the per-video job times (benchmarks.png)."""

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from steps.report.data import BENCHMARK_FIELDS, collect_benchmarks
from steps.report.pages import run_page, tables_page
from steps.report.plots import plot_benchmarks
from vidflow.io import write_text
from vidflow.job import settings_from
from vidflow.summary import write_table

log = logging.getLogger("report")

RULE_COLUMNS = [("rule", "rule"), ("jobs", "jobs"), ("total_s", "total (s)"), ("mean_s", "mean (s)"),
                ("max_s", "max (s)"), ("max_rss_mb", "max RSS (MB)"), ("cpu_s", "CPU time (s)")]


def rule_table(records: list[dict]) -> list[dict]:
    """Rows per rule (sorted): jobs, total/mean/max wall time (s), max RSS (MB), CPU time (s); a value that no job of
    the rule recorded is None (the total wall time of none is 0)."""
    frame = pd.DataFrame.from_records(records, columns=["rule", *BENCHMARK_FIELDS])
    frame = frame.astype({field: float for field in BENCHMARK_FIELDS})
    per_rule = frame.groupby("rule", sort=True).agg(
        jobs=("rule", "size"), timed=("s", "count"), total_s=("s", "sum"), mean_s=("s", "mean"), max_s=("s", "max"),
        max_rss_mb=("max_rss", "max"), cpu_s=("cpu_time", lambda cpu: cpu.sum(min_count=1)))
    return [{"rule": rule, "jobs": int(row.jobs), "total_s": round(float(row.total_s), 2) if row.timed else 0,
             "mean_s": _rounded(row.mean_s, 2), "max_s": _rounded(row.max_s, 2),
             "max_rss_mb": _rounded(row.max_rss_mb, 1), "cpu_s": _rounded(row.cpu_s, 2)}
            for rule, row in per_rule.iterrows()]


def _rounded(value, digits):
    return None if pd.isna(value) else round(float(value), digits)


@dataclass(frozen=True)
class ReportRunSettings:
    """What the run's pages cover: facts of the workflow, not config keys (rules/report.smk)."""

    projects: dict  # {project: {rule: log}}: the logs of the jobs before its extraction (a download's)
    expected: list  # a video's outputs relative to its folder: all there = the video is done
    results: str  # folder of results/<project>/<video>/
    logs: str  # folder of the jobs' logs, logs/<rule>/...
    benchmarks: str  # Snakemake's benchmark TSVs, results/benchmarks/<rule>/...


def report_run(settings: ReportRunSettings, outputs: dict) -> None:
    """Write ``outputs``: ``run`` (run.html), ``benchmarks`` (benchmarks.html) and ``figure`` (benchmarks.png)."""
    write_table(outputs["run"], run_page(settings.projects, settings.results, settings.logs, settings.expected,
                                         settings.benchmarks))
    records = collect_benchmarks(Path(settings.benchmarks))
    write_text(outputs["benchmarks"], tables_page("Benchmarks", [
        ("Rules", rule_table(records), RULE_COLUMNS, f"{len(records)} benchmark file(s) in {settings.benchmarks}")]))
    plot_benchmarks(outputs["figure"], records)
    log.info("%d project(s), %d benchmark(s)", len(settings.projects), len(records))


def run(job):
    report_run(settings_from(ReportRunSettings, job.settings), job.output)
