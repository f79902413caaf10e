"""The run's tables: one row per video of a project (videos.tsv) and one per link (downloads.tsv), each with the
item's status and reason (:mod:`vidflow.status`), from what finished. Written by their rules when every job
succeeded, and by the workflow's ``onerror`` handler from the same functions when some failed."""

import csv
import io
import logging
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from .io import read_json, write_text
from .status import item_status, job_logs, reported_skips, video_status

COLUMNS = ["video", "original_name", "member", "status", "reason", "source_sha256", "duration", "frames", "mode",
           "encoder"]
DOWNLOAD_COLUMNS = ["url", "status", "reason", "file", "sha256", "size"]
MANUAL = "manual download required"


@dataclass(frozen=True)
class ProjectSummarySettings:
    """What a project's table covers: facts of the workflow, not config keys (rules/summary.smk)."""

    expected: list  # a video's outputs relative to its folder ({video}: its name): all there = done
    results: str  # folder of results/<project>/<video>/
    logs: str  # folder of the jobs' logs, logs/<rule>/...


def project_summary(manifest_path: str, output: str, settings: ProjectSummarySettings) -> None:
    """Write a project's videos.tsv: a row per video of its manifest with its status, and per skipped candidate."""
    rows = project_rows(read_json(manifest_path), settings.results, settings.logs, settings.expected)
    write_table(output, tsv_text(rows))
    counts = Counter(row["status"] for row in rows)
    logging.getLogger("summary").info("%s: %s", output, ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))


def project_rows(manifest, results_dir, logs_dir, expected):
    """Rows for every video of a project manifest (conversion details from its ``video.json`` when there is one),
    then one per skipped member that was a video candidate."""
    rows = []
    project = manifest["project"]
    for entry in manifest["videos"]:
        status, reason = video_status(results_dir, logs_dir, project, entry["video"], expected)
        row = {"video": entry["video"], "original_name": entry["original_name"], "member": entry["member"],
               "status": status, "reason": reason, "source_sha256": entry["sha256"]}
        info_path = Path(results_dir) / project / entry["video"] / "video.json"
        if info_path.exists():
            info = read_json(info_path)
            row.update({"duration": f"{info['output']['duration']:.3f}",
                        "frames": info["output"]["video"]["nb_frames"], "mode": info["mode"],
                        "encoder": info["encoder"] or "copy"})
        rows.append(row)
    skipped = [{"original_name": Path(s["member"]).name, "member": s["member"], "status": "skipped",
                "reason": s["reason"]} for s in reported_skips(manifest)]
    return sorted(rows, key=lambda r: r["video"]) + sorted(skipped, key=lambda r: r["member"])


def download_rows(links, download_dir, logs_dir, manual=()):
    """Rows for every link: ``links`` {link id: url} as its ``status.json`` says (downloaded, duplicate), failed
    with the error of its job's log, or unfinished; ``manual`` URLs are skipped. Sorted by URL."""
    rows = []
    for link, url in links.items():
        status_path = Path(download_dir) / link / "status.json"
        if status_path.exists():
            rows.append(read_json(status_path))
            continue
        status, reason = item_status([status_path], job_logs(logs_dir, link))
        rows.append({"url": url, "status": status, "reason": reason.removeprefix(f"download: {url}: ")})
    rows += [{"url": url, "status": "skipped", "reason": MANUAL} for url in manual]
    return sorted(({c: row.get(c, "") for c in DOWNLOAD_COLUMNS} for row in rows), key=lambda r: r["url"])


def tsv_text(rows, columns=COLUMNS):
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, delimiter="\t", lineterminator="\n", restval="")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_table(path, text, older_than=()):
    """Write ``text`` to ``path`` atomically, unless the file already holds exactly it (its time stays, so Snakemake
    sees nothing new); returns True when written.

    ``older_than``: for a table written outside its rule (by ``onerror``), paths of its rule's inputs; the file gets a
    time just before the oldest of them that exists, so that the next run sees it as older than its inputs and remakes
    it with the jobs it waits for. (Snakemake remakes a missing intermediate file, such as the output of a failed job,
    only for a job that must run anyway: a table newer than its inputs would keep the failed jobs from running again.)
    """
    path = Path(path)
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    write_text(path, text)
    times = [p.stat().st_mtime for p in map(Path, older_than) if p.exists()]
    if times:
        os.utime(path, (min(times) - 1, min(times) - 1))
    return True
