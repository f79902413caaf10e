"""What the review report shows of a video's exports (standard library only, so the report env imports it).

:func:`export_rows` describes each export file (what it is for, what it holds, its size) and :func:`exports_html`
renders them as the HTML table of the video's report page, next to a pointer to the review video, which the report
embeds itself (``rules/export.smk`` marks ``review.mp4`` as a report item, category *Review video*).
"""

import csv
import html
import xml.etree.ElementTree as ET
from pathlib import Path

from steps.export_check import export_files

PURPOSE = {".eaf": "ELAN", ".TextGrid": "Praat", ".vtt": "subtitles (players, editors)",
           ".parquet": "pandas, R, DuckDB", ".csv": "pandas, R, spreadsheets",
           ".mp4": "watching (boxes, speakers, scenes)"}


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


def exports_html(rows, review=True):
    """The rows as an HTML table (escaped), with a line that points to the embedded review video."""
    head = "".join(f"<th>{html.escape(k)}</th>" for k in ("file", "for", "holds", "size"))
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(row[k]))}</td>" for k in ("file", "for", "holds", "size"))
                   + "</tr>" for row in rows)
    note = ("<p>The review video (face boxes green while speaking, track ids, speakers, scene numbers) is under "
            "<em>Review video</em> in this report.</p>") if review else ""
    return f'<table class="exports"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{note}'
