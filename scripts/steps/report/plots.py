"""Review report, drawing side: static PNG figures with matplotlib (Agg backend, renders offline).

Only the report env imports this module. Frames for the contact sheet are decoded one at a time with ffmpeg.
"""

import logging
import subprocess

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from steps.report import data  # noqa: E402
from steps.report.transcript import timeline_rows  # noqa: E402
from vidflow.errors import UserError  # noqa: E402
from vidflow.io import atomic_path  # noqa: E402
from vidflow.turns import overlapped_spans  # noqa: E402

log = logging.getLogger("report")
DPI = 100
# Fixed metadata: PNGs do not carry the matplotlib version or a timestamp, so equal data gives equal bytes.
PNG_META = {"Software": None}
COLORS = plt.get_cmap("tab10").colors


def save(fig, path):
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=DPI, metadata=PNG_META)
    plt.close(fig)


def plot_timeline(path, title, scenes, diarization, tracking, transcript=None):
    """Scene cuts, speaker turns (coloured bars, one row per speaker, hatched where speakers overlap; the transcript's
    words as ticks on them when given), faces per frame and speaking faces (if tracked)."""
    fps = scenes["fps"]
    duration = scenes["frame_count"] / fps
    frames, counts, speaking = data.faces_per_frame(tracking)
    turns = data.speaker_turns(diarization)
    rows = 3 if speaking is None else 4
    fig, axes = plt.subplots(rows, 1, figsize=(11, 1.3 + 1.1 * rows + 0.25 * len(turns)), sharex=True,
                             gridspec_kw={"height_ratios": [0.6, max(1, 0.5 * len(turns)), 1, 1][:rows]})
    ax = axes[0]
    for i, scene in enumerate(scenes["scenes"]):
        ax.axvspan(scene["start_time"], scene["end_time"] + 1 / fps, color="0.85" if i % 2 else "0.7")
        ax.text((scene["start_time"] + scene["end_time"]) / 2, 0.5, str(i + 1), ha="center", va="center", fontsize=8)
    ax.set_yticks([])
    ax.set_ylabel("scenes", rotation=0, ha="right", va="center")
    ax = axes[1]
    for i, (_speaker, spans) in enumerate(turns.items()):
        ax.broken_barh(spans, (i - 0.4, 0.8), color=COLORS[i % len(COLORS)])
    draw_overlaps(ax, diarization["segments"])
    rows_of = {speaker: i for i, speaker in enumerate(turns)}
    for speaker, words in transcript_words(transcript):
        if speaker in rows_of:
            ax.plot([w[0] for w in words], [rows_of[speaker]] * len(words), "|", color="k", ms=7, alpha=0.6)
    if turns:
        ax.set_yticks(range(len(turns)), list(turns))
    else:  # no speech at all (or no audio track)
        ax.set_yticks([])
        ax.text(duration / 2, 0, "no speech", ha="center", va="center", fontsize=8, color="0.4")
    ax.set_ylim(-0.6, max(len(turns), 1) - 0.4)
    ax.invert_yaxis()
    ax.set_ylabel("speakers", rotation=0, ha="right", va="center")
    ax = axes[2]
    times = np.asarray(frames, dtype=float) / fps
    ax.step(times, counts, where="post", color="tab:blue")
    ax.set_ylim(-0.2, max(counts + [1]) + 0.5)
    ax.set_ylabel("faces", rotation=0, ha="right", va="center")
    if speaking is not None:
        axes[3].step(times, speaking, where="post", color="tab:red")
        axes[3].set_ylim(-0.2, max(speaking + [1]) + 0.5)
        axes[3].set_ylabel("speaking\nfaces", rotation=0, ha="right", va="center")
    for ax in axes:
        for cut in data.scene_cuts(scenes):
            ax.axvline(cut, color="k", lw=0.8, ls="--")
    axes[-1].set_xlim(0, duration)
    axes[-1].set_xlabel("time (s)")
    axes[0].set_title(title)
    fig.tight_layout()
    save(fig, path)


def draw_overlaps(ax, segments):
    """Hatch the stretches where two or more speakers talk at once across the speakers' rows; returns the patches."""
    return [ax.axvspan(start, end, facecolor="none", edgecolor="0.25", hatch="////", lw=0)
            for start, end in overlapped_spans(segments)]


