"""Report, per video: the figures (timeline, contact sheet, scene probabilities), the speakers and face tracks
tables, and the small summary that the run's pages and the diagnostics aggregate."""

import logging
from dataclasses import dataclass
from pathlib import Path

from steps.report.data import speaker_table, track_table, video_summary
from steps.report.pages import exports_page, persons_page, table_page, transcript_page
from steps.report.plots import plot_contact_sheet, plot_scene_probs, plot_timeline
from vidflow.exports import export_rows
from vidflow.io import read_json, write_json, write_text
from vidflow.job import settings_from
from vidflow.tracking_json import read_tracking

log = logging.getLogger("report")

SPEAKER_COLUMNS = [("speaker", "speaker"), ("talk_time_s", "talk time (s)"), ("share_pct", "share of speech (%)"),
                   ("turns", "turns"), ("first_turn_s", "first turn (s)"), ("face_track", "linked face track")]
TRACK_COLUMNS = [("track_id", "track"), ("scene", "scene"), ("first_frame", "first frame"),
                 ("last_frame", "last frame"), ("frames", "frames"), ("mean_score", "mean score"),
                 ("speaker", "speaker")]


@dataclass(frozen=True)
class ReportVideoSettings:
    """``report.max_thumbnails`` and the ``scenes.threshold`` drawn on the probability curve (config/schema.yaml)."""

    max_thumbnails: int
    scene_threshold: float


def report_video(project: str, video: str, inputs: dict, outputs: dict, settings: ReportVideoSettings) -> None:
    """Write one video's report items.

    ``inputs``: paths of ``video`` (the 25 fps video.mp4), ``info`` (video.json), ``scenes``, ``probs``
    (scenes_probs.json), ``diarization``, ``tracking`` (faces.json) and, when transcribe runs, ``transcript``;
    ``outputs``: paths of ``timeline``, ``contact_sheet``, ``scene_probs``, ``speakers``, ``tracks`` and ``summary``.
    """
    info, scenes, probs = read_json(inputs["info"]), read_json(inputs["scenes"]), read_json(inputs["probs"])
    diarization, tracking = read_json(inputs["diarization"]), read_tracking(inputs["tracking"])
    title = f"{project} / {video}"
    transcript = read_json(inputs["transcript"]) if "transcript" in inputs else None  # when transcribe runs
    plot_timeline(outputs["timeline"], title, scenes, diarization, tracking, transcript)
    plot_scene_probs(outputs["scene_probs"], title, probs, scenes, settings.scene_threshold)
    plot_contact_sheet(outputs["contact_sheet"], title, inputs["video"], scenes, tracking, settings.max_thumbnails)
    write_text(outputs["speakers"], table_page(f"Speakers: {title}", speaker_table(diarization, tracking),
                                               SPEAKER_COLUMNS, f"backend {diarization.get('backend')}"))
    write_text(outputs["tracks"], table_page(f"Face tracks: {title}", track_table(tracking, scenes),
                                             TRACK_COLUMNS, f"engine {tracking.get('engine')}"))
    write_json(outputs["summary"], video_summary(project, video, info, scenes, diarization, tracking))
    log.info("report items written to %s", Path(outputs["summary"]).parent)


def report_transcript(project: str, video: str, transcript_path: str, page_path: str) -> None:
    """The video's transcript page (the transcribe step's transcript.json), speaker-coloured."""
    write_text(page_path, transcript_page(f"Transcript: {project} / {video}", read_json(transcript_path)))


def report_exports(project: str, video: str, folder: str, page_path: str, review: bool) -> None:
    """The video's exports page: each file of its export/ folder, what it is for, what it holds, its size."""
    rows = export_rows(folder, video, review)
    write_text(page_path, exports_page(f"Exports: {project} / {video}", rows, review))


def report_persons(project: str, persons_path: str, identity_paths: list[str], page_path: str) -> None:
    """The project's persons page (the identity step's persons.json), each video's timeline coloured by person."""
    identities = {Path(path).parent.name: read_json(path) for path in identity_paths}
    write_text(page_path, persons_page(f"Persons: {project}", read_json(persons_path), identities))


def run(job):
    report_video(job.wildcards["project"], job.wildcards["video"], job.input, job.output,
                 settings_from(ReportVideoSettings, job.settings))


def run_exports(job):
    report_exports(job.wildcards["project"], job.wildcards["video"], str(Path(job.input["eaf"]).parent),
                   job.output["page"], job.settings["review_video"])


def run_persons(job):
    report_persons(job.wildcards["project"], job.input["persons"], job.input["identity"], job.output["page"])


def run_transcript(job):
    report_transcript(job.wildcards["project"], job.wildcards["video"], job.input["transcript"], job.output["page"])
