"""Validate a video's export folder (for ``finalize``): every file is what its format requires.

Standard library, plus lxml when the env has it: the ``.eaf`` is validated against ELAN's EAF 3.0 XSD
(``schemas/EAFv3.0.xsd``) with lxml, else parsed as XML and checked for the elements ELAN needs. ``.TextGrid``: Praat's
long text format with interval tiers only; ``.vtt``: the WebVTT signature and well-formed, ordered cue timings;
Parquet: the ``PAR1`` magic at both ends; CSV: the expected header; ``review.mp4``: H.264 with the frame count of
``video.mp4`` (ffprobe). :func:`check_exports` raises one :class:`UserError` naming the first bad file and why.
"""

import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

from vidflow.errors import UserError
from vidflow.exports import export_files

EAF_XSD = Path(__file__).resolve().parents[3] / "schemas" / "EAFv3.0.xsd"
FACE_HEADER = ["frame", "time", "track_id", "x", "y", "w", "h", "score", "speaking", "speaker"]
TURN_HEADER = ["kind", "start", "end", "duration", "speaker", "text", "probability", "track_id"]
CUE = re.compile(r"^((?:\d{2,}:)?\d{2}:\d{2}\.\d{3}) --> ((?:\d{2,}:)?\d{2}:\d{2}\.\d{3})(?: .*)?$")


def check_eaf(path):
    """Raise UserError unless ``path`` is a valid EAF 3.0 document (XSD with lxml; structure without it)."""
    try:
        from lxml import etree  # noqa: PLC0415 - optional: the export env has it
    except ImportError:
        etree = None
    if etree is not None:
        schema = etree.XMLSchema(etree.parse(str(EAF_XSD)))
        try:
            document = etree.parse(str(path))
        except etree.XMLSyntaxError as err:
            raise UserError(path, f"not XML: {err}") from None
        if not schema.validate(document):
            raise UserError(path, f"not valid against {EAF_XSD.name}: {schema.error_log.last_error}")
        return "xsd"
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as err:
        raise UserError(path, f"not XML: {err}") from None
    header, order = root.find("HEADER"), root.find("TIME_ORDER")
    if root.tag != "ANNOTATION_DOCUMENT" or header is None or order is None or root.find("TIER") is None:
        raise UserError(path, "not an ELAN document (ANNOTATION_DOCUMENT with HEADER, TIME_ORDER and TIER)")
    slots = {s.get("TIME_SLOT_ID") for s in order.iter("TIME_SLOT")}
    for annotation in root.iter("ALIGNABLE_ANNOTATION"):
        if not {annotation.get("TIME_SLOT_REF1"), annotation.get("TIME_SLOT_REF2")} <= slots:
            raise UserError(path, f"annotation {annotation.get('ANNOTATION_ID')} refers to a missing time slot")
    return "structure"


def check_textgrid(path):
    lines = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines()]
    if lines[:2] != ['File type = "ooTextFile"', 'Object class = "TextGrid"']:
        raise UserError(path, "not a Praat TextGrid (long text format)")
    classes = [line for line in lines if line.startswith("class = ")]
    size = next((int(line.split("=")[1]) for line in lines if line.startswith("size = ")), -1)
    if size < 1 or len(classes) != size or any(c != 'class = "IntervalTier"' for c in classes):
        raise UserError(path, f"expected interval tiers only, found {size} tiers: {sorted(set(classes))}")


def _seconds(stamp):
    parts = [float(p) for p in stamp.split(":")]
    return sum(p * 60 ** k for k, p in enumerate(reversed(parts)))


def check_vtt(path):
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    if not lines or not lines[0].startswith("WEBVTT"):
        raise UserError(path, "not WebVTT (no WEBVTT signature)")
    previous = 0.0
    for number, line in enumerate(lines, 1):
        if "-->" in line:
            match = CUE.match(line)
            if not match or _seconds(match[1]) >= _seconds(match[2]) or _seconds(match[1]) < previous:
                raise UserError(path, f"line {number}: bad or unordered cue timing {line!r}")
            previous = _seconds(match[1])


def check_parquet(path):
    with open(path, "rb") as handle:
        start = handle.read(4)
        handle.seek(-4, 2)
        end = handle.read(4)
    if start != b"PAR1" or end != b"PAR1":
        raise UserError(path, "not a Parquet file (no PAR1 magic at both ends)")


def check_csv(path, header):
    with open(path, encoding="utf-8") as handle:
        first = handle.readline().strip().replace('"', "").split(",")
    if first[:len(header)] != header:
        raise UserError(path, f"header {first[:len(header)]} is not {header}")


def video_frames(path):
    """(codec, frame count) of the first video stream (ffprobe counts packets: one per frame for H.264)."""
    proc = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_packets", "-show_entries",
                           "stream=codec_name,nb_read_packets", "-of", "csv=p=0", str(path)],
                          capture_output=True, text=True, check=False)
    fields = proc.stdout.strip().split(",")
    if proc.returncode != 0 or len(fields) != 2 or not fields[1].isdigit():
        raise UserError(path, f"ffprobe cannot read it: {proc.stderr.strip() or 'no video stream'}")
    return fields[0], int(fields[1])


def check_exports(folder, video, source_video, review=True):
    """Check every export file of ``video`` in ``folder``; returns how the EAF was checked (``xsd`` or
    ``structure``). ``source_video`` is the ``video.mp4`` whose frame count the review video must have."""
    files = export_files(folder, video, review)
    for path in files.values():
        if not path.is_file() or path.stat().st_size == 0:
            raise UserError(path, "missing or empty")
    how = check_eaf(files[f"{video}.eaf"])
    check_textgrid(files[f"{video}.TextGrid"])
    check_vtt(files[f"{video}.vtt"])
    for table, header in (("faces", FACE_HEADER), ("turns", TURN_HEADER)):
        check_parquet(files[f"{table}.parquet"])
        check_csv(files[f"{table}.csv"], header)
    if review:
        codec, frames = video_frames(files["review.mp4"])
        expected = video_frames(source_video)[1]
        if codec != "h264" or frames != expected:
            raise UserError(files["review.mp4"], f"{codec} with {frames} frames, expected h264 with {expected}")
    return how
