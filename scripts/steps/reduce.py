"""Step 6: the compact per-frame JSON that downstream tools (the old system's After Effects scripts) read.

``{video}_tracking.json`` and ``{video}_audio.json`` keep the seed's contract field for field:
dense ``frames_analysis`` with 1-based frames, ``tracked_objects`` with ``id`` (``obj_<n>``),
``centroid_x``, ``source``, ``label``, ``confidence``, ``active_speakers``, ``bbox_width``,
``bbox_height``, and ``audio_info`` with ``is_speech_present``, ``active_speaker_labels``,
``timecode_sec``; plus ``fps``, ``total_frames`` and ``temporal_alignment`` (video and audio frame counts, as the
seed adds them) in both, and ``speaker_stats`` in the audio file.
Unlike the seed: real detector confidences (absent where no detector ran), and ``active_speakers`` only from our
speaker-to-face link (a face is never marked speaking just because someone speaks).
"""

import itertools
import logging

from vidflow.errors import UserError
from vidflow.io import read_json
from vidflow.jsonstream import compact, write_object
from vidflow.media import FPS
from vidflow.tracking_json import FACE_FIELDS, stream_tracking

FACE_SOURCE = "face_landmarker"  # the seed's source name for faces; downstream scripts filter on it
FACE_LABEL = "face"


def reduced_object(face, obj_id):
    """One face of tracking.json as the seed's ``tracked_objects`` entry."""
    x, y, w, h = face["bbox"]
    speaker = face.get("speaker")
    obj = {"id": obj_id, "centroid_x": int(round(x + w / 2)), "source": FACE_SOURCE, "label": FACE_LABEL,
           "active_speakers": [speaker] if speaker and face.get("speaking") else [],
           "bbox_width": int(round(w)), "bbox_height": int(round(h))}
    if "score" in face:  # faces followed between detections have no detector score: no confidence
        obj["confidence"] = round(float(face["score"]), 3)
    return obj


def reduced_frame(index, faces, ids):
    return {"frame": index + 1,
            "tracked_objects": [reduced_object(face, ids[face["track_id"]])
                                for face in sorted(faces, key=lambda f: ids[f["track_id"]])]}


class Unordered(Exception):
    """tracking.json does not list its frames in increasing order (never so in our files)."""


def reduced_frames(frames, frame_count, ids=None):
    """The seed's ``frames_analysis`` (frames 1..frame_count) from ``frames`` that come in increasing order (else
    :class:`Unordered`); frames not listed have no objects, frames from ``frame_count`` on are left out.

    Each track id becomes ``obj_<n>``, numbered from 1 in order of first appearance (then by id); ``ids`` may hold
    that numbering already (filled in as the frames come when not).
    """
    ids, done = {} if ids is None else ids, 0
    for frame in frames:
        index = frame["frame"]
        if type(index) is not int or index < done:
            raise Unordered(index)
        for face in sorted(frame["faces"], key=lambda f: f["track_id"]):
            ids.setdefault(face["track_id"], f"obj_{len(ids) + 1}")
        for empty in range(done, min(index, frame_count)):
            yield reduced_frame(empty, [], ids)
        if index < frame_count:
            yield reduced_frame(index, frame["faces"], ids)
        done = index + 1
    for empty in range(done, frame_count):
        yield reduced_frame(empty, [], ids)


def _in_order(tracking_path):
    """``(header, frames in increasing order, ids)`` of a file whose frames are not in order (never so in ours): the
    last entry of a frame counts, ids are numbered in the order of the file. Held in memory (faces cut)."""
    header, frames = stream_tracking(tracking_path, without=("landmarks",))
    ids, listed = {}, {}
    for frame in frames:
        for face in sorted(frame["faces"], key=lambda f: f["track_id"]):
            ids.setdefault(face["track_id"], f"obj_{len(ids) + 1}")
        if type(frame["frame"]) is int and frame["frame"] >= 0:
            listed[frame["frame"]] = [{k: face[k] for k in FACE_FIELDS if k in face} for face in frame["faces"]]
    if not {"fps", "frame_count"} <= header.keys():
        raise UserError(tracking_path, "not a tracking.json (no fps or frame_count)")
    return header, [{"frame": index, "faces": listed[index]} for index in sorted(listed)], ids


def _write_reduced_tracking(out_path, header, frames, audio_duration):
    fps, total_frames = header["fps"], header["frame_count"]
    alignment = temporal_alignment(total_frames, fps, audio_duration)
    write_object(out_path, {"fps": fps, "temporal_alignment": alignment, "total_frames": total_frames},
                 "frames_analysis", (compact(frame) for frame in frames))