def transcript_words(transcript):
    """``[(speaker, [(start, end, word), ...])]`` of a transcript (none without one)."""
    return [(speaker, words) for speaker, _, words in timeline_rows(transcript)] if transcript else []


def plot_scene_probs(path, title, probs, scenes, threshold):
    """TransNetV2's per-frame transition probability, the threshold and the detected cuts."""
    p = np.asarray(probs["probabilities"], dtype=float)
    t = np.arange(len(p)) / probs["fps"]
    fig, ax = plt.subplots(figsize=(11, 2.8))
    ax.plot(t, p, color="tab:purple", lw=1)
    ax.axhline(threshold, color="tab:red", lw=0.8, ls=":", label=f"threshold {threshold}")
    for i, cut in enumerate(data.scene_cuts(scenes)):
        ax.axvline(cut, color="k", lw=0.8, ls="--", label="cut" if i == 0 else None)
    ax.set_xlim(0, max(len(p), 1) / probs["fps"])
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("transition probability")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    save(fig, path)


def decode_frame(video, frame, fps, width, height):
    """One RGB frame (H x W x 3) by accurate seek: the first frame at or after half a frame before ``frame``."""
    cmd = ["ffmpeg", "-v", "error", "-nostdin", "-ss", f"{max(frame - 0.5, 0) / fps:.4f}", "-i", str(video),
           "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    proc = subprocess.run(cmd, capture_output=True, check=False)
    expected = width * height * 3
    if proc.returncode != 0 or len(proc.stdout) < expected:
        raise UserError(f"{video}: cannot decode frame {frame}: {proc.stderr.decode(errors='replace').strip()[-200:]}")
    return np.frombuffer(proc.stdout[:expected], dtype=np.uint8).reshape(height, width, 3)


def plot_contact_sheet(path, title, video, scenes, tracking, max_thumbnails, columns=4):
    """One mid-scene thumbnail per scene with the tracked face boxes and track ids drawn on it."""
    picks = data.thumbnail_frames(scenes, max_thumbnails)
    width, height, fps = tracking["width"], tracking["height"], scenes["fps"]
    cols = max(1, min(columns, len(picks)))
    rows = max(1, -(-len(picks) // cols))
    cell_w = 3.2
    fig, axes = plt.subplots(rows, cols, figsize=(cell_w * cols, cell_w * height / width * rows + 0.4 * rows + 0.5),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (number, frame) in zip(axes.flat, picks):
        ax.imshow(decode_frame(video, frame, fps, width, height))
        for face in data.faces_at(tracking, frame):
            x, y, w, h = face["bbox"]
            color = COLORS[face["track_id"] % len(COLORS)]
            ax.add_patch(Rectangle((x, y), w, h, fill=False, lw=1.5, edgecolor=color))
            ax.text(x, y - 2, f"#{face['track_id']}", color="white", fontsize=7, va="bottom",
                    bbox={"facecolor": color, "edgecolor": "none", "pad": 1})
        ax.set_title(f"scene {number} - frame {frame} ({frame / fps:.2f} s)", fontsize=8)
    fig.suptitle(title + (f" ({len(picks)} of {len(scenes['scenes'])} scenes)"
                          if len(picks) < len(scenes["scenes"]) else ""), fontsize=10)
    fig.tight_layout()
    save(fig, path)
    log.info("contact sheet: %d thumbnail(s)", len(picks))


def plot_benchmarks(path, records):
    """Wall time of every per-video job, stacked by rule, one bar per video."""
    videos = sorted({(r["project"], r["video"]) for r in records if r["video"]})
    rules = sorted({r["rule"] for r in records if r["video"]})
    fig, ax = plt.subplots(figsize=(10, 1.2 + 0.45 * max(len(videos), 1)))
    left = np.zeros(len(videos))
    for i, rule in enumerate(rules):
        secs = np.array([sum(r["s"] or 0 for r in records if (r["project"], r["video"]) == v and r["rule"] == rule)
                         for v in videos])
        ax.barh(range(len(videos)), secs, left=left, color=COLORS[i % len(COLORS)], label=rule)
        left += secs
    ax.set_yticks(range(len(videos)), [f"{p}/{v}" for p, v in videos] or [""])
    ax.invert_yaxis()
    ax.set_xlabel("job wall time (s)")
    ax.set_title("Per-video job time by rule (from results/benchmarks)")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
    fig.tight_layout()
    save(fig, path)
