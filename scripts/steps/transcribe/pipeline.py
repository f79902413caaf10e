"""Step transcribe: who said what, word by word -> transcript.json, transcript.vtt, transcript.srt.

Two jobs. ``recognise_speech`` (:func:`run_speech`): the speech regions of ``diarization.json`` (merged across short
gaps, padded) are transcribed by Whisper (``steps.transcribe.whisper``; the model: ``steps.transcribe.weights``);
silence is never decoded; it needs no faces, so it runs beside the video steps. ``transcribe`` (:func:`run`): each
word gets its diarization speaker (longest overlap, nearest turn in a gap; in an overlap, the voice the recogniser
follows) and, where ``faces.json`` links that speaker to a face track on screen during the word, the track's id
(``steps.transcribe.transcript``). A video without audio or without speech gets an empty, valid transcript.
"""

import logging
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import timedelta

import numpy as np

from steps.transcribe.transcript import build_segments, cues, inside, speaker_label, speech_stretches
from vidflow.errors import UserError
from vidflow.io import read_json, write_json, write_text
from vidflow.job import settings_from
from vidflow.jsonstream import read_document
from vidflow.media import ffmpeg_reason, ffprobe, pcm_command, summarize

RATE = 16000  # Whisper's sample rate

LOG = logging.getLogger("transcribe")
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class TranscribeSettings:
    """The ``transcribe`` config section (keys and defaults: config/schema.yaml)."""

    model: str  # base, tiny.en or a CTranslate2 Whisper folder
    language: str  # auto or an ISO 639-1 code
    compute_type: str  # auto (int8 on CPU, float16 on a GPU) or a CTranslate2 compute type
    beam_size: int
    pad: float  # seconds around each speech region
    max_gap: float  # regions closer than this are one stretch


def read_audio(video):
    """16 kHz mono int16 samples of the video's first audio stream; ``None`` when it has none."""
    if summarize(ffprobe(video))["audio"] is None:
        return None
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.run(pcm_command(video, RATE), stdout=subprocess.PIPE, stderr=errors, check=False)
        if proc.returncode != 0:
            errors.seek(0)
            raise UserError(video, f"cannot decode its audio ({ffmpeg_reason(errors.read().decode(errors='replace'))})")
    return np.frombuffer(proc.stdout[:len(proc.stdout) // 2 * 2], dtype="<i2")


def linked_faces(faces_path):
    """``(frame -> [(track_id, speaker)], fps)`` for the faces whose track ``faces.json`` links to a speaker."""
    header, frames = read_document(faces_path, "frames", without=("landmarks",))
    linked = {}
    for frame in frames:
        faces = [(f["track_id"], f["speaker"]) for f in frame.get("faces", ()) if f.get("speaker")]
        if faces:
            linked[frame["frame"]] = faces
    return linked, float(header.get("fps") or 25)


def recognise_speech(video, diarization, out_words, settings, threads=1, gpus=0):
    """Whisper on the diarized speech of one video -> ``words.json``: the audio's duration, the speech stretches,
    the engine's record and the recognised words (an intermediate of the rule, deleted once the transcript is
    made). Needs no faces, so it runs beside the video steps."""
    turns = read_json(diarization).get("segments") or []
    samples = read_audio(video)
    duration = len(samples) / RATE if samples is not None else 0.0
    stretches = speech_stretches(turns, duration, settings.pad, settings.max_gap)
    engine = {"name": "whisper", "model": settings.model, "device": None, "language": None,
              "language_probability": None}
    pieces = []
    if samples is None:
        LOG.info("%s has no audio: the transcript is empty", video)
    elif not stretches:
        LOG.info("%s: diarization found no speech: the transcript is empty", video)
    else:
        LOG.info("transcribing %d stretch(es) of speech, %.1f s of %.1f s", len(stretches),
                 sum(e - s for s, e in stretches), duration)
        from steps.transcribe.whisper import recognise

        pieces, engine = recognise(samples, stretches, settings, threads, gpus)
    words = {"duration": duration, "speech": stretches, "engine": engine, "pieces": pieces}
    write_json(out_words, words)
    return words


def transcribe_video(words, diarization, faces, speakers, out_json, out_vtt, out_srt, settings):
    """The transcript of one video from its recognised words (``words.json``): each word's speaker and linked
    face; returns the transcript written."""
    recognised = read_json(words)
    record = read_json(diarization)
    turns = record.get("segments") or []
    order = list(record.get("speakers") or dict.fromkeys(t["speaker"] for t in turns))
    links = {entry["speaker"]: entry["tracks"] for entry in read_json(speakers).get("speakers", ())}
    stretches = recognised["speech"]
    engine = recognised["engine"]
    pieces = [inside(piece, stretches) for piece in recognised["pieces"]]
    linked, fps = linked_faces(faces)
    segments = build_segments(pieces, turns, linked, fps, order)
    words = sum(len(s["words"]) for s in segments)
    with_face = sum(w["track_id"] is not None for s in segments for w in s["words"])
    LOG.info("%d words in %d segments, %d of them on a linked face", words, len(segments), with_face)
    transcript = {
        "schema_version": SCHEMA_VERSION,
        "duration": round(recognised["duration"], 3),
        "engine": engine,
        "settings": {"model": settings.model, "language": settings.language, "compute_type": settings.compute_type,
                     "beam_size": settings.beam_size, "pad": settings.pad, "max_gap": settings.max_gap},
        "language": engine.get("language"),
        "language_probability": engine.get("language_probability"),
        "speech": [{"start": s, "end": e} for s, e in stretches],
        "speakers": [{"speaker": s, "tracks": links.get(s, []), "words": sum(len(g["words"]) for g in segments
                                                                               if g["speaker"] == s)} for s in order],
        "word_count": words,
        "segments": segments,
    }
    write_json(out_json, transcript)
    write_text(out_vtt, to_vtt(segments))
    write_text(out_srt, to_srt(segments))
    return transcript


def _timestamp(seconds):
    total = int(round(seconds * 1000))
    return f"{total // 3600000:02d}:{total // 60000 % 60:02d}:{total // 1000 % 60:02d}.{total % 1000:03d}"


def to_vtt(segments):
    """WebVTT (webvtt-py) with the speaker as the cue's voice: ``<v SPEAKER_00>words``."""
    import html

    import webvtt

    captions = [webvtt.Caption(_timestamp(start), _timestamp(end),
                               f"<v {speaker_label(speaker)}>{html.escape(text, quote=False)}")
                for start, end, speaker, text in cues(segments)]
    return webvtt.WebVTT(captions=captions).content


def to_srt(segments):
    """SubRip (srt) with the speaker in front of each cue: ``[SPEAKER_00] words``."""
    import srt

    subtitles = [srt.Subtitle(index, timedelta(seconds=start), timedelta(seconds=end),
                              f"[{speaker_label(speaker)}] {text}")
                 for index, (start, end, speaker, text) in enumerate(cues(segments), 1)]
    return srt.compose(subtitles, reindex=False) if subtitles else ""


def run_speech(job):
    """Rule ``recognise_speech``: the words of the diarized speech (Whisper)."""
    recognise_speech(job.input["video"], job.input["diarization"], job.output["words"],
                     settings_from(TranscribeSettings, job.settings), job.threads, job.gpus)


def run(job):
    """Rule ``transcribe``: the transcript from the recognised words, the speakers and the linked faces."""
    transcribe_video(job.input["words"], job.input["diarization"], job.input["faces"], job.input["speakers"],
                     job.output["json"], job.output["vtt"], job.output["srt"],
                     settings_from(TranscribeSettings, job.settings))
