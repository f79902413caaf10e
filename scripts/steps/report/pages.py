"""The report's HTML pages, rendered from the jinja2 templates in ``reports/templates/`` (autoescaped).

A video's ``speakers.html`` and ``tracks.html`` are pages of one table (:func:`table_page`); the run's ``run.html``,
``benchmarks.html`` and ``diagnostics.html`` titled pages of several (:func:`tables_page`). The driver renders
``run.html`` too (the ``onerror`` handler, rules/run_end.smk), so this module needs jinja2 and the standard
library only.
"""

import html
from functools import cache
from pathlib import Path

import jinja2
from markupsafe import Markup

from steps.report.data import collect_benchmarks, project_table, run_items, video_table
from steps.report.persons import person_timeline, persons_rows, unassigned_note
from steps.report.transcript import LOW_PROBABILITY, clock, speaker_colours

TEMPLATES = Path(__file__).resolve().parents[3] / "reports" / "templates"

PROJECT_COLUMNS = [("project", "project"), ("status", "status"), ("reason", "reason"), ("videos", "videos done"),
                   ("failed", "videos failed"), ("skipped", "members skipped"), ("skipped_members", "skipped members"),
                   ("duration_s", "duration (s)"), ("frames", "frames"), ("job_time_s", "job time (s)"),
                   ("throughput_x", "throughput (x real time)"), ("fps", "frames per job second")]
VIDEO_COLUMNS = [("project", "project"), ("video", "video"), ("status", "status"), ("reason", "reason"),
                 ("duration_s", "duration (s)"), ("frames", "frames"), ("scenes", "scenes"),
                 ("speakers", "speakers"), ("tracks", "face tracks"), ("job_time_s", "job time (s)"),
                 ("throughput_x", "throughput (x real time)")]


def escape(value):
    """What a template prints, escaped as Python's ``html.escape`` does (quotes as ``&quot;`` and ``&#x27;``, where
    markupsafe writes ``&#34;`` and ``&#39;``), so the pages keep the bytes they had; markup that the templates
    themselves build (a macro's output) is left as it is."""
    return value if isinstance(value, Markup) else Markup(html.escape(str(value)))


@cache
def templates():
    return jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, finalize=escape,
                              keep_trailing_newline=True, undefined=jinja2.StrictUndefined)


def table_page(title: str, rows: list[dict], columns: list[tuple[str, str]], note: str = "") -> str:
    """A page with one table titled ``title``: ``rows`` [{key: value}], ``columns`` [(key, label)]."""
    return templates().get_template("table_page.html.j2").render(title=title, rows=rows, columns=columns, note=note)


EXPORT_COLUMNS = [("file", "file"), ("for", "for"), ("holds", "holds"), ("size", "size")]
REVIEW_NOTE = ("the review video (face boxes green while speaking, track ids, speakers, scene numbers) is under "
               "Review video in this report")


def exports_page(title: str, rows: list[dict], review: bool) -> str:
    """A video's exports page: ``rows`` of vidflow.exports.export_rows, and where the review video is."""
    return table_page(title, rows, EXPORT_COLUMNS, REVIEW_NOTE if review else "")


def transcript_page(title: str, transcript: dict) -> str:
    """A video's transcript (transcript.json of the transcribe step) as a page, speaker-coloured."""
    engine = transcript.get("engine", {})
    about = f"{engine.get('name', '?')} on {engine.get('device', '?')}"
    if transcript.get("language"):
        about += f", language {transcript['language']}"
    colours = speaker_colours(transcript)
    segments = [{"time": clock(s["start"]), "speaker": s["speaker"] or "UNKNOWN",
                 "colour": colours.get(s["speaker"], "#777777"),
                 "face": "" if s["track_id"] is None else f"face {s['track_id']}",
                 "words": [{"word": w["word"], "faded": w["probability"] < LOW_PROBABILITY,
                            "p": f"{w['probability']:.2f}"} for w in s["words"]]}
                for s in transcript.get("segments", ())]
    return templates().get_template("transcript_page.html.j2").render(
        title=title, about=about, segments=segments, word_count=transcript.get("word_count", 0))


def persons_page(title: str, persons: dict, identities: dict) -> str:
    """A project's persons page: persons.json's persons as a table, then each video's timeline coloured by person
    (``identities`` {video: identity.json content}, in the project's order)."""
    timelines = [(video, Markup(person_timeline(persons, video, identity))) for video, identity in identities.items()]
    return templates().get_template("persons_page.html.j2").render(
        title=title, rows=persons_rows(persons), note=unassigned_note(persons), timelines=timelines)


def tables_page(title: str, sections: list[tuple[str, list[dict], list[tuple[str, str]], str]]) -> str:
    """A page titled ``title`` with one table per section: ``sections`` [(heading, rows, columns, note)]."""
    sections = [{"heading": h, "rows": rows, "columns": columns, "note": note} for h, rows, columns, note in sections]
    return templates().get_template("tables_page.html.j2").render(title=title, sections=sections)


def run_page(projects: dict, results_dir: str, logs_dir: str, expected: list[str], benchmarks_dir: str) -> str:
    """The run summary page (results/report/run.html): every project and every video with its status.

    ``projects`` maps each project to the logs of the jobs before its extraction ({rule: log}, a download's);
    ``expected``: a video's outputs relative to its folder (all there: it is done).
    """
    items, videos = run_items(projects, results_dir, logs_dir, expected)
    records = collect_benchmarks(Path(benchmarks_dir))
    note = ("job time: wall time of the jobs summed (jobs may run in parallel); throughput: media seconds per job "
            "second; duration and frames: of the videos done")
    return tables_page("Run summary", [("Projects", project_table(items, videos, records), PROJECT_COLUMNS, note),
                                       ("Videos", video_table(videos, records), VIDEO_COLUMNS, "")])
