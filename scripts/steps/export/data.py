"""What the research exports say, as plain data (standard library only, so the driver's tests import it).

One streamed pass over ``faces.json`` (:func:`read_faces`) gives the per-frame face rows, the face tracks' visible
and speaking intervals and what the review video draws. :func:`annotation_tiers` turns diarization, scenes, faces and
(optionally) a transcript into named interval tiers, the one model behind the ELAN and Praat files;
:func:`turn_rows` and :func:`subtitle_cues` give the turns table and the WebVTT cues; :func:`review_timeline` what the
review video shows beside the boxes (scene number, current speakers, transcript line) frame by frame.
Times are seconds; a frame ``f`` covers ``[f / fps, (f + 1) / fps)``.
"""

import json
from dataclasses import dataclass, field

from vidflow.errors import UserError
from vidflow.jsonstream import read_document

UNKNOWN_SPEAKER = "unknown speaker"


@dataclass(frozen=True)
class Tier:
    """A named tier of non-overlapping ``(start, end, label)`` intervals (seconds); ``participant`` for ELAN."""

    name: str
    intervals: tuple
    participant: str | None = None


@dataclass
class Faces:
    """What the exports need from ``faces.json``: table columns, per-frame boxes, per-track frame runs."""

    fps: float
    width: int
    height: int
    frame_count: int
    rows: dict = field(default_factory=dict)  # column name -> list of values, one per face per frame
    boxes: list = field(default_factory=list)  # per frame: [(track_id, x, y, w, h, speaking, speaker), ...]


BASE_COLUMNS = ("frame", "time", "track_id", "x", "y", "w", "h", "score", "speaking", "speaker")
HEAD_POSE = ("yaw", "pitch", "roll")


def read_faces(path) -> Faces:
    """``faces.json`` (or ``tracking.json``) read one frame at a time; landmarks are not kept."""
    try:
        header, items = read_document(path, "frames", without=("landmarks",))
        base = {name: [] for name in BASE_COLUMNS}
        extra, boxes, n = {}, [], 0
        for expected, frame in enumerate(items):
            if frame["frame"] != expected:
                raise ValueError(f"frames are not numbered 0, 1, 2, ... (frame {frame['frame']} at {expected})")
            drawn = []
            for face in frame["faces"]:
                track, (x, y, w, h) = int(face["track_id"]), (float(v) for v in face["bbox"])
                speaking, speaker = face.get("speaking"), face.get("speaker")
                for name, value in zip(BASE_COLUMNS, (expected, None, track, x, y, w, h, face.get("score"),
                                                      speaking, speaker)):
                    base[name].append(value)
                for name, value in sorted(face.get("blendshapes", {}).items()):
                    extra.setdefault(f"blendshape_{name}", {})[n] = float(value)
                for name in HEAD_POSE if "head_pose" in face else ():
                    extra.setdefault(f"head_{name}", {})[n] = float(face["head_pose"][name])
                drawn.append((track, x, y, w, h, bool(speaking), speaker))
                n += 1
            boxes.append(drawn)
        fps = float(header["fps"])
        faces = Faces(fps, int(header["width"]), int(header["height"]), int(header["frame_count"]), boxes=boxes)
    except (OSError, json.JSONDecodeError) as err:
        raise UserError(path, f"cannot read: {err}") from None
    except (KeyError, TypeError, ValueError) as err:
        raise UserError(path, f"not a faces.json: {err.__class__.__name__} {err}") from None
    if len(boxes) != faces.frame_count:
        raise UserError(path, f"lists {len(boxes)} frames, but its frame_count is {faces.frame_count}")
    base["time"] = [round(f / fps, 3) for f in base["frame"]]
    faces.rows = {**base, **{name: [values.get(i) for i in range(n)] for name, values in sorted(extra.items())}}
    return faces


def frame_runs(frames):
    """``[(first, last), ...]``: the runs of consecutive frame numbers in the sorted ``frames``."""
    runs = []
    for f in frames:
        if runs and f == runs[-1][1] + 1:
            runs[-1][1] = f
        else:
            runs.append([f, f])
    return [tuple(run) for run in runs]


