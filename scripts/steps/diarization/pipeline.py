"""Step 4: who speaks when. Audio I/O, the output formats and backend dispatch.

numpy and the standard library only, so the driver venv (tests) can import it; the
backends live in ``steps.diarization.<backend module>`` and are imported only when they run,
in their own environment (``segment_embed``: envs/diarization.yaml, ``pyannote``:
envs/diarization_pyannote.yaml). Each backend reads the ``diarization`` config section as its own settings
(:class:`SegmentEmbedSettings`, :class:`PyannoteSettings`; keys and defaults: config/schema.yaml).

Outputs (design.md section 4): ``diarization.json`` =
``{"duration", "backend", "speakers", "segments": [{"start", "end", "speaker"}], "model",
"device", "parameters"}`` and the same segments as RTTM. Speakers are ``SPEAKER_00``,
``SPEAKER_01``... in order of first appearance; times are seconds rounded to milliseconds. Segments of different
speakers may overlap (two people talking at once); a speaker's own segments never do.
"""

import importlib
import logging
import os
import subprocess
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import ClassVar

import numpy as np

from vidflow.errors import UserError
from vidflow.io import atomic_path, write_json
from vidflow.job import settings_from
from vidflow.media import ffmpeg_reason, ffprobe, pcm_command, summarize

log = logging.getLogger("diarization")
SAMPLE_RATE = 16000


def _as_floats(settings):
    """Number settings as floats (a config may write ``8`` for ``8.0``): what is recorded does not depend on it."""
    for item in fields(settings):
        if item.type is float:
            object.__setattr__(settings, item.name, float(getattr(settings, item.name)))


@dataclass(frozen=True)
class SegmentEmbedSettings:
    """The ``diarization`` section as the ``segment_embed`` backend reads it (steps.diarization.segment_embed)."""

    backend: ClassVar[str] = "segment_embed"
    num_speakers: int  # 0: estimate the count between min_speakers and max_speakers
    min_speakers: int
    max_speakers: int
    step: float  # seconds between the 10 s segmentation windows
    threshold: float  # cosine distance between groups of CAM++ embeddings (average linkage) that stays one speaker
    min_cluster_size: int  # embeddings a cluster needs to stand as a speaker (smaller ones join the nearest)
    min_silence: float  # seconds: a speaker's shorter pauses do not end its turn

    def __post_init__(self):
        _as_floats(self)

    @property
    def merge_gap(self):
        """Turns of one speaker this close (s) are one turn."""
        return self.min_silence


@dataclass(frozen=True)
class PyannoteSettings:
    """The ``diarization`` section as the ``pyannote`` backend reads it (its ``pyannote`` subsection flattened)."""

    backend: ClassVar[str] = "pyannote"
    num_speakers: int
    min_speakers: int
    max_speakers: int
    pipeline: str  # local pipeline folder or hub name
    token_env: str  # environment variable holding the hub token
    merge_gap: ClassVar[float] = 0.0  # pyannote's turns are published as they come


BACKENDS = {"segment_embed": SegmentEmbedSettings, "pyannote": PyannoteSettings}


# --------------------------------------------------------------------------- audio


def read_audio(video, sample_rate=SAMPLE_RATE):
    """Decode the first audio stream of ``video`` to mono float32 at ``sample_rate`` (in memory).

    Returns ``(samples, duration)``: ``duration`` is the container's duration in seconds;
    ``samples`` is empty when the video has no audio stream.
    """
    info = summarize(ffprobe(video))
    duration = info["duration"]
    if info["audio"] is None:
        log.info("%s has no audio stream: no speech", video)
        return np.zeros(0, dtype=np.float32), duration
    proc = subprocess.run(pcm_command(video, sample_rate), capture_output=True, check=False)
    if proc.returncode != 0:
        reason = ffmpeg_reason(proc.stderr.decode(errors="replace")) or "ffmpeg failed"
        raise UserError(video, f"cannot decode the audio ({reason})")
    samples = np.frombuffer(proc.stdout, dtype="<i2").astype(np.float32) / 32768.0
    log.info("decoded %.2f s of audio (%d samples at %d Hz) from %s", len(samples) / sample_rate, len(samples),
             sample_rate, video)
    return samples, duration


# --------------------------------------------------------------------------- segments


def merge_segments(segments, max_gap=0.0):
    """Sort ``(start, end, speaker)`` and join runs of one speaker that overlap or are <= ``max_gap`` apart."""
    merged = []
    for start, end, speaker in sorted(segments, key=lambda s: (str(s[2]), s[0], s[1])):
        if end <= start:
            continue
        if merged and merged[-1][2] == speaker and start - merged[-1][1] <= max_gap + 1e-9:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end), speaker)
        else:
            merged.append((start, end, speaker))
    return sorted(merged, key=lambda s: (s[0], s[1], str(s[2])))


