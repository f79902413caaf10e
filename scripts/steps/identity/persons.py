"""Identity, per project: the persons of all its videos -> ``results/{project}/persons.json``.

Face tracks (dlib embeddings, euclidean ``face_distance``) and diarization speakers (CAM++ embeddings, cosine
``voice_distance``) are clustered across every video of the project (steps.identity.cluster); a face cluster and a
voice cluster are one person when speakers.json links their tracks and speakers (one-to-one, the most speaking
frames first). A person may have only a face or only a voice. Persons are numbered ``PERSON_01``, ... in order of
first appearance (video order of the extraction manifest, then time), or named after the gallery reference they
match. Tracks and speakers without an embedding (tiny or blurred faces, little speech) stay unassigned.
"""

import logging
from dataclasses import asdict

import numpy as np

from steps.identity.cluster import cluster, distances, join_faces_and_voices
from steps.identity.pipeline import PersonsSettings, load_identity
from vidflow.io import read_json, write_json
from vidflow.job import settings_from

log = logging.getLogger("identity")


def face_items(documents: dict) -> list:
    return [{"video": video, "track": track} for video, doc in documents.items() for track in doc["tracks"]
            if track["embedding"] is not None]


def voice_items(documents: dict) -> list:
    return [{"video": video, "speaker": speaker} for video, doc in documents.items() for speaker in doc["speakers"]
            if speaker["embedding"] is not None]


def face_conflicts(items: list) -> list:
    """Index pairs of tracks that are on screen together (same video, overlapping frames): never one person."""
    pairs = []
    for i, a in enumerate(items):
        for j in range(i + 1, len(items)):
            b = items[j]
            if a["video"] == b["video"] and a["track"]["first_frame"] <= b["track"]["last_frame"] \
                    and b["track"]["first_frame"] <= a["track"]["last_frame"]:
                pairs.append((i, j))
    return pairs


def voice_conflicts(items: list) -> list:
    """Speakers diarization told apart in one video are never one person."""
    return [(i, j) for i in range(len(items)) for j in range(i + 1, len(items))
            if items[i]["video"] == items[j]["video"]]


def centroid(vectors) -> np.ndarray:
    return np.asarray(vectors, dtype=np.float64).mean(axis=0)


def group_persons(documents: dict, settings: PersonsSettings) -> tuple:
    """``(persons, faces, voices)``: persons as ``{"face": cluster or None, "voice": cluster or None}`` and the
    clustered items (each with its ``label``)."""
    faces, voices = face_items(documents), voice_items(documents)
    face_labels = cluster([f["track"]["embedding"] for f in faces], settings.face_distance, "euclidean",
                          face_conflicts(faces))
    voice_labels = cluster([v["speaker"]["embedding"] for v in voices], settings.voice_distance, "cosine",
                           voice_conflicts(voices))
    for item, label in zip(faces, face_labels):
        item["label"] = label
    for item, label in zip(voices, voice_labels):
        item["label"] = label
    voice_of = {(v["video"], v["speaker"]["speaker"]): v["label"] for v in voices}
    links = {}
    for face in faces:
        speaker = face["track"].get("speaker")
        if speaker and (face["video"], speaker) in voice_of:
            key = (face["label"], voice_of[(face["video"], speaker)])
            links[key] = links.get(key, 0) + max(int(face["track"].get("speaking_frames", 0)), 1)
    pairs = join_faces_and_voices(links)
    paired_faces, paired_voices = {f for f, _ in pairs}, {v for _, v in pairs}
    persons = [{"face": f, "voice": v} for f, v in pairs]
    persons += [{"face": f, "voice": None} for f in sorted(set(face_labels) - paired_faces)]
    persons += [{"face": None, "voice": v} for v in sorted(set(voice_labels) - paired_voices)]
    for person in persons:
        person["link_frames"] = links.get((person["face"], person["voice"]), 0)
    return persons, faces, voices


def describe_person(person: dict, faces: list, voices: list, order: dict, documents: dict) -> dict:
    """A person's record: its tracks and speakers per video, with their distance to the person's centroid."""
    mine = [f for f in faces if f["label"] == person["face"]] if person["face"] is not None else []
    spoken = [v for v in voices if v["label"] == person["voice"]] if person["voice"] is not None else []
    record = {"faces": [], "voices": [], "evidence": {"link_frames": person["link_frames"]}}
    first = []
    if mine:
        center = centroid([f["track"]["embedding"] for f in mine])
        for f in mine:
            d = float(np.linalg.norm(np.asarray(f["track"]["embedding"]) - center))
            record["faces"].append({"video": f["video"], "track_id": f["track"]["track_id"], "distance": round(d, 4)})
            first.append((order[f["video"]], f["track"]["first_frame"] / documents[f["video"]]["fps"]))
        best = max(mine, key=lambda f: (f["track"]["frames"], f["track"]["quality"]["sharpness"]))
        record["thumbnail"] = best["track"]["thumbnail"]
        record["face_embedding"] = [round(float(v), 6) for v in center]
        record["evidence"]["face_spread"] = max(f["distance"] for f in record["faces"])
    if spoken:
        center = centroid([v["speaker"]["embedding"] for v in spoken])
        for v in spoken:
            d = float(distances(np.stack([center, v["speaker"]["embedding"]]), "cosine")[0, 1])
            record["voices"].append({"video": v["video"], "speaker": v["speaker"]["speaker"],
                                     "similarity": round(1.0 - d, 4)})
            turns = v["speaker"]["turns"]
            first.append((order[v["video"]], min(t[0] for t in turns) if turns else 0.0))
        record["voice_embedding"] = [round(float(x), 6) for x in center]
        record["evidence"]["voice_min_similarity"] = min(v["similarity"] for v in record["voices"])
    record["screen_seconds"] = round(sum(f["track"]["screen_seconds"] for f in mine), 3)
    record["talk_seconds"] = round(sum(v["speaker"]["talk_seconds"] for v in spoken), 3)
    record["videos"] = sorted({f["video"] for f in mine} | {v["video"] for v in spoken}, key=order.get)
    record["_first"] = min(first)
    return record


