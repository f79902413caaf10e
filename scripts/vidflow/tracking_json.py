"""tracking.json and faces.json as the steps after tracking read them (standard library only).

Both are one JSON object with the header members (``fps``, ``frame_count``, ``width``, ``height``, ``engine``, ...)
and ``frames``: one ``{"frame": n, "faces": [{"track_id", "bbox", ...}]}`` per frame. :func:`stream_tracking`
yields the frames one at a time (for steps that write a frame per frame read: link_speakers, reduce);
:func:`read_tracking` holds the whole document with each face cut to a few fields (report, expressions). Both check
every frame for what all of them rely on, so a file that is not a tracking.json fails with one line naming it.
"""

from .errors import UserError
from .jsonstream import read_document

# All the report and step 6 read of a face (no landmarks, blendshapes, head pose: most of the file's size).
FACE_FIELDS = ("track_id", "bbox", "score", "speaking", "speaker")


def _check(frame):
    int(frame["frame"])
    for face in frame["faces"]:
        int(face["track_id"])
        if len(face["bbox"]) != 4:
            raise ValueError(f"frame {frame['frame']}: bbox needs 4 numbers")
    return frame


def _not_a_tracking_json(path, err):
    return UserError(path, f"not a tracking.json ({type(err).__name__}: {err})")


def stream_tracking(path, raw=False, without=()):
    """``(header, frames)``: ``frames`` yields each frame, checked, as it is read (``raw``: ``(frame, its text in the
    file)``; ``without``: face members left out, e.g. ``("landmarks",)``); ``header`` gets every other member as it
    is read (complete once ``frames`` is exhausted; see :func:`vidflow.jsonstream.read_document`)."""
    header, items = read_document(path, "frames", raw=raw, without=without)

    def frames():
        try:
            for item in items:
                yield (_check(item[0]), item[1]) if raw else _check(item)
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise _not_a_tracking_json(path, err) from None

    return header, frames()


def read_tracking(path, fields=FACE_FIELDS):
    """The whole document with each face cut to ``fields``, read one frame at a time (a small fraction of the file's
    memory; the landmarks, unless asked for, are not even decoded: ~5x faster). Checked: a positive frame size and
    frames numbered 0, 1, 2, ... (every frame listed, in order)."""
    header, frames = stream_tracking(path, without=() if "landmarks" in fields else ("landmarks",))
    kept = [{**frame, "faces": [{k: face[k] for k in fields if k in face} for face in frame["faces"]]}
            for frame in frames]
    tracking = {**header, "frames": kept}
    try:
        width, height = int(tracking["width"]), int(tracking["height"])
    except (ValueError, KeyError, TypeError) as err:
        raise _not_a_tracking_json(path, err) from None
    if width <= 0 or height <= 0:
        raise UserError(path, f"frame size {width}x{height} is not positive")
    if [f["frame"] for f in kept] != list(range(len(kept))):
        raise UserError(path, "frames are not numbered 0, 1, 2, ...")
    return tracking
