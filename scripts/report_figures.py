"""Report entry point: one video's figures (timeline, contact sheet, scene probabilities) and tables."""

import argparse
import logging
from pathlib import Path

from steps.report import (SPEAKER_COLUMNS, TRACK_COLUMNS, html_table, read_tracking, speaker_table,
                          track_table, video_summary)
from steps.report_plots import plot_contact_sheet, plot_scene_probs, plot_timeline
from vidflow.io import read_json, write_json, write_text
from vidflow.logs import run_main, setup_logging


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--project", required=True)
    parser.add_argument("--video-name", required=True, help="video slug")
    parser.add_argument("--video", required=True, help="the 25 fps video.mp4")
    for name in ("info", "scenes", "probs", "diarization", "tracking"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--threshold", type=float, required=True, help="scene threshold (drawn on the curve)")
    parser.add_argument("--max-thumbnails", type=int, required=True)
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--log")
    args = parser.parse_args(argv)
    setup_logging(args.log)
    out = Path(args.out_dir)
    info, scenes, probs = read_json(args.info), read_json(args.scenes), read_json(args.probs)
    diarization, tracking = read_json(args.diarization), read_tracking(args.tracking)
    title = f"{args.project} / {args.video_name}"
    plot_timeline(out / "timeline.png", title, scenes, diarization, tracking)
    plot_scene_probs(out / "scene_probs.png", title, probs, scenes, args.threshold)
    plot_contact_sheet(out / "contact_sheet.png", title, args.video, scenes, tracking, args.max_thumbnails)
    write_text(out / "speakers.html", html_table(f"Speakers: {title}", speaker_table(diarization, tracking),
                                                 SPEAKER_COLUMNS, f"backend {diarization.get('backend')}"))
    write_text(out / "tracks.html", html_table(f"Face tracks: {title}", track_table(tracking, scenes),
                                               TRACK_COLUMNS, f"engine {tracking.get('engine')}"))
    write_json(out / "summary.json",
               video_summary(args.project, args.video_name, info, scenes, diarization, tracking))
    logging.getLogger("report").info("report items written to %s", out)


if __name__ == "__main__":
    run_main(main)