def clean_intervals(intervals, merge_equal=True):
    """Sorted, non-overlapping ``(start, end, label)`` (ELAN and Praat tiers need them): an interval that overlaps
    the previous one is merged with it when the labels are equal (``merge_equal``), else starts where it ends;
    empty ones are dropped."""
    out = []
    for start, end, label in sorted(intervals, key=lambda i: (i[0], i[1])):
        if out and start < out[-1][1]:
            if merge_equal and label == out[-1][2]:
                out[-1] = (out[-1][0], max(end, out[-1][1]), label)
                continue
            start = out[-1][1]
        if end > start:
            out.append((start, end, label))
    return out


def linked_speakers(speakers):
    """track id -> the diarization speaker that ``speakers.json`` linked to it (unlinked tracks are left out)."""
    return {int(t["track_id"]): t["speaker"] for t in (speakers or {}).get("tracks", []) if t.get("speaker")}


def face_tiers(faces: Faces, links, fps):
    """Per face track: ``face N`` (visible intervals, labelled with its linked speaker or ``unlinked``) and, when it
    ever speaks, ``face N speaking`` (intervals labelled with the speaker it speaks for)."""
    visible, speaking = {}, {}
    for frame, drawn in enumerate(faces.boxes):
        for track, *_, is_speaking, speaker in drawn:
            visible.setdefault(track, []).append(frame)
            if is_speaking:
                speaking.setdefault(track, []).append((frame, speaker or links.get(track) or "speaking"))
    tiers = []
    for track in sorted(visible):
        label = links.get(track, "unlinked")
        runs = [(a / fps, (b + 1) / fps, label) for a, b in frame_runs(visible[track])]
        tiers.append(Tier(f"face {track}", tuple(runs), links.get(track)))
        if track in speaking:
            spoken = []
            for frame, speaker in speaking[track]:
                if spoken and spoken[-1][1] == frame - 1 and spoken[-1][2] == speaker:
                    spoken[-1][1] = frame
                else:
                    spoken.append([frame, frame, speaker])
            runs = [(a / fps, (b + 1) / fps, speaker) for a, b, speaker in spoken]
            tiers.append(Tier(f"face {track} speaking", tuple(runs), links.get(track)))
    return tiers


def transcript_items(transcript):
    """``(segments, words)`` of a transcript dict: segments ``{start, end, text, speaker}``, words ``{start, end,
    word, probability, speaker, track_id}``; words come from a top-level ``words`` list or from the segments'."""
    if not transcript:
        return [], []
    segments = [dict(s) for s in transcript.get("segments", [])]
    words = list(transcript.get("words") or [w for s in segments for w in s.get("words", [])])
    for segment in segments:
        segment["text"] = str(segment.get("text", "")).strip() or \
            " ".join(str(w.get("word", "")).strip() for w in segment.get("words", []))
    return segments, [dict(w, word=str(w.get("word", "")).strip()) for w in words]


def annotation_tiers(diarization, scenes, faces: Faces, speakers=None, transcript=None):
    """The tiers of the ELAN and Praat files, in this order: ``scenes``, one per diarization speaker (its turns),
    with a transcript ``<speaker> transcript`` (segments) and ``<speaker> words`` per speaker, then per face track
    ``face N`` and ``face N speaking`` (:func:`face_tiers`)."""
    fps = faces.fps
    tiers = [Tier("scenes", tuple((s["start_frame"] / fps, (s["end_frame"] + 1) / fps, f"scene {n}")
                                  for n, s in enumerate(scenes["scenes"], 1)))]
    names = list(diarization.get("speakers") or dict.fromkeys(s["speaker"] for s in diarization["segments"]))
    for name in names:
        turns = [(s["start"], s["end"], name) for s in diarization["segments"] if s["speaker"] == name]
        tiers.append(Tier(name, tuple(clean_intervals(turns)), name))
    segments, words = transcript_items(transcript)
    spoken = dict.fromkeys([*names, *(s.get("speaker") or UNKNOWN_SPEAKER for s in segments + words)])
    for name in spoken:
        lines = [(s["start"], s["end"], s["text"]) for s in segments if (s.get("speaker") or UNKNOWN_SPEAKER) == name]
        said = [(w["start"], w["end"], w["word"]) for w in words if (w.get("speaker") or UNKNOWN_SPEAKER) == name]
        if lines:
            tiers.append(Tier(f"{name} transcript", tuple(clean_intervals(lines, False)), name))
        if said:
            tiers.append(Tier(f"{name} words", tuple(clean_intervals(said, False)), name))
    return tiers + face_tiers(faces, linked_speakers(speakers), fps)


