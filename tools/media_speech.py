"""Speech tracks with *exact* segment times, spoken by espeak-ng voices (tools/media_factory.py).

:func:`make_speech` renders turns ``(start_sec, voice, text)`` with espeak-ng,
trims each utterance's leading/trailing silence (|sample| below 1 % of full
scale) and places it at ``start_sec`` in an otherwise digitally silent track, so
segment boundaries are exact by construction.
"""

from __future__ import annotations

import functools
import tempfile
import wave
from pathlib import Path

import numpy as np
from media_programs import require_program, run_program

SPEECH_THRESHOLD = 0.01  # fraction of full scale below which a sample counts as silence


def write_wav(path, samples: np.ndarray, sample_rate: int) -> None:
    """Write mono 16-bit PCM (deterministic, stdlib only)."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(samples.astype("<i2").tobytes())


def make_silence(path, duration, sample_rate=16000) -> dict:
    """Write ``duration`` seconds of digital silence as a mono 16-bit wav."""
    count = round(duration * sample_rate)
    write_wav(path, np.zeros(count, dtype=np.int16), sample_rate)
    return {"sample_rate": sample_rate, "duration": round(count / sample_rate, 6), "segments": []}


@functools.lru_cache(maxsize=64)
def _espeak_wav(voice: str, text: str) -> bytes:
    """Raw espeak-ng output (a 22.05 kHz wav file) for ``text``."""
    require_program("espeak-ng")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "say.wav"
        run_program(["espeak-ng", "-v", voice, "-w", str(out), "--stdin"], input=text.encode())
        return out.read_bytes()


@functools.lru_cache(maxsize=16)
def check_voice(voice: str) -> None:
    """Raise ValueError if espeak-ng silently ignores the ``+variant`` of ``voice``.

    espeak-ng 1.51 does that for language aliases such as ``en-gb+f3`` (it
    speaks plain ``en-gb``, a male voice); ``en+f3`` or ``en-us+f3`` work.
    """
    base, plus, _variant = voice.partition("+")
    if plus and _espeak_wav(voice, "check") == _espeak_wav(base, "check"):
        raise ValueError(f"espeak-ng ignores the variant in {voice!r} (same audio as {base!r}); "
                         f"try 'en+f3' for British English or 'en-us+f3'")


@functools.lru_cache(maxsize=64)
def _utterance_bytes(voice: str, text: str, sample_rate: int) -> bytes:
    require_program("ffmpeg")
    check_voice(voice)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "say.wav"
        raw.write_bytes(_espeak_wav(voice, text))
        pcm = run_program(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-i", str(raw),
                    "-ac", "1", "-ar", str(sample_rate), "-fflags", "+bitexact",
                    "-f", "s16le", "-acodec", "pcm_s16le", "pipe:1"]).stdout
    samples = np.frombuffer(pcm, dtype="<i2")
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > SPEECH_THRESHOLD * 32767)
    if loud.size == 0:
        raise RuntimeError(f"espeak-ng produced silence for voice {voice!r}: {text!r}")
    first, end = loud[0], loud[-1] + 1
    # Whole milliseconds, so that the 3-decimal segment times in the truth are exact.
    step = sample_rate // 1000 if sample_rate % 1000 == 0 else 1
    end = first + -(-(end - first) // step) * step
    utterance = samples[first:end]
    utterance = np.concatenate([utterance, np.zeros(end - first - len(utterance), dtype="<i2")])
    return utterance.tobytes()


def synthesize(voice: str, text: str, sample_rate: int = 16000) -> np.ndarray:
    """espeak-ng utterance as int16 mono at ``sample_rate``.

    Leading/trailing samples below :data:`SPEECH_THRESHOLD` are trimmed; the
    length is rounded up to whole milliseconds (when ``sample_rate`` is a
    multiple of 1000) so segment times are exact to the millisecond.
    """
    return np.frombuffer(_utterance_bytes(voice, text, sample_rate), dtype="<i2").copy()


def layout_turns(utterances, start=0.3, gap=0.5, sample_rate=16000) -> list[tuple[float, str, str]]:
    """Turn list for :func:`make_speech` with ``gap`` seconds between utterances.

    utterances: list of (voice, text).  Returns [(start_sec, voice, text), ...]
    (starts rounded to the millisecond); make_speech() reports the exact ends.
    """
    turns, t = [], start
    for voice, text in utterances:
        turns.append((round(t, 3), voice, text))
        t = round(t, 3) + len(synthesize(voice, text, sample_rate)) / sample_rate + gap
    return turns


def make_speech(path, turns, duration, sample_rate=16000) -> dict:
    """Write a mono wav of ``duration`` s with espeak-ng speech at the given turns.

    turns: list of (start_sec, voice, text).  Each utterance is trimmed of
    silence and starts exactly at start_sec rounded to the millisecond, so the
    returned times are exact (for sample rates that are multiples of 1000 Hz).
    Raises ValueError if turns overlap or run past ``duration``.
    Returns {"sample_rate", "duration", "segments": [{"start", "end", "speaker", "text"}]}.
    """
    total = round(duration * sample_rate)
    track = np.zeros(total, dtype=np.int16)
    segments, previous_end = [], 0
    for start_sec, voice, text in sorted(turns, key=lambda t: t[0]):
        if start_sec < 0:
            raise ValueError(f"turn {text!r} starts before 0")
        utterance = synthesize(voice, text, sample_rate)
        first = round(round(start_sec, 3) * sample_rate)
        last = first + len(utterance)
        if first < previous_end:
            raise ValueError(f"turn {text!r} at {start_sec}s overlaps the previous turn")
        if last > total:
            raise ValueError(f"turn {text!r} ends at {last / sample_rate:.3f}s, after {duration}s")
        track[first:last] = utterance
        previous_end = last
        segments.append({"start": round(first / sample_rate, 3), "end": round(last / sample_rate, 3),
                         "speaker": voice, "text": text})
    write_wav(path, track, sample_rate)
    return {"sample_rate": sample_rate, "duration": round(total / sample_rate, 6), "segments": segments}


def mix_speech(path, turns, duration, sample_rate=16000) -> dict:
    """Like :func:`make_speech`, but turns of *different* voices may overlap (people talking at once): each voice's
    turns are rendered on a track of their own (``<path stem>.<n>.wav``, n in order of the voices' first turns; what
    :func:`speech_envelope` reads to drive that voice's mouth) and the tracks are summed into ``path``.
    Returns make_speech's record with ``segments`` of every voice sorted by (start, end, speaker) and ``tracks``
    (voice -> its own wav)."""
    path, voices = Path(path), list(dict.fromkeys(voice for _, voice, _ in sorted(turns, key=lambda t: t[0])))
    mix, segments, tracks = np.zeros(round(duration * sample_rate), dtype=np.int32), [], {}
    for n, voice in enumerate(voices):
        tracks[voice] = path.with_name(f"{path.stem}.{n}.wav")
        own = make_speech(tracks[voice], [t for t in turns if t[1] == voice], duration, sample_rate)
        segments += own["segments"]
        with wave.open(str(tracks[voice])) as handle:
            mix += np.frombuffer(handle.readframes(handle.getnframes()), dtype="<i2")
    write_wav(path, np.clip(mix, -32768, 32767), sample_rate)
    return {"sample_rate": sample_rate, "duration": round(len(mix) / sample_rate, 6), "tracks": tracks,
            "segments": sorted(segments, key=lambda s: (s["start"], s["end"], s["speaker"]))}


def speech_envelope(wav_path, segments, voice, frames, fps=25) -> np.ndarray:
    """Per video frame, the RMS of ``voice``'s turns only (0..1, normalised to its loudest frame): what drives the
    mouth of a talking face (media_clips.open_mouth) in step with its voice."""
    with wave.open(str(wav_path)) as handle:
        rate = handle.getframerate()
        samples = np.frombuffer(handle.readframes(handle.getnframes()), dtype="<i2").astype(np.float64)
    mask = np.zeros_like(samples, dtype=bool)
    for seg in segments:
        if seg["speaker"] == voice:
            mask[round(seg["start"] * rate):round(seg["end"] * rate)] = True
    voiced = np.where(mask, samples, 0.0)
    edges = [round(f * rate / fps) for f in range(frames + 1)]
    rms = np.array([np.sqrt(np.mean(voiced[a:b] ** 2)) if a < min(b, len(voiced)) else 0.0
                    for a, b in zip(edges, edges[1:])])
    return rms / rms.max()

