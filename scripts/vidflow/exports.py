"""What the review report shows of a video's exports (standard library only, so the report env imports it).

:func:`export_rows` describes each export file (what it is for, what it holds, its size): the table of the video's
exports page (steps.report.video.report_exports); the report embeds the review video itself (``rules/export.smk``
marks ``review.mp4`` as a report item, category *Review video*).
"""

import csv
import xml.etree.ElementTree as ET
from pathlib import Path

PURPOSE = {".eaf": "ELAN", ".TextGrid": "Praat", ".vtt": "subtitles (players, editors)",
           ".parquet": "pandas, R, DuckDB", ".csv": "pandas, R, spreadsheets",
           ".mp4": "watching (boxes, speakers, scenes)"}


def export_files(folder, video, review=True):
    """name -> path of the export files of ``video`` in ``folder`` (the contract of design.md section 12)."""
    folder = Path(folder)
    names = [f"{video}.eaf", f"{video}.TextGrid", f"{video}.vtt", "faces.parquet", "faces.csv", "turns.parquet",
             "turns.csv", *(["review.mp4"] if review else [])]
    return {name: folder / name for name in names}


def _count(path):
    """What the file holds, in words."""
    suffix = path.suffix
    if suffix == ".eaf":
        root = ET.parse(path).getroot()
        return f"{len(root.findall('TIER'))} tiers, {sum(1 for _ in root.iter('ALIGNABLE_ANNOTATION'))} annotations"
    if suffix == ".TextGrid":
        tiers = sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip().startswith("class = "))
        return f"{tiers} interval tiers"
    if suffix == ".vtt":
        return f"{sum('-->' in line for line in path.read_text(encoding='utf-8').splitlines())} cues"
    if suffix == ".csv":
        with open(path, encoding="utf-8", newline="") as handle:
            return f"{sum(1 for _ in csv.reader(handle)) - 1} rows"
    return ""


def human_size(size):
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000


def export_rows(folder, video, review=True):
    """One dict per export file that exists: ``file``, ``for``, ``holds``, ``size``."""
    rows = []
    for name, path in export_files(folder, video, review).items():
        if path.is_file():
            rows.append({"file": f"export/{name}", "for": PURPOSE[Path(name).suffix], "holds": _count(path),
                         "size": human_size(path.stat().st_size)})
    return rows