def rename_speakers(segments):
    """Rename labels to ``SPEAKER_00``, ``SPEAKER_01``... in order of first appearance.

    ``segments`` must be sorted by time; returns ``(segments, speakers)``.
    """
    names = {}
    for _, _, label in segments:
        names.setdefault(label, f"SPEAKER_{len(names):02d}")
    return [(s, e, names[label]) for s, e, label in segments], list(names.values())


def finalize_segments(segments, duration, max_gap=0.0):
    """Clip to ``[0, duration]``, round to ms, merge, sort and rename: the published segment list."""
    clipped = []
    for start, end, label in segments:
        start, end = round(max(0.0, float(start)), 3), round(min(float(duration), float(end)), 3)
        if end > start:
            clipped.append((start, end, label))
    segments, speakers = rename_speakers(merge_segments(clipped, max_gap))
    return [{"start": s, "end": e, "speaker": spk} for s, e, spk in segments], speakers


def to_rttm(segments, uri):
    """RTTM lines (NIST format) for the segments of recording ``uri``."""
    lines = [f"SPEAKER {uri} 1 {seg['start']:.3f} {seg['end'] - seg['start']:.3f} <NA> <NA> {seg['speaker']} "
             "<NA> <NA>\n" for seg in segments]
    return "".join(lines)


def read_rttm(text):
    """Segments ``[{"start", "end", "speaker"}]`` from RTTM text (times rounded to ms)."""
    segments = []
    for line in text.splitlines():
        fields = line.split()
        if fields and fields[0] == "SPEAKER":
            start, dur = float(fields[3]), float(fields[4])
            segments.append({"start": round(start, 3), "end": round(start + dur, 3), "speaker": fields[7]})
    return segments


# --------------------------------------------------------------------------- summaries


def speech_seconds(segments):
    """Total time during which anybody speaks (overlaps counted once)."""
    total, last = 0.0, 0.0
    for seg in sorted(segments, key=lambda s: s["start"]):
        start = max(seg["start"], last)
        if seg["end"] > start:
            total += seg["end"] - start
            last = seg["end"]
    return total


# --------------------------------------------------------------------------- the step


def diarization_settings(section):
    """The settings of the backend that the ``diarization`` config section ``section`` names."""
    name = section["backend"]
    if name not in BACKENDS:
        raise UserError("diarization.backend", f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    return settings_from(BACKENDS[name], {**section, **section.get(name, {})})


BACKEND_MODULES = {"segment_embed": "segment_embed", "pyannote": "pyannote_backend"}


def load_backend(name):
    """The backend module (imported here, so each env imports only its own backend)."""
    return importlib.import_module(f"steps.diarization.{BACKEND_MODULES[name]}")


def diarize_video(video: str, json_path: str, rttm_path: str, settings: SegmentEmbedSettings | PyannoteSettings,
                  threads: int = 1, gpus: int = 0, uri: str | None = None) -> dict:
    """Diarize ``video`` and write ``diarization.json`` + ``.rttm``; returns the JSON record.

    ``settings``: the backend's (:func:`diarization_settings`). A video without an audio track, or without
    speech, gives an empty diarization.
    """
    backend = load_backend(settings.backend)
    uri = uri or Path(json_path).parent.name
    started = time.monotonic()
    model = backend.model_info(settings)  # first: a misconfigured backend fails before any decoding
    samples, duration = read_audio(video)
    if samples.size == 0:
        raw, device = [], "none (no audio stream)"
    else:
        result = backend.diarize(samples, SAMPLE_RATE, settings, threads=threads, gpus=gpus)
        raw, device = result["segments"], result["device"]
    duration = round(duration or samples.size / SAMPLE_RATE, 3)
    segments, speakers = finalize_segments(raw, duration, settings.merge_gap)
    record = {"duration": duration, "backend": settings.backend, "speakers": speakers, "segments": segments,
              "model": model, "device": device, "parameters": backend.parameters(settings)}
    with atomic_path(rttm_path) as tmp:
        tmp.write_text(to_rttm(segments, uri), encoding="utf-8")
    write_json(json_path, record)
    seconds = time.monotonic() - started
    log.info("done: %d speakers, %d segments, %.1f s of speech in %.1f s of audio; %.1f s wall (real-time factor "
             "%.3f)", len(speakers), len(segments), speech_seconds(segments), duration, seconds,
             seconds / max(duration, 1e-6))
    return record


def run(job):
    os.environ["PYANNOTE_METRICS_ENABLED"] = "0"
    diarize_video(job.input["video"], job.output["json"], job.output["rttm"], diarization_settings(job.settings),
                  job.threads, job.gpus)
