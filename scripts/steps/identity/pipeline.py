"""Identity, per video: a face embedding per track (dlib's ResNet, from its best frames) and a voice embedding per
diarization speaker (CAM++), with the speaker-to-face links of speakers.json -> ``identity.json``.

The project-level clustering into persons (``persons.json``) is :mod:`steps.identity.persons`.
"""

import logging
import time
from dataclasses import asdict, dataclass

from steps.identity.faces import FaceEmbedder, embed_tracks
from steps.identity.faces import model_record as face_model
from steps.identity.voices import VoiceEmbedder, embed_speakers, load_audio
from steps.identity.voices import model_record as voice_model
from vidflow.errors import UserError
from vidflow.io import read_json_input, write_json
from vidflow.job import settings_from
from vidflow.tracking_json import read_tracking

log = logging.getLogger("identity")


@dataclass(frozen=True)
class IdentitySettings:
    """The per-video keys of the ``identity`` config section (keys and defaults: config/schema.yaml): what
    identity.json depends on. The project's keys (thresholds, gallery) are :class:`PersonsSettings`, so changing
    them reruns only the per-project clustering."""

    enabled: bool
    min_face_size: float
    min_sharpness: float
    min_frontal: float
    candidates_per_track: int
    frames_per_track: int
    min_voice_seconds: float
    max_voice_seconds: float


@dataclass(frozen=True)
class PersonsSettings:
    """The per-project keys of the ``identity`` config section (see rules/identity.smk's PERSONS_KEYS)."""

    face_distance: float
    voice_distance: float
    gallery: str
    gallery_face_distance: float
    gallery_voice_distance: float


def tracks_of(tracking: dict) -> dict:
    """``track_id -> [(frame, bbox), ...]`` in frame order."""
    boxes = {}
    for frame in tracking["frames"]:
        for face in frame["faces"]:
            boxes.setdefault(int(face["track_id"]), []).append((int(frame["frame"]), face["bbox"]))
    return boxes


def speaker_links(speakers: dict, path) -> dict:
    """``track_id -> (speaker, speaking_frames)`` of the tracks speakers.json links to a speaker."""
    try:
        return {int(t["track_id"]): (t["speaker"], int(t.get("speaking_frames", 0)))
                for t in speakers["tracks"] if t.get("speaker")}
    except (KeyError, TypeError, ValueError) as err:
        raise UserError(path, f"not a speakers.json ({type(err).__name__}: {err})") from None


def segments_of(diarization: dict, path) -> list:
    try:
        return [{"speaker": str(s["speaker"]), "start": float(s["start"]), "end": float(s["end"])}
                for s in diarization["segments"]]
    except (KeyError, TypeError, ValueError) as err:
        raise UserError(path, f"not a diarization.json ({type(err).__name__}: {err})") from None


def describe_video(video: str, faces_path: str, diarization_path: str, speakers_path: str, out_path: str,
                   settings: IdentitySettings, threads: int = 1) -> dict:
    """Embed every face track and every speaker of one video and write ``identity.json``."""
    from steps.frames import read_chosen_frames

    started = time.monotonic()
    tracking = read_tracking(faces_path, fields=("track_id", "bbox"))
    fps, width, height = float(tracking["fps"]), int(tracking["width"]), int(tracking["height"])
    boxes = tracks_of(tracking)
    links = speaker_links(read_json_input(speakers_path, "speakers.json"), speakers_path)
    segments = segments_of(read_json_input(diarization_path, "diarization.json"), diarization_path)

    def read(indices):
        return read_chosen_frames(video, width, height, indices, threads=threads)

    faces = embed_tracks(read, boxes, settings, FaceEmbedder()) if boxes else {}
    log.info("%d face tracks, %d with an embedding (%.1f s)", len(faces),
             sum(f["embedding"] is not None for f in faces.values()), time.monotonic() - started)
    voices = {}
    if segments:
        voices = embed_speakers(load_audio(video), segments, settings, VoiceEmbedder(threads))
    log.info("%d speakers, %d with an embedding", len(voices), sum(v["embedding"] is not None for v in voices.values()))
    tracks = []
    for track_id, face in faces.items():
        frames = [frame for frame, _ in boxes[track_id]]
        speaker, speaking = links.get(track_id, (None, 0))
        tracks.append({"track_id": track_id, "first_frame": frames[0], "last_frame": frames[-1],
                       "frames": len(frames), "screen_seconds": round(len(frames) / fps, 3),
                       "speaker": speaker, "speaking_frames": speaking, **face})
    speakers = [{"speaker": speaker, **voice,
                 "turns": [[s["start"], s["end"]] for s in segments if s["speaker"] == speaker]}
                for speaker, voice in voices.items()]
    document = {"fps": fps, "frame_count": int(tracking["frame_count"]), "settings": asdict(settings),
                "models": {"face": face_model() if boxes else None, "voice": voice_model() if segments else None},
                "tracks": tracks, "speakers": speakers}
    write_json(out_path, document)
    log.info("wrote %s in %.1f s", out_path, time.monotonic() - started)
    return document


def load_identity(path) -> dict:
    """One video's identity.json, checked for what the project step relies on."""
    document = read_json_input(path, "identity.json")
    try:
        for track in document["tracks"]:
            int(track["track_id"]), int(track["first_frame"]), int(track["last_frame"])
        for speaker in document["speakers"]:
            str(speaker["speaker"])
        float(document["fps"])
    except (KeyError, TypeError, ValueError) as err:
        raise UserError(path, f"not an identity.json ({type(err).__name__}: {err})") from None
    return document


def run(job):
    settings = settings_from(IdentitySettings, job.settings)
    describe_video(job.input["video"], job.input["faces"], job.input["diarization"], job.input["speakers"],
                   job.output["identity"], settings, job.threads)
