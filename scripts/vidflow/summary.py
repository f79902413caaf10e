"""Per-project table of the videos processed so far (one row per video)."""

import csv
import io
from pathlib import Path

from .io import atomic_path, read_json

COLUMNS = ["video", "original_name", "member", "source_sha256", "duration", "frames", "mode", "encoder"]


def project_rows(manifest, results_dir):
    """Rows for every video of a project manifest, from each video's ``video.json``."""
    rows = []
    for entry in manifest["videos"]:
        info = read_json(Path(results_dir) / entry["video"] / "video.json")
        rows.append({"video": entry["video"], "original_name": entry["original_name"], "member": entry["member"],
                     "source_sha256": entry["sha256"], "duration": f"{info['output']['duration']:.3f}",
                     "frames": info["output"]["video"]["nb_frames"], "mode": info["mode"],
                     "encoder": info["encoder"] or "copy"})
    return sorted(rows, key=lambda r: r["video"])


def write_tsv(path, rows, columns=COLUMNS):
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, delimiter="\t", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    with atomic_path(path) as tmp:
        tmp.write_text(buffer.getvalue(), encoding="utf-8")