def reduce_tracking_file(tracking_path: str, out_path: str, audio_duration: float) -> tuple:
    """Write the seed's ``{video}_tracking.json`` of our ``tracking_path`` (tracking.json or faces.json) to
    ``out_path``, streaming both files (memory flat with the video's length), its ``temporal_alignment`` with the
    audio's ``audio_duration`` (seconds, diarization.json's ``duration``); return ``(fps, total_frames)``."""
    header, frames = stream_tracking(tracking_path, without=("landmarks",))
    first = next(frames, None)
    if first is None and "frames" not in header:
        raise UserError(tracking_path, "not a tracking.json (no frames)")
    try:
        if not {"fps", "frame_count"} <= header.keys():  # members after the frames: only in files not ours
            raise Unordered("fps or frame_count after the frames")
        listed = frames if first is None else itertools.chain([first], frames)
        _write_reduced_tracking(out_path, header, reduced_frames(listed, header["frame_count"]), audio_duration)
    except Unordered:
        header, ordered, ids = _in_order(tracking_path)
        _write_reduced_tracking(out_path, header, reduced_frames(ordered, header["frame_count"], ids), audio_duration)
    return header["fps"], header["frame_count"]


def speakers_at(segments, seconds):
    """Sorted labels of the segments covering ``seconds`` (start inclusive, end exclusive)."""
    return sorted({s["speaker"] for s in segments if s["start"] <= seconds < s["end"]})


def speaker_stats(segments):
    """Per speaker: segments and seconds of speech; ``frames`` (where it speaks) is counted as they are written."""
    stats = {}
    for seg in segments:
        entry = stats.setdefault(seg["speaker"], {"segments": 0, "speech_sec": 0.0, "frames": 0})
        entry["segments"] += 1
        entry["speech_sec"] = round(entry["speech_sec"] + seg["end"] - seg["start"], 3)
    return stats


def temporal_alignment(total_frames, fps, audio_duration, audio_fps=FPS):
    """Frame counts of video and audio side by side, with warnings when they disagree."""
    audio_frames = int(round(audio_duration * audio_fps))
    warnings = []
    if fps != audio_fps:
        warnings.append(f"video fps {fps} differs from the audio timeline's {audio_fps}")
    if abs(audio_frames - total_frames) > 1:
        warnings.append(f"audio covers {audio_frames} frames, video has {total_frames}")
    return {"video_fps": fps, "audio_fps": audio_fps, "video_frames": total_frames, "audio_frames": audio_frames,
            "audio_duration_sec": round(audio_duration, 3), "frame_difference": audio_frames - total_frames,
            "aligned": not warnings, "warnings": warnings}


def audio_frames(segments, total_frames, fps=FPS):
    """The seed's ``frames_analysis`` of ``{video}_audio.json``, one frame at a time."""
    for index in range(total_frames):
        labels = speakers_at(segments, (index + 0.5) / fps)
        yield {"frame": index + 1, "audio_info": {"is_speech_present": bool(labels), "active_speaker_labels": labels,
                                                   "timecode_sec": round(index / fps, 3)}}


def reduce_audio_file(diarization: dict, total_frames: int, fps: int, out_path: str) -> dict:
    """Write the seed's ``{video}_audio.json`` to ``out_path``: who speaks at each video frame (sampled at the frame's
    middle), streaming the frames; return its ``temporal_alignment``."""
    segments = diarization["segments"]
    stats = speaker_stats(segments)
    alignment = temporal_alignment(total_frames, fps, diarization["duration"])

    def texts():
        for frame in audio_frames(segments, total_frames, fps):
            for label in frame["audio_info"]["active_speaker_labels"]:
                stats[label]["frames"] += 1
            yield compact(frame)
    write_object(out_path, {"fps": fps, "temporal_alignment": alignment, "total_frames": total_frames},
                 "frames_analysis", texts(), late=lambda: {"speaker_stats": stats})
    return alignment


def run(job):
    diarization = read_json(job.input["diarization"])
    fps, total_frames = reduce_tracking_file(job.input["tracking"], job.output["tracking"], diarization["duration"])
    alignment = reduce_audio_file(diarization, total_frames, fps, job.output["audio"])
    for warning in alignment["warnings"]:
        logging.getLogger("reduce").warning("%s: %s", job.input["diarization"], warning)
