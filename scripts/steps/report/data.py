"""Review report, data side: tables and figure inputs from one video's step outputs, and the run's tables of
projects and videos with their status (standard library only).

The pages are rendered by :mod:`steps.report.pages` (jinja2 templates), the figures drawn by
:mod:`steps.report.plots` (matplotlib, report env); everything here is plain data so the tests import it in the
driver venv.
"""

import math
from collections import Counter, defaultdict
from pathlib import Path

from vidflow.io import read_json
from vidflow.status import item_status, job_logs, reported_skips, video_status

NO_LINK = "-"


def round3(value):
    return round(float(value), 3)


def scene_cuts(scenes):
    """Times (s) where a new scene starts, except the first."""
    return [round3(s["start_time"]) for s in scenes["scenes"][1:]]


def speaker_turns(diarization):
    """{speaker: [(start, duration), ...]} in the order speakers first speak."""
    turns = {name: [] for name in diarization["speakers"]}
    for seg in diarization["segments"]:
        turns.setdefault(seg["speaker"], []).append((seg["start"], round3(seg["end"] - seg["start"])))
    return turns


def faces_per_frame(tracking):
    """(frame numbers, faces per frame, speaking faces per frame or None when no face carries ``speaking``)."""
    frames = [f["frame"] for f in tracking["frames"]]
    counts = [len(f["faces"]) for f in tracking["frames"]]
    has_speaking = any("speaking" in face for f in tracking["frames"] for face in f["faces"])
    speaking = [sum(bool(face.get("speaking")) for face in f["faces"]) for f in tracking["frames"]]
    return frames, counts, speaking if has_speaking else None


def track_speakers(tracking):
    """{track_id: most frequent ``speaker`` label of its faces} for tracks that carry one (ties: smallest label)."""
    votes = defaultdict(Counter)
    for frame in tracking["frames"]:
        for face in frame["faces"]:
            if face.get("speaker"):
                votes[face["track_id"]][face["speaker"]] += 1
    return {tid: min(c.items(), key=lambda kv: (-kv[1], kv[0]))[0] for tid, c in votes.items()}


def speaker_tracks(tracking):
    """{speaker: [track ids linked to it]} (the inverse of :func:`track_speakers`)."""
    out = defaultdict(list)
    for tid, speaker in sorted(track_speakers(tracking).items()):
        out[speaker].append(tid)
    return dict(out)


def speaker_table(diarization, tracking=None):
    """Rows: speaker, talk time (s), share of speech (%), turns, first turn (s), linked face track(s)."""
    links = speaker_tracks(tracking) if tracking else {}
    total = sum(seg["end"] - seg["start"] for seg in diarization["segments"]) or 1.0
    rows = []
    for speaker, turns in speaker_turns(diarization).items():
        talk = sum(d for _, d in turns)
        rows.append({
            "speaker": speaker,
            "talk_time_s": round3(talk),
            "share_pct": round(100 * talk / total, 1),
            "turns": len(turns),
            "first_turn_s": round3(turns[0][0]) if turns else None,
            "face_track": ", ".join(map(str, links.get(speaker, []))) or NO_LINK,
        })
    return rows


def scene_of(frame, scenes):
    for index, scene in enumerate(scenes["scenes"], 1):
        if scene["start_frame"] <= frame <= scene["end_frame"]:
            return index
    return None


def track_table(tracking, scenes):
    """Rows: track id, scene, first/last frame, frames seen, mean detector score, linked speaker."""
    seen = defaultdict(list)
    for frame in tracking["frames"]:
        for face in frame["faces"]:
            seen[face["track_id"]].append((frame["frame"], face.get("score")))
    speakers = track_speakers(tracking)
    rows = []
    for tid in sorted(seen):
        frames = [f for f, _ in seen[tid]]
        scores = [s for _, s in seen[tid] if s is not None]
        rows.append({
            "track_id": tid,
            "scene": scene_of(frames[0], scenes),
            "first_frame": min(frames),
            "last_frame": max(frames),
            "frames": len(frames),
            "mean_score": round3(sum(scores) / len(scores)) if scores else None,
            "speaker": speakers.get(tid, NO_LINK),
        })
    return rows


