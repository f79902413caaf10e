"""Report entry point: the run summary (projects, videos, throughput) and every rule's benchmark table."""

import argparse
import logging
from pathlib import Path

from steps.report import (PROJECT_COLUMNS, RULE_COLUMNS, VIDEO_COLUMNS, collect_benchmarks, html_tables,
                          project_table, rule_table, video_table)
from steps.report_plots import plot_benchmarks
from vidflow.io import atomic_path, read_json
from vidflow.logs import run_main, setup_logging


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--manifests", nargs="+", required=True)
    parser.add_argument("--summaries", nargs="*", default=[], help="per-video report/summary.json")
    parser.add_argument("--benchmarks", required=True, help="results/benchmarks")
    parser.add_argument("--run-html", required=True)
    parser.add_argument("--benchmarks-html", required=True)
    parser.add_argument("--benchmarks-png", required=True)
    parser.add_argument("--log")
    args = parser.parse_args(argv)
    setup_logging(args.log)
    manifests = [read_json(p) for p in args.manifests]
    summaries = [read_json(p) for p in args.summaries]
    records = collect_benchmarks(Path(args.benchmarks))
    note = "job time: wall time of the jobs summed (jobs may run in parallel); throughput: media seconds per job second"
    with atomic_path(args.run_html) as tmp:
        tmp.write_text(html_tables("Run summary", [
            ("Projects", project_table(manifests, summaries, records), PROJECT_COLUMNS, note),
            ("Videos", video_table(summaries, records), VIDEO_COLUMNS, "")]), encoding="utf-8")
    with atomic_path(args.benchmarks_html) as tmp:
        tmp.write_text(html_tables("Benchmarks", [
            ("Rules", rule_table(records), RULE_COLUMNS, f"{len(records)} benchmark file(s) in {args.benchmarks}")]),
            encoding="utf-8")
    plot_benchmarks(args.benchmarks_png, records)
    logging.getLogger("report").info("%d project(s), %d video(s), %d benchmark(s)", len(manifests),
                                     len(summaries), len(records))


if __name__ == "__main__":
    run_main(main)
