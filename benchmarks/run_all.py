#!/usr/bin/env python3
"""All workflow benchmarks in one command: per rule, end to end, scaling with length, no-op rerun.

Everything runs the real Snakefile with the project's config and venvs on media this script makes
(benchmarks/common.py: real astronaut faces, espeak-ng speech, cuts), in work folders under --work.
Each part prints a Markdown table and writes results/benchmarks/<part>.json:

  per_rule  one 60 s clip per size (640x360, 1280x720), jobs one at a time (each with its configured
            threads, --cores 2): each rule's wall time from Snakemake's benchmark TSV, as video-seconds per
            wall-second, frames per second, a multiple of the decode floor (ffmpeg -i X -f null -, measured
            here on the same file) and peak RSS; then tracking once per engine in ENGINES whose models
            (from $VIDFLOW_TEST_MODELS) and env file exist.
  e2e       8 different 60 s videos (640x360), whole workflow with --cores 2: wall time against the sum of
            the per-job times (how well the scheduler overlaps jobs).
  scaling   one video of 10 s, 60 s and 600 s each (the same 10 s unit repeated): whole workflow,
            seconds per video-second and peak RSS per rule and in total (must stay flat).
  rerun     100 tiny videos in one project: the whole workflow once, then the time of the no-op dry run
            (snakemake -n: DAG with checkpoints, mtimes and rerun triggers) and of a real no-op run.

    .venvs/workflow/bin/python benchmarks/run_all.py [--quick] [--only per_rule,e2e,scaling,rerun]

--quick is a smoke run (10 s clips, 640x360 only, 2 videos end to end, 10/30 s scaling, 10-video rerun);
--seconds, --sizes, --videos, --lengths and --rerun-videos change single settings (results then go to
<part>_custom.json, or <part>_quick_custom.json).
The machine's load average is recorded with every result: other work on the machine slows every row.
"""

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

PARTS = ("per_rule", "e2e", "scaling", "rerun")
NOTHING = "Nothing to be done"  # what Snakemake says when every output is up to date
RULE_COLUMNS = [("rule", "rule"), ("size", "size"), ("video_s", "video s"), ("wall_s", "wall s"),
                ("video_s_per_s", "video s / s"), ("fps", "fps"), ("floor_fps", "floor fps"),
                ("x_floor", "x floor"), ("max_rss_mib", "peak RSS MiB"), ("cpu_s", "CPU s"), ("note", "note")]


def fresh(path):
    shutil.rmtree(path, ignore_errors=True)
    Path(path).mkdir(parents=True)
    return Path(path)


def job_rows(jobs, video_s, frames, floors, label=None):
    """Table rows from collected benchmark jobs: rates against the floor of what each rule reads."""
    rows = []
    for job in jobs:
        wall = job.get("s") or 0.0
        floor = floors.get(job["rule"], floors.get("*"))
        row = {"rule": label or job["rule"], "wildcards": job["wildcards"], "video_s": round(video_s, 1),
               "wall_s": round(wall, 2), "max_rss_mib": job.get("max_rss"), "cpu_s": job.get("cpu_time")}
        if wall > 0:
            row.update(common.rates(video_s, frames, wall, floor))
        rows.append(row)
    return rows


