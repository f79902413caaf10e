"""Step export: one video's results as research files and a review video (results/{project}/{video}/export/).

- ``{video}.eaf`` (ELAN) and ``{video}.TextGrid`` (Praat): the same interval tiers: scenes, one per diarization
  speaker (turns), per face track its visible intervals (labelled with the linked speaker) and its speaking
  intervals, and with a transcript its segments and words per speaker. The EAF links ``../video.mp4``.
- ``{video}.vtt``: speaker turns (or the transcript's segments) as cues with voice tags.
- ``faces.parquet|.csv``: one row per face per frame; ``turns.parquet|.csv``: one row per turn (segment, word).
- ``review.mp4`` (``export.review_video``): see :mod:`steps.export.review`.

``faces.json`` is read once, streamed (:func:`steps.export.data.read_faces`). A transcript
(``results/{project}/{video}/transcript.json``) is optional: ``transcript`` adds its tiers, cues and rows.
"""

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from steps.export.data import annotation_tiers, linked_speakers, read_faces, review_timeline, subtitle_cues, turn_rows
from steps.export.formats import FACE_COLUMNS, TURN_COLUMNS, write_eaf, write_tables, write_textgrid, write_vtt
from steps.export.review import render_review
from vidflow.io import read_json_input
from vidflow.job import settings_from

log = logging.getLogger("export")


@dataclass(frozen=True)
class ExportSettings:
    """The ``export`` config section (keys and defaults: config/schema.yaml)."""

    review_video: bool
    review_width: int
    review_crf: int
    review_preset: str


def export_results(video: str, diarization: str, scenes: str, faces: str, speakers: str | None, output: dict,
                   settings: ExportSettings, transcript: str | None = None, threads: int = 1) -> dict:
    """Write the export files named in ``output`` (keys: eaf, textgrid, vtt, faces_parquet, faces_csv,
    turns_parquet, turns_csv and, with ``settings.review_video``, review); returns counts for the log."""
    started = time.monotonic()
    diarization_data = read_json_input(diarization, "diarization.json", ("segments",))
    scenes_data = read_json_input(scenes, "scenes.json", ("scenes",))
    speakers_data = read_json_input(speakers, "speakers.json", ("tracks",)) if speakers else None
    transcript_data = read_json_input(transcript, "transcript.json", ("segments",)) if transcript else None
    face_data = read_faces(faces)
    log.info("read %s: %d frames, %d face rows in %.2f s", faces, face_data.frame_count,
             len(face_data.rows["frame"]), time.monotonic() - started)
    tiers = annotation_tiers(diarization_data, scenes_data, face_data, speakers_data, transcript_data)
    media = Path(os.path.relpath(os.path.abspath(video), os.path.dirname(os.path.abspath(output["eaf"])))).as_posix()
    write_eaf(output["eaf"], tiers, media)
    write_textgrid(output["textgrid"], tiers, face_data.frame_count / face_data.fps)
    cues = subtitle_cues(diarization_data, speakers_data, transcript_data)
    write_vtt(output["vtt"], cues)
    face_rows = write_tables(face_data.rows, FACE_COLUMNS, output["faces_parquet"], output["faces_csv"])
    turn_count = write_tables(turn_rows(diarization_data, transcript_data), TURN_COLUMNS, output["turns_parquet"],
                              output["turns_csv"])
    log.info("wrote %d tiers (%d annotations), %d cues, %d face rows, %d turn rows in %.2f s", len(tiers),
             sum(len(t.intervals) for t in tiers), len(cues), face_rows, turn_count, time.monotonic() - started)
    summary = {"tiers": [t.name for t in tiers], "cues": len(cues), "face_rows": face_rows, "turn_rows": turn_count}
    if settings.review_video:
        timeline = review_timeline(diarization_data, scenes_data, face_data.frame_count, face_data.fps,
                                   transcript_data)
        frames, seconds = render_review(video, output["review"], face_data, timeline,
                                        linked_speakers(speakers_data), settings.review_width, settings.review_crf,
                                        settings.review_preset, threads)
        log.info("review video: %d frames in %.2f s (%.0f frames/s)", frames, seconds, frames / max(seconds, 1e-6))
        summary["review_frames"] = frames
    log.info("done in %.2f s", time.monotonic() - started)
    return summary


def run(job):
    settings = settings_from(ExportSettings, job.settings)
    export_results(job.input["video"], job.input["diarization"], job.input["scenes"], job.input["faces"],
                   job.input.get("speakers"), job.output, settings, job.input.get("transcript"), job.threads)
