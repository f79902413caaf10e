"""Scores of the workflow's outputs against the truth of the real dev set (tools/real_media.py); pure functions.

- :func:`diarization_scores`: DER (pyannote.metrics; collar = the *total* width around each reference boundary,
  as pyannote counts it; overlapped speech scored), its parts, JER, the speaker-count error, and the mapping of
  found speakers to true ones.
- :func:`match_faces`: which truth face each tracked face is (the truth face of the frame's shot whose box centre
  is nearest, within ``max_dist`` of its height); a track is the truth face of most of its frames.
- :func:`av_scores`: per-frame ``speaking`` precision/recall, link accuracy, silent faces' false ``speaking``.
- :func:`face_scores`: face hit rate and id switches; :func:`cut_scores`: cut precision/recall/F1 within +-2 frames.
"""

import os

os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")  # no telemetry

DER_COLLARS = (0.25, 0.0)


def annotation(segments, name="clip"):
    from pyannote.core import Annotation, Segment  # noqa: PLC0415

    out = Annotation(uri=name)
    for k, seg in enumerate(segments):
        if seg["end"] > seg["start"]:
            out[Segment(seg["start"], seg["end"]), k] = seg["speaker"]
    return out


def diarization_scores(truth_segments, found_segments, duration):
    """{"der@<collar>", "miss", "false_alarm", "confusion" (shares of the true speech, collar 0.25), "jer",
    "true_speakers", "found_speakers", "count_error", "mapping" {found: true}, overlapped speech found
    (:func:`overlap_scores`)}."""
    from pyannote.core import Segment, Timeline  # noqa: PLC0415
    from pyannote.metrics.diarization import DiarizationErrorRate, JaccardErrorRate  # noqa: PLC0415

    reference, hypothesis = annotation(truth_segments), annotation(found_segments)
    uem = Timeline([Segment(0, duration)])
    out = {}
    for collar in DER_COLLARS:
        metric = DiarizationErrorRate(collar=collar, skip_overlap=False)
        detail = metric(reference, hypothesis, uem=uem, detailed=True)
        out[f"der@{collar:g}"] = round(detail["diarization error rate"], 4)
        if collar == DER_COLLARS[0]:
            total = detail["total"] or 1.0
            for key, name in (("missed detection", "miss"), ("false alarm", "false_alarm"),
                              ("confusion", "confusion")):
                out[name] = round(detail[key] / total, 4)
            out["mapping"] = dict(sorted(metric.optimal_mapping(reference, hypothesis).items()))
    out["jer"] = round(JaccardErrorRate(collar=0.0, skip_overlap=False)(reference, hypothesis, uem=uem), 4)
    out.update(overlap_scores(reference, hypothesis, uem))
    true, found = sorted(reference.labels()), sorted(hypothesis.labels())
    out.update(true_speakers=len(true), found_speakers=len(found), count_error=len(found) - len(true))
    return out


def overlap_scores(reference, hypothesis, uem):
    """Overlapped speech found: precision and recall (pyannote.metrics' detection metrics, no collar) of the
    stretches where two or more speakers talk, in the hypothesis against the reference; None when there is none."""
    from pyannote.core import Annotation  # noqa: PLC0415
    from pyannote.metrics.detection import DetectionPrecision, DetectionRecall  # noqa: PLC0415

    def overlapped(annotation):
        out = Annotation(uri=annotation.uri)
        for segment in annotation.get_overlap().support():
            out[segment] = "overlap"
        return out

    truth, found = overlapped(reference), overlapped(hypothesis)
    true_s, found_s = truth.get_timeline().duration(), found.get_timeline().duration()
    return {"overlap_s": round(true_s, 3), "found_overlap_s": round(found_s, 3),
            "overlap_precision": round(DetectionPrecision()(truth, found, uem=uem), 4) if found_s else None,
            "overlap_recall": round(DetectionRecall()(truth, found, uem=uem), 4) if true_s else None}


# --------------------------------------------------------------------------- faces


def truth_boxes(truth_faces, frame):
    """{truth face index: box} of the faces visible in ``frame``."""
    out = {}
    for face in truth_faces:
        for shot in face["shots"]:
            if shot["start_frame"] <= frame <= shot["end_frame"]:
                out[face["face"]] = shot["bbox"]
    return out