def per_rule(args, work):
    rows, skipped, config_dir = [], [], fresh(work / "per_rule_configs")
    engines = [e for e in common.tracking_engines() if not args.engines or e["name"] in args.engines]
    for size in args.sizes:
        label = f"{size[0]}x{size[1]}"
        source = common.clip(args.seconds, size, work)
        wd = fresh(work / f"per_rule_{label}")
        inputs = common.link_input(wd / "input", {f"talk_{label}.mp4": source})
        run = common.run_workflow(wd / "run", inputs, serial=True)
        video_s, frames, _, _ = common.video_info(source)
        converted = wd / "run" / "results" / "_loose" / f"talk_{label}" / "video.mp4"
        floors = {"convert": common.decode_floor(source), "*": common.decode_floor(converted)}
        jobs = [j for j in common.collect_benchmarks(wd / "run") if j["wildcards"].startswith("_loose/")]
        default = common.read_config()["tracking"]["engine"]
        table = job_rows(jobs, video_s, frames, floors)
        for row in table:
            row["size"] = label
            if row["rule"] == "tracking":
                row["rule"] = f"{row['rule']} [{default}]"
        rows += table
        print(f"per_rule {label}: workflow {run['wall_s']:.0f} s; floors {floors}", flush=True)
        for engine in engines:
            if engine["name"] == default:
                continue
            if engine["missing"]:
                skipped.append({"engine": engine["name"], "size": label,
                                "reason": "missing " + ", ".join(engine["missing"])})
                continue
            overlay = config_dir / f"{engine['name']}.json"
            overlay.write_text(json.dumps(common.engine_config(engine)))
            rule = "tracking"
            tsv = wd / "run" / "results" / "benchmarks" / rule / "_loose" / f"talk_{label}.tsv"
            started = time.time()
            result = common.run_workflow(wd / "run", inputs, targets=[f"results/_loose/talk_{label}/tracking.json"],
                                         serial=True, configfiles=[overlay], check=False)
            if result["returncode"] != 0 or not tsv.exists() or tsv.stat().st_mtime < started:
                tail = result["output"].strip().splitlines()[-3:]
                reason = "failed: " + " / ".join(tail) if result["returncode"] else "tracking did not run"
                skipped.append({"engine": engine["name"], "size": label, "reason": reason})
                print(f"per_rule {label}: {engine['name']}: {reason}", flush=True)
                continue
            track = [{"rule": rule, "wildcards": f"_loose/talk_{label}", **job}
                     for job in common.parse_benchmark_tsv(tsv.read_text())]
            for row in job_rows(track, video_s, frames, floors, f"{rule} [{engine['name']}]"):
                rows.append({**row, "size": label})
    for note in skipped:
        rows.append({"rule": f"[{note['engine']}]", "size": note["size"], "note": "skipped: " + note["reason"]})
    print(common.format_table(rows, RULE_COLUMNS, "Per rule (jobs one at a time, --cores 2)"))
    return {"seconds": args.seconds, "sizes": [f"{w}x{h}" for w, h in args.sizes], "rows": rows,
            "skipped": skipped}


def e2e(args, work):
    size = args.sizes[0]
    source = common.clip(args.seconds, size, work)
    videos = {f"video_{i}.mp4": common.variant(source, i, work) for i in range(args.videos)}
    wd = fresh(work / "e2e")
    inputs = common.link_input(wd / "input", videos)
    run = common.run_workflow(wd / "run", inputs, cores=args.cores)
    jobs = common.collect_benchmarks(wd / "run")
    summary = common.overlap_summary(run["wall_s"], [j["s"] or 0 for j in jobs], args.cores)
    summary["sum_cpu_s"] = round(sum(j.get("cpu_time") or 0 for j in jobs), 1)
    by_rule = {}
    for job in jobs:
        entry = by_rule.setdefault(job["rule"], {"rule": job["rule"], "jobs": 0, "sum_s": 0.0, "sum_cpu_s": 0.0,
                                                 "max_rss_mib": 0.0})
        entry["jobs"] += 1
        entry["sum_s"] = round(entry["sum_s"] + (job["s"] or 0), 1)
        entry["sum_cpu_s"] = round(entry["sum_cpu_s"] + (job.get("cpu_time") or 0), 1)
        entry["max_rss_mib"] = max(entry["max_rss_mib"], job.get("max_rss") or 0)
    video_s = args.videos * args.seconds
    summary.update({"videos": args.videos, "video_s": video_s, "cores": args.cores,
                    "video_s_per_s": round(video_s / run["wall_s"], 2), "peak_rss_mib": round(run["peak_rss_mib"])})
    print(common.format_table([summary], [("videos", "videos"), ("video_s", "video s"), ("cores", "cores"),
                                           ("wall_s", "wall s"), ("sum_job_s", "sum of job s"), ("overlap", "overlap"),
                                           ("core_utilisation", "core utilisation"), ("sum_cpu_s", "sum of CPU s"),
                                           ("video_s_per_s", "video s / s"), ("peak_rss_mib", "workflow peak RSS MiB")],
                              f"End to end: {args.videos} x {args.seconds} s at {size[0]}x{size[1]}"))
    print()
    print(common.format_table(sorted(by_rule.values(), key=lambda r: -r["sum_s"]),
                              [("rule", "rule"), ("jobs", "jobs"), ("sum_s", "sum of job s"),
                               ("sum_cpu_s", "sum of CPU s"), ("max_rss_mib", "peak RSS MiB")], "Job time per rule"))
    return {"summary": summary, "rules": sorted(by_rule.values(), key=lambda r: r["rule"])}


