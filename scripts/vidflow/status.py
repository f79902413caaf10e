"""What became of each item of a run (a video, a project, a link), from its outputs and its jobs' logs.

``done``: every output is there and no job of the item failed after writing them. ``failed``: the newest log of
the item's jobs that ends in an error; the reason is that error line (every step logs its failure as one line).
``skipped``: not processed on purpose (a member that is no video, a link that needs a browser). ``unfinished``:
outputs are missing and no job logged an error (it did not run, e.g. the run stopped first, or it was killed).
The aggregate tables are built from these, so they list every item whether its jobs finished or not.
"""

import re
from pathlib import Path

# The line :func:`vidflow.logs.run_main` logs for a failure (LOG_FORMAT: "<date> <time> ERROR <logger>: <message>")
ERROR_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ ERROR \S+: (.*)$")
MAX_REASON = 300  # characters of an error line kept in a table; the whole line stays in the job's log
# Skipped members not listed as items (and not warned about one by one when extracting): no video was expected.
QUIET_SKIPS = ("not a video (extension)", "macOS metadata")


def last_error(log):
    """The message of the last ERROR line of a job's log; None when the log is missing or has none."""
    try:
        lines = Path(log).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    return next((m.group(1) for m in map(ERROR_LINE.match, reversed(lines)) if m), None)


def _mtime(path):
    try:
        return Path(path).stat().st_mtime
    except OSError:
        return None


def newest_failure(logs):
    """``(rule, message, mtime)`` of the most recently written log of ``logs`` ({rule: path}) that ends in an
    error; None when none does."""
    failures = [(_mtime(path), rule, last_error(path)) for rule, path in sorted(logs.items())]
    failures = [f for f in failures if f[2] is not None]
    if not failures:
        return None
    mtime, rule, message = max(failures, key=lambda f: f[0])
    if len(message) > MAX_REASON:
        message = f"{message[:MAX_REASON]}... (see {logs[rule]})"
    return rule, message, mtime


def job_logs(logs_dir, *parts):
    """{rule: log} of the jobs of one item: ``logs/<rule>/<parts...>.log`` (a video: project, video)."""
    name = "/".join(parts) + ".log"
    return {path.relative_to(logs_dir).parts[0]: path for path in sorted(Path(logs_dir).glob(f"*/{name}"))}


def item_status(outputs, logs):
    """``(status, reason)`` of an item whose jobs write ``outputs`` (paths) and log to ``logs`` ({rule: path})."""
    mtimes = [_mtime(path) for path in outputs]
    failure = newest_failure(logs)
    if None not in mtimes and (failure is None or failure[2] <= min(mtimes, default=failure[2])):
        return "done", ""
    if failure is not None:
        return "failed", f"{failure[0]}: {failure[1]}"
    missing = next(Path(path).name for path, mtime in zip(outputs, mtimes) if mtime is None)
    return "unfinished", f"no {missing} (its job did not run, or stopped without an error line)"


def video_status(results_dir, logs_dir, project, video, expected):
    """``(status, reason)`` of one video; ``expected`` are its outputs relative to ``results/<project>/<video>/``
    (``{video}`` is replaced by its name)."""
    folder = Path(results_dir) / project / video
    return item_status([folder / name.format(video=video) for name in expected],
                       job_logs(logs_dir, project, video))


def reported_skips(manifest):
    """The skipped members of a manifest that are listed as items (candidates that were no usable video)."""
    return [s for s in manifest.get("skipped", []) if s["reason"] not in QUIET_SKIPS]