def unassigned(documents: dict) -> dict:
    return {"faces": [{"video": video, "track_id": t["track_id"], "reason": t["reason"]}
                      for video, doc in documents.items() for t in doc["tracks"] if t["embedding"] is None],
            "voices": [{"video": video, "speaker": s["speaker"], "reason": s["reason"]}
                       for video, doc in documents.items() for s in doc["speakers"] if s["embedding"] is None]}


def build_persons(documents: dict, settings: PersonsSettings, gallery=None) -> dict:
    """persons.json's content from the identity.json documents of a project (``video -> document``, in the
    manifest's video order). ``gallery``: ``name -> {"face": vector or None, "voice": vector or None}``."""
    order = {video: i for i, video in enumerate(documents)}
    persons, faces, voices = group_persons(documents, settings)
    records = sorted((describe_person(p, faces, voices, order, documents) for p in persons),
                     key=lambda r: r["_first"])
    names = match_gallery(records, gallery or {}, settings)
    mapping = {video: {"tracks": {}, "speakers": {}} for video in documents}
    for number, record in enumerate(records, 1):
        record.pop("_first")
        record["person"] = f"PERSON_{number:02d}"
        record["name"], record["evidence"]["gallery"] = names.get(number - 1, (None, None))
        for face in record["faces"]:
            mapping[face["video"]]["tracks"][str(face["track_id"])] = record["person"]
        for voice in record["voices"]:
            mapping[voice["video"]]["speakers"][voice["speaker"]] = record["person"]
    return {"videos": list(documents), "settings": asdict(settings), "persons": records,
            "mapping": mapping, "unassigned": unassigned(documents),
            "gallery": sorted(gallery) if gallery else []}


def match_gallery(records: list, gallery: dict, settings: PersonsSettings) -> dict:
    """``person index -> (name, evidence)``: each reference names at most one person, the one it matches best.

    A modality matches when its distance is under its threshold (``gallery_face_distance`` euclidean,
    ``gallery_voice_distance`` cosine); a pair's score is the mean of its distances over their thresholds, over
    the modalities both sides have, and it needs a score under 1 (so a clear mismatch of one can veto the other).
    """
    scored = []
    for index, record in enumerate(records):
        for name, ref in sorted(gallery.items()):
            ratios, evidence = [], {}
            if ref.get("face") is not None and "face_embedding" in record:
                d = float(np.linalg.norm(np.asarray(record["face_embedding"]) - np.asarray(ref["face"])))
                ratios.append(d / settings.gallery_face_distance)
                evidence["face_distance"] = round(d, 4)
            if ref.get("voice") is not None and "voice_embedding" in record:
                d = float(distances(np.stack([record["voice_embedding"], ref["voice"]]), "cosine")[0, 1])
                ratios.append(d / settings.gallery_voice_distance)
                evidence["voice_distance"] = round(d, 4)
            if ratios and sum(ratios) / len(ratios) < 1.0:
                scored.append((sum(ratios) / len(ratios), index, name, evidence))
    names, used = {}, set()
    for score, index, name, evidence in sorted(scored):
        if index not in names and name not in used:
            names[index] = (name, {"reference": name, "score": round(score, 4), **evidence})
            used.add(name)
    return names


def count_words(transcripts: dict) -> dict:
    """``{(video, speaker): words}`` from each video's transcript.json document (``video -> document``)."""
    return {(video, entry["speaker"]): entry["words"] for video, doc in transcripts.items()
            for entry in doc.get("speakers", ())}


def add_word_counts(result: dict, words: dict) -> dict:
    """Each person's and each of its voices' word count (``words``: :func:`count_words`), in place."""
    for person in result["persons"]:
        for voice in person["voices"]:
            voice["words"] = words.get((voice["video"], voice["speaker"]), 0)
        person["words"] = sum(voice["words"] for voice in person["voices"])
    return result


def find_persons(identity_paths: list, out_path: str, settings: PersonsSettings, threads: int = 1,
                 transcript_paths=None) -> dict:
    """Read each video's identity.json (``results/{project}/{video}/identity.json``, manifest order), and its
    transcript.json when given (word counts per person), write persons.json."""
    from pathlib import Path

    documents = {Path(path).parent.name: load_identity(path) for path in identity_paths}
    gallery = None
    if settings.gallery:
        from steps.identity.gallery import load_gallery

        gallery = load_gallery(settings.gallery, threads)
    result = build_persons(documents, settings, gallery)
    if transcript_paths:
        add_word_counts(result, count_words({Path(p).parent.name: read_json(p) for p in transcript_paths}))
    log.info("%d videos -> %d persons (%d named); unassigned: %d face tracks, %d speakers", len(documents),
             len(result["persons"]), sum(p["name"] is not None for p in result["persons"]),
             len(result["unassigned"]["faces"]), len(result["unassigned"]["voices"]))
    write_json(out_path, result)
    return result


def run(job):
    settings = settings_from(PersonsSettings, job.settings)
    find_persons(job.input["identity"], job.output["persons"], settings, job.threads,
                 job.input.get("transcripts") or None)
