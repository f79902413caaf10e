"""Voice identity: one 256-d Resemblyzer embedding per diarization speaker (pretrained.pt ships in its wheel).

A speaker's embedding is Resemblyzer's utterance embedding of its longest turns put together (up to
``max_voice_seconds``), without the parts where another speaker talks at the same time (their voices are mixed in),
after Resemblyzer's own preprocessing (volume normalisation, webrtcvad trimming of pauses). A speaker with less than
``min_voice_seconds`` of such speech gets none: it stays unassigned across videos.
"""

import hashlib
import importlib.util
import subprocess
from pathlib import Path

import numpy as np

from vidflow.errors import UserError
from vidflow.media import ffmpeg_reason, pcm_command
from vidflow.turns import solo_spans

SAMPLE_RATE = 16000


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
    """Resemblyzer's voice encoder on the CPU (its weights in the resemblyzer wheel)."""

    def __init__(self, threads: int = 1):
        # One thread whatever the job was given: torch's and OpenBLAS's kernels (the mel filterbank is a matrix
        # product) round differently with other thread counts (Snakemake sets OMP_NUM_THREADS to the rule's
        # threads), and a job's outputs must not depend on the machine. The encoder is small: seconds per video.
        import torch
        from resemblyzer import VoiceEncoder

        torch.set_num_threads(1)
        self.encoder = VoiceEncoder("cpu", verbose=False)

    def embed(self, samples: np.ndarray) -> tuple:
        """(embedding, seconds of speech kept by Resemblyzer's preprocessing)."""
        from resemblyzer import preprocess_wav
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1):
            wav = preprocess_wav(samples, source_sr=SAMPLE_RATE)
            if len(wav) < SAMPLE_RATE:  # Resemblyzer needs at least one 1.6 s window's worth after trimming
                return None, len(wav) / SAMPLE_RATE
            return self.encoder.embed_utterance(wav), len(wav) / SAMPLE_RATE


def model_record() -> dict:
    spec = importlib.util.find_spec("resemblyzer")
    weights = Path(list(spec.submodule_search_locations)[0]) / "pretrained.pt"
    return {"name": "resemblyzer", "version": "0.1.4", "file": "resemblyzer/pretrained.pt",
            "sha256": hashlib.sha256(weights.read_bytes()).hexdigest()}


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
                entry["reason"] = f"{kept:.1f} s of voiced speech < {settings.min_voice_seconds} s"
            else:
                entry["embedding"] = [round(float(v), 6) for v in vector]
        result[speaker] = entry
    return result