def thumbnail_frames(scenes, max_thumbnails):
    """(scene number, mid-scene frame) for every scene, or for ``max_thumbnails`` evenly spaced scenes."""
    items = [(i, (s["start_frame"] + s["end_frame"]) // 2) for i, s in enumerate(scenes["scenes"], 1)]
    if len(items) <= max_thumbnails:
        return items
    step = len(items) / max_thumbnails
    return [items[math.floor(k * step)] for k in range(max_thumbnails)]


def faces_at(tracking, frame):
    """Faces of one frame (``tracking.json`` lists every frame in order, but do not rely on it)."""
    frames = tracking["frames"]
    if 0 <= frame < len(frames) and frames[frame]["frame"] == frame:
        return frames[frame]["faces"]
    return next((f["faces"] for f in frames if f["frame"] == frame), [])


def video_summary(project, video, info, scenes, diarization, tracking):
    """Small per-video record (counts, devices, backends) that the run summary and diagnostics aggregate."""
    tracks = {face["track_id"] for f in tracking["frames"] for face in f["faces"]}
    return {
        "project": project,
        "video": video,
        "duration": info["output"]["duration"],
        "frames": scenes["frame_count"],
        "scenes": len(scenes["scenes"]),
        "speakers": len(diarization["speakers"]),
        "tracks": len(tracks),
        "devices": {
            "convert": info.get("device"),
            "scenes": scenes.get("model", {}).get("device"),
            "diarization": diarization.get("device"),
            "tracking": tracking.get("device"),
        },
        "backends": {
            "convert": info.get("encoder") or info.get("mode"),
            "scenes": scenes.get("model", {}).get("name"),
            "diarization": diarization.get("backend"),
            "tracking": tracking.get("engine"),
        },
    }


# --- the run: every project and video with its status, and the benchmark tables of every rule ---

BENCHMARK_FIELDS = ("s", "max_rss", "cpu_time", "mean_load")


def read_benchmark(path):
    """The first row of a Snakemake benchmark TSV as floats (``-`` and ``NA`` become None)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if len(lines) < 2:
        return None
    row = dict(zip(lines[0].split("\t"), lines[1].split("\t")))
    out = {}
    for key in BENCHMARK_FIELDS:
        try:
            out[key] = float(row.get(key, ""))
        except ValueError:
            out[key] = None
    return out


def collect_benchmarks(root):
    """[{rule, project, video, s, max_rss, ...}] for results/benchmarks/<rule>/<project>[/<video>].tsv."""
    records = []
    for path in sorted(root.rglob("*.tsv")):
        parts = path.relative_to(root).with_suffix("").parts
        bench = read_benchmark(path)
        if bench is None:
            continue
        rule, project, video = parts[0], parts[1] if len(parts) > 1 else None, "/".join(parts[2:]) or None
        records.append({"rule": rule, "project": project, "video": video, **bench})
    return records


def run_items(projects, results_dir, logs_dir, expected):
    """``(projects, videos)`` of the run, each with its status and reason (:mod:`vidflow.status`).

    ``projects`` maps each project to the logs of the jobs before its extraction ({rule: log}, a download's).
    A project is {project, status, reason, manifest (None when extraction did not finish)}; a video is its report
    summary when there is one, else {project, video, duration of the source}, with its status and reason.
    """
    items, videos = [], []
    for project, earlier_logs in sorted(projects.items()):
        manifest_path = Path(results_dir) / project / "extracted" / "manifest.json"
        if not manifest_path.exists():
            status, reason = item_status([manifest_path], {**earlier_logs, **job_logs(logs_dir, project)})
            items.append({"project": project, "status": status, "reason": reason, "manifest": None})
            continue
        manifest = read_json(manifest_path)
        counts = Counter()
        for entry in manifest["videos"]:
            status, reason = video_status(results_dir, logs_dir, project, entry["video"], expected)
            summary = Path(results_dir) / project / entry["video"] / "report" / "summary.json"
            base = read_json(summary) if status == "done" and summary.exists() else {
                "project": project, "video": entry["video"], "duration": entry["duration"]}
            videos.append({**base, "status": status, "reason": reason})
            counts[status] += 1
        status = "failed" if counts["failed"] else "unfinished" if counts["unfinished"] else "done"
        reason = ", ".join(f"{n} video(s) {s}" for s, n in sorted(counts.items()) if s != "done")
        items.append({"project": project, "status": status, "reason": reason, "manifest": manifest})
    return items, videos


def project_table(projects, videos, records):
    """Rows per project: status, videos done and failed, members skipped, media duration and frames of the videos
    done, job time, throughput."""
    rows = []
    for item in projects:
        project = item["project"]
        done = [v for v in videos if v["project"] == project and v["status"] == "done"]
        skipped = reported_skips(item["manifest"]) if item["manifest"] else []
        job_s = sum(r["s"] or 0 for r in records if r["project"] == project)
        duration, frames = sum(v["duration"] for v in done), sum(v.get("frames", 0) for v in done)
        rows.append({"project": project, "status": item["status"], "reason": item["reason"] or NO_LINK,
                     "videos": len(done),
                     "failed": sum(v["project"] == project and v["status"] == "failed" for v in videos),
                     "skipped": len(skipped),
                     "skipped_members": "; ".join(f"{s['member']}: {s['reason']}" for s in skipped) or NO_LINK,
                     "duration_s": round3(duration), "frames": frames, "job_time_s": round(job_s, 2),
                     "throughput_x": round(duration / job_s, 3) if job_s else None,
                     "fps": round(frames / job_s, 1) if job_s else None})
    if len(rows) > 1:
        statuses = {r["status"] for r in rows}
        total = {"project": "all", "status": next(s for s in ("failed", "unfinished", "done") if s in statuses),
                 "reason": NO_LINK, "skipped_members": NO_LINK,
                 "duration_s": round3(sum(r["duration_s"] for r in rows)),
                 **{k: sum(r[k] for r in rows) for k in ("videos", "failed", "skipped", "frames")},
                 "job_time_s": round(sum(r["job_time_s"] for r in rows), 2)}
        total["throughput_x"] = round(total["duration_s"] / total["job_time_s"], 3) if total["job_time_s"] else None
        total["fps"] = round(total["frames"] / total["job_time_s"], 1) if total["job_time_s"] else None
        rows.append(total)
    return rows


def video_table(videos, records):
    """Rows per video: status, duration, scenes, speakers, tracks, job time (s) summed over its rules, throughput."""
    rows = []
    for v in sorted(videos, key=lambda v: (v["project"], v["video"])):
        job_s = sum(r["s"] or 0 for r in records if r["project"] == v["project"] and r["video"] == v["video"])
        rows.append({"project": v["project"], "video": v["video"], "status": v["status"],
                     "reason": v["reason"] or NO_LINK, "duration_s": v["duration"], "frames": v.get("frames"),
                     "scenes": v.get("scenes"), "speakers": v.get("speakers"), "tracks": v.get("tracks"),
                     "job_time_s": round(job_s, 2),
                     "throughput_x": round(v["duration"] / job_s, 3) if job_s and v["status"] == "done" else None})
    return rows
