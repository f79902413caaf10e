"""Inputs and outputs of the tracking step: scenes.json checks, rounding, the streamed tracking.json."""

import numpy as np

from vidflow.errors import UserError
from vidflow.io import read_json
from vidflow.jsonstream import write_object

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
            out[key] = [round(float(v), ROUND["bbox"]) for v in value]
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
