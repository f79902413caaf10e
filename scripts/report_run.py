"""Report entry point: the run summary (every project and video with its status, throughput) and every rule's
benchmark table."""

import argparse
import logging
from pathlib import Path

from steps.report import RULE_COLUMNS, collect_benchmarks, html_tables, rule_table, run_page
from steps.report_plots import plot_benchmarks
from vidflow.io import atomic_path
from vidflow.logs import run_main, setup_logging
from vidflow.summary import write_table


def project_logs(text):
    """``PROJECT=RULE:LOG,...``: the logs of the jobs before a project's extraction (its download)."""
    project, _, logs = text.partition("=")
    return project, dict(item.split(":", 1) for item in logs.split(",") if item)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--projects", nargs="+", type=project_logs, required=True,
                        help="PROJECT or PROJECT=RULE:LOG,... (logs of the jobs before its extraction)")
    parser.add_argument("--results", default="results")
    parser.add_argument("--logs", default="logs")
    parser.add_argument("--expect", nargs="+", required=True, help="a video's outputs, relative to its folder")
    parser.add_argument("--benchmarks", required=True, help="results/benchmarks")
    parser.add_argument("--run-html", required=True)
    parser.add_argument("--benchmarks-html", required=True)
    parser.add_argument("--benchmarks-png", required=True)
    parser.add_argument("--log")
    args = parser.parse_args(argv)
    setup_logging(args.log)
    write_table(args.run_html, run_page(dict(args.projects), args.results, args.logs, args.expect, args.benchmarks))
    records = collect_benchmarks(Path(args.benchmarks))
    with atomic_path(args.benchmarks_html) as tmp:
        tmp.write_text(html_tables("Benchmarks", [
            ("Rules", rule_table(records), RULE_COLUMNS, f"{len(records)} benchmark file(s) in {args.benchmarks}")]),
            encoding="utf-8")
    plot_benchmarks(args.benchmarks_png, records)
    logging.getLogger("report").info("%d project(s), %d benchmark(s)", len(args.projects), len(records))


if __name__ == "__main__":
    run_main(main)