def scaling(args, work):
    size = args.sizes[0]
    points, rules = [], {}
    for seconds in args.lengths:
        source = common.clip(seconds, size, work)
        wd = fresh(work / f"scaling_{seconds}s")
        inputs = common.link_input(wd / "input", {f"talk_{seconds}s.mp4": source})
        run = common.run_workflow(wd / "run", inputs, cores=args.cores)
        jobs = [j for j in common.collect_benchmarks(wd / "run") if j["wildcards"].startswith("_loose/")]
        points.append({"seconds": seconds, "wall_s": round(run["wall_s"], 1),
                       "cpu_s": round(sum(j.get("cpu_time") or 0 for j in jobs), 1),
                       "peak_rss_mib": round(max((j.get("max_rss") or 0) for j in jobs)),
                       "workflow_rss_mib": round(run["peak_rss_mib"])})
        for job in jobs:
            rules.setdefault(job["rule"], []).append({"seconds": seconds, "wall_s": job["s"] or 0,
                                                      "cpu_s": job.get("cpu_time"),
                                                      "peak_rss_mib": job.get("max_rss") or 0})
        print(f"scaling {seconds} s: {run['wall_s']:.0f} s", flush=True)
    total = common.scaling_summary(points)
    per_rule_rows = []
    for rule, series in sorted(rules.items()):
        if len(series) != len(args.lengths):
            continue
        summary = common.scaling_summary(series)
        per_rule_rows.append(scaling_row(rule, summary))
    per_rule_rows.append(scaling_row("whole workflow (max RSS of a job)", total))
    columns = [("rule", "rule")] + [(f"s_per_video_s@{s}", f"s per video-s @{s}s") for s in args.lengths] + [
        ("cost_growth", "cost growth")] + [(f"cpu@{s}", f"CPU s per video-s @{s}s") for s in args.lengths] + [
        ("cpu_growth", "CPU growth")] + [(f"rss@{s}", f"RSS MiB @{s}s") for s in args.lengths] + [
        ("rss_growth", "RSS growth")]
    print(common.format_table(per_rule_rows, columns,
                              f"Scaling with length ({size[0]}x{size[1]}, --cores {args.cores}; growth = largest step "
                              "up from one length to the next, <= 1.0 = flat)"))
    job_seconds = seconds_rows(points, rules)
    print()
    kinds = (("wall", "wall s"), ("cpu", "CPU s"))
    print(common.format_table(job_seconds, [("rule", "rule")] + [
        (f"{kind}@{s}", f"{label} @{s}s") for s in args.lengths for kind, label in kinds],
        "Whole default run per length: the run's wall time, then each job's wall and CPU seconds"))
    return {"size": f"{size[0]}x{size[1]}", "cores": args.cores, "total": total, "rules": per_rule_rows,
            "job_seconds": job_seconds}


def seconds_rows(points, rules):
    """The run's wall time per length, then each job's wall and CPU seconds per length (longest jobs first)."""
    rows = [{"rule": "whole run (Snakemake included)",
             **{f"wall@{p['seconds']}": p["wall_s"] for p in points},
             **{f"cpu@{p['seconds']}": p["cpu_s"] for p in points}}]
    jobs = [{"rule": rule, **{f"wall@{j['seconds']}": round(j["wall_s"], 1) for j in series},
             **{f"cpu@{j['seconds']}": round(j["cpu_s"] or 0, 1) for j in series}} for rule, series in rules.items()]
    longest = max(p["seconds"] for p in points)
    return rows + sorted(jobs, key=lambda row: -(row.get(f"wall@{longest}") or 0))


def scaling_row(rule, summary):
    row = {"rule": rule, **{k: summary.get(k) for k in ("cost_growth", "cpu_growth", "rss_growth")}}
    for point in summary["points"]:
        row[f"s_per_video_s@{point['seconds']}"] = point["s_per_video_s"]
        row[f"cpu@{point['seconds']}"] = point.get("cpu_s_per_video_s")
        row[f"rss@{point['seconds']}"] = point["peak_rss_mib"]
    return row


