"""Inputs and outputs of the tracking step: scenes.json checks, rounding, the streamed tracking.json."""

import numpy as np

from vidflow.errors import UserError
from vidflow.io import dumps_json, read_json
from vidflow.jsonstream import compact, write_object

# Fixed rounding, so the same input and config give byte-identical JSON.
ROUND = {"bbox": 1, "landmarks": 1, "score": 3, "blendshapes": 4, "head_pose": 1, "other": 4}


def read_scenes(path, frame_count):
    """First frames of the scenes in ``scenes.json`` (0-based), checked against the video's frames."""
    try:
        data = read_json(path)
        scenes = data["scenes"]
        starts = [int(s["start_frame"]) for s in scenes]
        ends = [int(s["end_frame"]) for s in scenes]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise UserError(path, f"not a scenes.json ({type(err).__name__}: {err})") from None
    if data.get("frame_count") not in (None, frame_count):
        raise UserError(path, f"frame_count {data['frame_count']} but the video has {frame_count} frames")
    for start, end in zip(starts, ends):
        if not 0 <= start <= end < frame_count:
            raise UserError(path, f"scene {start}-{end} is outside frames 0-{frame_count - 1}")
    if starts != sorted(starts) or any(b <= a for a, b in zip(ends, starts[1:])):
        raise UserError(path, "scenes overlap or are out of order")
    return sorted(set([0] + starts)) if frame_count else []


def round_face(face):
    """JSON-ready copy of an engine's face dict with the fixed rounding."""
    out = {}
    for key, value in face.items():
        if key >= "track_id":  # the pipeline appends track_id to the face's JSON text (sorted keys)
            raise ValueError(f"engine field {key!r} must sort before 'track_id'")
        if key == "bbox":
            out[key] = round_box(value)
        elif key == "landmarks":  # numpy: ~25x faster than round() on 478 x 3 values, same numbers
            scale = 10 ** ROUND["landmarks"]
            out[key] = (np.rint(np.asarray(value, dtype=np.float64) * scale) / scale).tolist()
        elif key == "score":
            out[key] = round(float(value), ROUND["score"])
        elif key == "blendshapes":
            scale = 10 ** ROUND["blendshapes"]
            scores = (np.rint(np.asarray(list(value.values()), dtype=np.float64) * scale) / scale).tolist()
            out[key] = dict(zip(value, scores))
        elif key == "head_pose":
            out[key] = {k: round(float(v), ROUND["head_pose"]) for k, v in value.items()}
        else:  # engine-specific numbers (coefficients, action units, ...): ROUND["other"] decimals
            out[key] = _round_numbers(value)
    return out


def round_box(box):
    """A face's ``bbox`` as ``round_face`` rounds it."""
    return [round(float(v), ROUND["bbox"]) for v in box]


def face_line(face):
    """``dumps_json(round_face(face), compact=True)``, the same text, with the landmarks written by numpy.

    ``json`` spends ~0.3 ms on a face's 478 x 3 landmark floats, as much as the rest of the step's Python.
    """
    text = landmarks_json(face["landmarks"]) if "landmarks" in face else None
    if text is None:
        return dumps_json(round_face(face), compact=True)
    rest = round_face({key: value for key, value in face.items() if key != "landmarks"})
    members = [f"{compact(key)}:{text if key == 'landmarks' else compact(rest[key])}"
               for key in sorted([*rest, "landmarks"])]
    return "{" + ",".join(members) + "}\n"


def landmarks_json(points):
    """The JSON text of ``points`` (rows of numbers) rounded as ``round_face`` rounds landmarks, or None where
    this fast path does not apply (not a 2-D array, a value not finite or beyond 1e14).

    A number rounded to tenths is the double nearest to n / 10 for an integer n, and Python writes it as the
    digits of n with a point before the last one ("-0.0" for a negative zero), so the text comes from n's
    digits: one byte column per character, then the bytes that a number does not use are dropped.
    """
    if ROUND["landmarks"] != 1:
        return None
    values = np.asarray(points, dtype=np.float64)
    if values.ndim != 2 or not np.all(np.isfinite(values)):
        return None
    if values.size == 0:
        return compact(values.tolist())
    tenths = np.rint(values * 10).ravel()
    if np.abs(tenths).max() >= 1e15:
        return None
    whole, tenth = np.divmod(np.abs(tenths).astype(np.int64), 10)
    width = len(str(int(whole.max())))
    digits = 1 + sum((whole >= 10 ** k).astype(np.int64) for k in range(1, width))
    columns = values.shape[1]
    position = np.arange(tenths.size) % columns
    text = np.zeros((tenths.size, width + 6), dtype=np.uint8)
    keep = np.zeros(text.shape, dtype=bool)
    text[:, 0], keep[:, 0] = ord("["), position == 0
    text[:, 1], keep[:, 1] = ord("-"), np.signbit(tenths)
    for k in range(width):  # the digits of the whole part, the most significant first
        text[:, 2 + k] = whole // 10 ** (width - 1 - k) % 10 + ord("0")
        keep[:, 2 + k] = digits >= width - k
    text[:, width + 2], keep[:, width + 2] = ord("."), True
    text[:, width + 3], keep[:, width + 3] = tenth + ord("0"), True
    text[:, width + 4], keep[:, width + 4] = ord("]"), position == columns - 1
    text[:, width + 5], keep[:, width + 5] = ord(","), True
    keep[-1, width + 5] = False
    return "[" + text[keep].tobytes().decode("ascii") + "]"


def _round_numbers(value):
    """``value`` with every float (also numpy scalars/arrays, in lists and dicts) rounded to ROUND["other"]."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, dict):
        return {k: _round_numbers(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_round_numbers(v) for v in value]
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    if isinstance(value, np.integer):
        return int(value)
    return round(float(value), ROUND["other"])


def write_tracking(path, header, frame_lines):
    """Write ``header`` + ``"frames": [...]`` as compact JSON with sorted keys, streaming the frames.

    ``frame_lines`` yields each frame's compact JSON text in frame order. The bytes equal
    ``dumps_json({**header, "frames": [...]}, compact=True)``, without holding all frames in memory.
    """
    write_object(path, header, "frames", frame_lines)