TURN_COLUMNS = ("kind", "start", "end", "duration", "speaker", "text", "probability", "track_id")


def turn_rows(diarization, transcript=None):
    """Columns of the turns table: one row per speaker turn (``kind`` ``turn``) and, with a transcript, per
    transcript segment (``segment``) and word (``word``); sorted by start, kind, speaker."""
    rows = [("turn", s["start"], s["end"], s["speaker"], None, None, None) for s in diarization["segments"]]
    segments, words = transcript_items(transcript)
    rows += [("segment", s["start"], s["end"], s.get("speaker"), s["text"], None, s.get("track_id"))
             for s in segments]
    rows += [("word", w["start"], w["end"], w.get("speaker"), w["word"], w.get("probability"), w.get("track_id"))
             for w in words]
    order = {"turn": 0, "segment": 1, "word": 2}
    rows.sort(key=lambda r: (r[1], order[r[0]], r[3] or "", r[2]))
    columns = {name: [] for name in TURN_COLUMNS}
    for kind, start, end, speaker, text, probability, track in rows:
        values = (kind, float(start), float(end), round(end - start, 3), speaker, text,
                  None if probability is None else float(probability), None if track is None else int(track))
        for name, value in zip(TURN_COLUMNS, values):
            columns[name].append(value)
    return columns


def speaker_faces(links):
    """diarization speaker -> its linked face tracks, e.g. ``{"SPEAKER_00": [3, 7]}``."""
    out = {}
    for track, speaker in sorted(links.items()):
        out.setdefault(speaker, []).append(track)
    return out


def subtitle_cues(diarization, speakers=None, transcript=None):
    """``[(start, end, voice, text)]``: the transcript's segments when there is a transcript, else the speaker
    turns (text: the speaker and the faces linked to it)."""
    segments, _ = transcript_items(transcript)
    if segments:
        cues = [(s["start"], s["end"], s.get("speaker") or UNKNOWN_SPEAKER, s["text"]) for s in segments]
    else:
        tracks = speaker_faces(linked_speakers(speakers))
        cues = []
        for s in diarization["segments"]:
            faces = tracks.get(s["speaker"], [])
            seen = f" (face {', '.join(map(str, faces))})" if faces else ""
            cues.append((s["start"], s["end"], s["speaker"], f"{s['speaker']}{seen}"))
    return sorted((c for c in cues if c[1] > c[0]), key=lambda c: (c[0], c[1], c[2]))


@dataclass(frozen=True)
class Timeline:
    """What the review video shows at each frame beside the boxes."""

    scene: tuple  # per frame: 1-based scene number (0: none)
    speakers: tuple  # per frame: tuple of the diarization speakers talking
    subtitle: tuple  # per frame: the transcript line ("" without one)


def review_timeline(diarization, scenes, frame_count, fps, transcript=None) -> Timeline:
    scene = [0] * frame_count
    for n, s in enumerate(scenes["scenes"], 1):
        for f in range(max(0, s["start_frame"]), min(frame_count, s["end_frame"] + 1)):
            scene[f] = n
    turns = [(s["start"], s["end"], s["speaker"]) for s in diarization["segments"]]
    talking = [tuple(dict.fromkeys(names)) for names in _events(turns, frame_count, fps)]
    segments, _ = transcript_items(transcript)
    lines = [(s["start"], s["end"], s["text"]) for s in segments]
    subtitle = [" / ".join(texts) for texts in _events(lines, frame_count, fps)]
    return Timeline(tuple(scene), tuple(talking), tuple(subtitle))


def _events(intervals, frame_count, fps):
    """Per frame, the labels of the intervals active at the frame's middle (one sweep, sorted by start)."""
    intervals = sorted(intervals, key=lambda i: (i[0], i[1]))
    active, k, out = [], 0, []
    for frame in range(frame_count):
        t = (frame + 0.5) / fps
        while k < len(intervals) and intervals[k][0] <= t:
            active.append(intervals[k])
            k += 1
        active = [i for i in active if i[1] > t]
        out.append(tuple(i[2] for i in active))
    return out
