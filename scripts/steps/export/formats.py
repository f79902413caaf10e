"""The research export files, written by the maintained library of each format (the export env only).

ELAN ``.eaf``: pympi-ling, checked against ELAN's EAF 3.0 XSD (``schemas/EAFv3.0.xsd``) with lxml before it is
published; Praat ``.TextGrid``: praatio (long text format, read back); WebVTT: webvtt-py (read back); tables:
pyarrow (Parquet with per-column units in the field metadata, and CSV). Every file is written to a temporary name
and renamed when complete, and equal inputs give equal bytes (the EAF's DATE is fixed, see ``EAF_DATE``).
"""

import html
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import webvtt
from lxml import etree
from praatio import textgrid
from pympi import Elan

from vidflow.errors import UserError
from vidflow.io import atomic_path

EAF_XSD = Path(__file__).resolve().parents[3] / "schemas" / "EAFv3.0.xsd"
EAF_SCHEMA_URL = "http://www.mpi.nl/tools/elan/EAFv3.0.xsd"
# DATE is required by the EAF schema; a fixed value keeps reruns byte-identical (the run's provenance has the date)
EAF_DATE = "1970-01-01T00:00:00+00:00"
EAF_AUTHOR = "video analysis workflow (export step)"


def milliseconds(seconds):
    return int(round(seconds * 1000))


def eaf_text(tiers, media):
    """The EAF 3.0 document of ``tiers`` (time-aligned top-level tiers) linked to the video at URL ``media``."""
    eaf = Elan.Eaf(author=EAF_AUTHOR)
    eaf.adocument.update({"DATE": EAF_DATE, "VERSION": "3.0", "FORMAT": "3.0",
                          "xsi:noNamespaceSchemaLocation": EAF_SCHEMA_URL})
    eaf.remove_tier("default")
    eaf.add_linked_file(media, relpath=media, mimetype="video/mp4")
    for tier in tiers:
        eaf.add_tier(tier.name, part=tier.participant)
        for start, end, label in tier.intervals:
            start, end = milliseconds(start), milliseconds(end)
            if end > start:
                eaf.add_annotation(tier.name, start, end, label)
    eaf.properties = [("lastUsedAnnotationId", eaf.maxaid)]  # as ELAN names it (pympi writes lastUsedAnnotation)
    return Elan.to_string(eaf, encoding="unicode")


def check_eaf(text, subject):
    """Raise UserError unless ``text`` is valid against ELAN's EAF 3.0 XSD."""
    schema = etree.XMLSchema(etree.parse(str(EAF_XSD)))
    document = etree.fromstring(text.encode("utf-8"))
    if not schema.validate(document):
        raise UserError(subject, f"not valid against {EAF_XSD.name}: {schema.error_log.last_error}")


def write_eaf(path, tiers, media):
    text = '<?xml version="1.0" encoding="UTF-8"?>\n' + eaf_text(tiers, media) + "\n"
    check_eaf(text, path)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_textgrid(path, tiers, duration):
    """Interval tiers over ``[0, duration]``, gaps as empty intervals (as Praat needs), read back after writing."""
    end = max([duration, *(i[1] for tier in tiers for i in tier.intervals)])
    grid = textgrid.Textgrid(0, end)
    for tier in tiers:
        grid.addTier(textgrid.IntervalTier(tier.name, list(tier.intervals), 0, end))
    with atomic_path(path) as tmp:
        grid.save(str(tmp), format="long_textgrid", includeBlankSpaces=True, reportingMode="error")
        back = textgrid.openTextgrid(str(tmp), includeEmptyIntervals=False)
        if back.tierNames != tuple(t.name for t in tiers):
            raise UserError(path, "praatio does not read back the tiers it wrote")


def vtt_time(seconds):
    ms = milliseconds(seconds)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def write_vtt(path, cues):
    """WebVTT cues ``(start, end, voice, text)`` with voice tags (``<v SPEAKER_00>...``), read back after writing."""
    vtt = webvtt.WebVTT()
    for start, end, voice, text in cues:
        vtt.captions.append(webvtt.Caption(vtt_time(start), vtt_time(end),
                                           f"<v {html.escape(voice, quote=False)}>{html.escape(text, quote=False)}"))
    content = vtt.content
    if len(webvtt.from_string(content).captions) != len(cues):
        raise UserError(path, "webvtt-py does not read back the cues it wrote")
    with atomic_path(path) as tmp:
        tmp.write_text(content, encoding="utf-8")


# Column types and units of the tables (the README's table documents the same; units go in the Parquet metadata)
FACE_COLUMNS = {
    "frame": (pa.int32(), "0-based frame of the 25 fps video.mp4"),
    "time": (pa.float64(), "s: frame / fps, the frame's start"),
    "track_id": (pa.int32(), "face track id (stable within a scene)"),
    "x": (pa.float64(), "px: left edge of the face box in video.mp4"),
    "y": (pa.float64(), "px: top edge"),
    "w": (pa.float64(), "px: box width"),
    "h": (pa.float64(), "px: box height"),
    "score": (pa.float64(), "0..1 detection confidence (null: engine gives none)"),
    "speaking": (pa.bool_(), "the face speaks in this frame (null: speakers not linked)"),
    "speaker": (pa.string(), "diarization speaker the face speaks for (null: none)"),
}
EXTRA_FACE_COLUMNS = {"blendshape_": (pa.float64(), "0..1 blendshape score (MediaPipe names)"),
                      "head_": (pa.float64(), "degrees: head pose angle, as the tracking engine gives it")}
TURN_COLUMNS = {
    "kind": (pa.string(), "turn (diarization), segment or word (transcript)"),
    "start": (pa.float64(), "s"),
    "end": (pa.float64(), "s"),
    "duration": (pa.float64(), "s: end - start"),
    "speaker": (pa.string(), "diarization speaker (null: unknown)"),
    "text": (pa.string(), "transcript text (null for turns)"),
    "probability": (pa.float64(), "0..1 word probability of the speech recogniser (null for turns, segments)"),
    "track_id": (pa.int32(), "face track the words are linked to (null: none)"),
}


def arrow_table(columns, types):
    """A pyarrow table of ``columns`` (name -> values) typed by ``types`` (name -> (type, description))."""
    fields, arrays = [], []
    for name, values in columns.items():
        kind, description = types.get(name) or next(v for k, v in EXTRA_FACE_COLUMNS.items() if name.startswith(k))
        fields.append(pa.field(name, kind, metadata={"description": description}))
        arrays.append(pa.array(values, type=kind))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def write_tables(columns, types, parquet_path, csv_path):
    """The same table as Parquet (zstd) and CSV (header row, quotes only where needed, empty cell = null)."""
    table = arrow_table(columns, types)
    with atomic_path(parquet_path) as tmp:
        pq.write_table(table, str(tmp), compression="zstd")
        if pq.read_table(str(tmp)).num_rows != table.num_rows:
            raise UserError(parquet_path, "pyarrow does not read back the rows it wrote")
    with atomic_path(csv_path) as tmp:
        pacsv.write_csv(table, str(tmp), pacsv.WriteOptions(quoting_style="needed"))
    return table.num_rows