def match_faces(frames, truth_faces, max_dist=0.75):
    """({(frame, track_id): truth face or None}, {track_id: truth face or None (majority of its frames)})."""
    per_face, votes = {}, {}
    for entry in frames:
        boxes = truth_boxes(truth_faces, entry["frame"])
        for face in entry["faces"]:
            x, y, w, h = face["bbox"]
            best, best_dist = None, max_dist
            for index, (tx, ty, tw, th) in boxes.items():
                dist = ((x + w / 2 - tx - tw / 2) ** 2 + (y + h / 2 - ty - th / 2) ** 2) ** 0.5 / th
                if dist < best_dist:
                    best, best_dist = index, dist
            per_face[(entry["frame"], face["track_id"])] = best
            votes.setdefault(face["track_id"], {}).setdefault(best, 0)
            votes[face["track_id"]][best] += 1
    tracks = {t: max(sorted(v.items(), key=lambda kv: (kv[0] is None, kv[0] or 0)), key=lambda kv: kv[1])[0]
              for t, v in votes.items()}
    return per_face, tracks


def active(segments, speaker, frame, fps):
    t = (frame + 0.5) / fps
    return any(s["speaker"] == speaker and s["start"] <= t < s["end"] for s in segments)


def av_scores(truth, frames, links, mapping, min_track_frames=10):
    """Speaking precision/recall, link accuracy and silent faces' false speaking share of one AV clip.

    ``frames``: faces.json frames (faces with track_id, bbox, speaking); ``links``: {track_id: found speaker or
    None} (speakers.json); ``mapping``: {found speaker: true speaker} (from :func:`diarization_scores`).
    """
    fps, faces = truth["fps"], {f["face"]: f for f in truth["faces"]}
    per_face, tracks = match_faces(frames, truth["faces"])
    said = hit = 0
    silent_frames = silent_said = 0
    for entry in frames:
        for face in entry["faces"]:
            index = per_face[(entry["frame"], face["track_id"])]
            speaking = bool(face.get("speaking"))
            said += speaking
            if index is None:
                continue
            voice = faces[index]["voice"]
            if voice is None:
                silent_frames += 1
                silent_said += speaking
            elif speaking and active(truth["segments"], voice, entry["frame"], fps):
                hit += 1
    should = sum(active(truth["segments"], f["voice"], frame, fps) for f in truth["faces"] if f["voice"]
                 for shot in f["shots"] for frame in range(shot["start_frame"], shot["end_frame"] + 1))
    counts = {}
    for entry in frames:
        for face in entry["faces"]:
            counts[face["track_id"]] = counts.get(face["track_id"], 0) + 1
    correct, details = 0, []
    for index, face in sorted(faces.items()):
        if not face["shots"]:
            continue
        own = sorted(t for t, f in tracks.items() if f == index and counts[t] >= min_track_frames)
        got = [links.get(t) for t in own]
        right = bool(own) and all((mapping.get(g) == face["voice"]) if face["voice"] else g is None for g in got)
        correct += right
        details.append({"face": index, "still": face["still"], "role": face["role"], "voice": face["voice"],
                        "tracks": own, "linked": got, "right": right})
    shown = sum(1 for f in faces.values() if f["shots"])
    return {"speaking_precision": round(hit / said, 3) if said else None,
            "speaking_recall": round(hit / should, 3) if should else None,
            "link_accuracy": round(correct / shown, 3) if shown else None,
            "silent_false_speaking": round(silent_said / silent_frames, 3) if silent_frames else None,
            "links": details}


def face_scores(frames, frame_count, scenes):
    """Face hit rate (frames with a face / frames), id switches (track ids beyond one per scene with faces),
    frames with more than one face."""
    with_face = sum(1 for f in frames if f["faces"])
    switches = 0
    for scene in scenes:
        ids = {face["track_id"] for f in frames if scene["start_frame"] <= f["frame"] <= scene["end_frame"]
               for face in f["faces"]}
        switches += max(0, len(ids) - 1)
    return {"hit_rate": round(with_face / frame_count, 3) if frame_count else None, "id_switches": switches,
            "extra_face_frames": sum(1 for f in frames if len(f["faces"]) > 1)}


def cut_scores(truth_cuts, found_cuts, tolerance=2):
    """Precision, recall and F1 of cut frames, each truth cut matched to at most one found cut within
    ``tolerance`` frames (closest pairs first)."""
    pairs = sorted((abs(t - f), i, j) for i, t in enumerate(truth_cuts) for j, f in enumerate(found_cuts)
                   if abs(t - f) <= tolerance)
    used_t, used_f = set(), set()
    for _, i, j in pairs:
        if i not in used_t and j not in used_f:
            used_t.add(i)
            used_f.add(j)
    hits = len(used_t)
    precision = hits / len(found_cuts) if found_cuts else (1.0 if not truth_cuts else 0.0)
    recall = hits / len(truth_cuts) if truth_cuts else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"cut_precision": round(precision, 3), "cut_recall": round(recall, 3), "cut_f1": round(f1, 3),
            "found_cuts": list(found_cuts)}