def rerun(args, work):
    folder = common.tiny_clips(args.rerun_videos, work)
    wd = work / f"rerun_{args.rerun_videos}"
    inputs = folder
    first = None
    if not (wd / "run" / ".complete").exists():  # a run stopped half-way is resumed (first run time: None)
        resumed = (wd / "run").exists()
        wd.mkdir(parents=True, exist_ok=True)
        done = common.run_workflow(wd / "run", inputs, "--rerun-incomplete", "--keep-going", cores=args.cores)
        first = None if resumed else done
        (wd / "run" / ".complete").write_text("")
    updates = 0
    while True:  # the project's code may change between runs (a git pull, an edit): bring outputs up to date first
        dry = [common.run_workflow(wd / "run", inputs, "-n", cores=args.cores) for _ in range(2)]
        if all(NOTHING in r["output"] for r in dry) or updates == 2:
            break
        common.run_workflow(wd / "run", inputs, cores=args.cores)
        updates += 1
    noop = common.run_workflow(wd / "run", inputs, cores=args.cores)
    for result in (*dry, noop):
        if NOTHING not in result["output"]:
            raise RuntimeError(f"the rerun was not a no-op:\n{result['output'][-3000:]}")
    row = {"videos": args.rerun_videos, "first_run_s": round(first["wall_s"], 1) if first else None,
           "updates_before": updates,
           "dry_run_s": round(min(r["wall_s"] for r in dry), 2), "noop_run_s": round(noop["wall_s"], 2),
           "dry_run_rss_mib": round(max(r["peak_rss_mib"] for r in dry))}
    print(common.format_table([row], [("videos", "videos"), ("first_run_s", "first run s"),
                                      ("dry_run_s", "no-op dry run s"), ("noop_run_s", "no-op run s"),
                                      ("updates_before", "updates before"), ("dry_run_rss_mib", "dry run RSS MiB")],
                              f"No-op rerun of a {args.rerun_videos}-video project"))
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: short clips, one size, few videos")
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts of {', '.join(PARTS)}")
    parser.add_argument("--work", type=Path, default=common.WORK, help="media cache and work folders")
    parser.add_argument("--engines", default="", help="tracking engines for per_rule (default: every one)")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--seconds", type=int, help="clip length of per_rule and e2e (default 60, quick 10)")
    parser.add_argument("--sizes", help="frame sizes of per_rule; the first one is used by the other parts "
                                        "(default 640x360,1280x720, quick 640x360)")
    parser.add_argument("--videos", type=int, help="videos end to end (default 8, quick 2)")
    parser.add_argument("--lengths", help="video lengths of the scaling part (default 10,60,600, quick 10,30)")
    parser.add_argument("--rerun-videos", type=int, help="videos of the rerun project (default 100, quick 10)")
    args = parser.parse_args(argv)
    parts = [p.strip().replace("-", "_") for p in args.only.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    args.engines = [e for e in args.engines.split(",") if e]
    defaults = (dict(seconds=10, sizes="640x360", videos=2, lengths="10,30", rerun_videos=10) if args.quick else
                dict(seconds=60, sizes="640x360,1280x720", videos=8, lengths="10,60,600", rerun_videos=100))
    changed = sorted([k for k in defaults if getattr(args, k) is not None] + (["engines"] if args.engines else []))
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.sizes = [common.parse_size(size) for size in args.sizes.split(",")]
    args.lengths = sorted(int(n) for n in args.lengths.split(","))
    # results of non-default settings do not overwrite the standard ones
    suffix = ("_quick" if args.quick else "") + ("_custom" if changed else "")
    for part in parts:
        start, load = time.perf_counter(), [round(v, 2) for v in os.getloadavg()]
        print(f"\n## {part}{' (quick)' if args.quick else ''}\n", flush=True)
        result = globals()[part](args, args.work)
        settings = {k: getattr(args, k) for k in ("seconds", "videos", "rerun_videos", "cores")}
        settings.update(sizes=[f"{w}x{h}" for w, h in args.sizes], lengths=args.lengths, custom=changed,
                        loadavg_at_start=load)
        path = common.write_result(f"{part}{suffix}", {"quick": args.quick, "settings": settings, "result": result,
                                                       "took_s": round(time.perf_counter() - start, 1)})
        print(f"\nwrote {path}", flush=True)


if __name__ == "__main__":
    main()
