"""Step 4: who speaks when. Audio I/O, the output formats and backend dispatch.

numpy and the standard library only, so the driver venv (tests) can import it; the
backends live in ``steps.diarization_<backend>`` and are imported only when they run,
in their own environment (``vad_embed``: envs/diarization.yaml, ``pyannote``:
envs/pyannote.yaml).

Outputs (design.md section 4): ``diarization.json`` =
``{"duration", "backend", "speakers", "segments": [{"start", "end", "speaker"}], "model",
"device", "parameters"}`` and the same segments as RTTM. Speakers are ``SPEAKER_00``,
``SPEAKER_01``... in order of first appearance; times are seconds rounded to milliseconds.
"""

import importlib
import logging
import subprocess
import time
from itertools import permutations
from pathlib import Path

import numpy as np

from vidflow.errors import UserError
from vidflow.io import atomic_path, sha256_file, write_json
from vidflow.media import ffmpeg_reason, ffprobe, pcm_command, summarize

log = logging.getLogger("diarization")
SAMPLE_RATE = 16000
BACKENDS = ("vad_embed", "pyannote")


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


# --------------------------------------------------------------------------- speech regions


def speech_regions(probs, frame_s, threshold=0.5, neg_threshold=None, min_speech=0.25, min_silence=0.1,
                   pad=0.03, duration=None):
    """Speech regions ``[(start, end)]`` in seconds from per-frame speech probabilities.

    Hysteresis as in Silero's ``get_speech_timestamps``: speech starts at a frame >= ``threshold``
    and ends once frames stay below ``neg_threshold`` (default ``threshold - 0.15``) for
    ``min_silence`` seconds; shorter silences are bridged. Regions shorter than ``min_speech``
    are dropped, the rest padded by ``pad`` on each side (never past a neighbour or the audio).
    """
    probs = np.asarray(probs, dtype=np.float64)
    if neg_threshold is None:
        neg_threshold = max(threshold - 0.15, 0.01)
    total = len(probs) * frame_s if duration is None else duration
    regions, start, silent_since = [], None, None
    for i, p in enumerate(probs):
        if start is None:
            if p >= threshold:
                start, silent_since = i, None
            continue
        if p >= threshold:
            silent_since = None
        elif p < neg_threshold:
            if silent_since is None:
                silent_since = i
            if (i + 1 - silent_since) * frame_s >= min_silence:
                regions.append((start, silent_since))
                start, silent_since = None, None
    if start is not None:
        regions.append((start, silent_since if silent_since is not None else len(probs)))
    out = [(a * frame_s, min(b * frame_s, total)) for a, b in regions if (b - a) * frame_s >= min_speech]
    padded = []
    for k, (a, b) in enumerate(out):
        lo = max(a - pad, 0.0, padded[-1][1] if padded else 0.0)
        hi = min(b + pad, total, out[k + 1][0] if k + 1 < len(out) else total)
        padded.append((lo, hi))
    return padded


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


# --------------------------------------------------------------------------- evaluation


def diarization_error_rate(reference, hypothesis, collar=0.25, step=0.001):
    """DER = (missed + false alarm + confusion) / reference speech, as pyannote.metrics defines it.

    Segments are ``{"start", "end", "speaker"}`` (or tuples). ``collar`` seconds on each side of
    every reference boundary are not scored. Speakers are mapped one-to-one to maximise the
    matched time (exhaustively for up to 8 speakers, greedily beyond). Returns
    ``{"der", "missed", "false_alarm", "confusion", "total"}`` (seconds, ``der`` a fraction).
    """
    ref = [_as_tuple(s) for s in reference]
    hyp = [_as_tuple(s) for s in hypothesis]
    end = max([e for _, e, _ in ref + hyp] + [0.0])
    n = int(np.ceil(end / step)) + 1
    ref_names = sorted({s for *_, s in ref})
    hyp_names = sorted({s for *_, s in hyp})
    R = np.zeros((len(ref_names), n), dtype=bool)
    H = np.zeros((len(hyp_names), n), dtype=bool)
    for matrix, names, segs in ((R, ref_names, ref), (H, hyp_names, hyp)):
        for start, stop, spk in segs:
            matrix[names.index(spk), int(round(start / step)):int(round(stop / step))] = True
    scored = np.ones(n, dtype=bool)
    for start, stop, _ in ref:
        for t in (start, stop):
            scored[max(0, int(round((t - collar) / step))):int(round((t + collar) / step))] = False
    R, H = R[:, scored], H[:, scored]
    n_ref, n_hyp = R.sum(0), H.sum(0)
    overlap = R.astype(np.int64) @ H.T.astype(np.int64) if len(ref_names) and len(hyp_names) else None
    mapping = _best_mapping(overlap) if overlap is not None else []
    correct = sum(int(overlap[i, j]) for i, j in mapping)
    total = int(n_ref.sum())
    missed = int(np.maximum(n_ref - n_hyp, 0).sum())
    false_alarm = int(np.maximum(n_hyp - n_ref, 0).sum())
    confusion = int(np.minimum(n_ref, n_hyp).sum()) - correct
    der = (missed + false_alarm + confusion) / total if total else float(missed + false_alarm + confusion > 0)
    return {"der": der, "missed": missed * step, "false_alarm": false_alarm * step, "confusion": confusion * step,
            "total": total * step}


def _as_tuple(segment):
    if isinstance(segment, dict):
        return float(segment["start"]), float(segment["end"]), segment["speaker"]
    return float(segment[0]), float(segment[1]), segment[2]


def _best_mapping(overlap):
    """Pairs (ref, hyp) maximising the summed overlap, one-to-one."""
    n_ref, n_hyp = overlap.shape
    if min(n_ref, n_hyp) <= 8 and max(n_ref, n_hyp) <= 8:
        best, best_pairs = -1, []
        if n_ref <= n_hyp:
            for perm in permutations(range(n_hyp), n_ref):
                score = sum(overlap[i, j] for i, j in enumerate(perm))
                if score > best:
                    best, best_pairs = score, list(enumerate(perm))
        else:
            for perm in permutations(range(n_ref), n_hyp):
                score = sum(overlap[i, j] for j, i in enumerate(perm))
                if score > best:
                    best, best_pairs = score, [(i, j) for j, i in enumerate(perm)]
        return best_pairs
    pairs, used_r, used_h = [], set(), set()
    for flat in np.argsort(-overlap, axis=None, kind="stable"):
        i, j = divmod(int(flat), n_hyp)
        if i not in used_r and j not in used_h:
            pairs.append((i, j))
            used_r.add(i)
            used_h.add(j)
    return pairs


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


def load_backend(name):
    """The backend module (imported here, so each env imports only its own backend)."""
    if name not in BACKENDS:
        raise UserError("audio.backend", f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    return importlib.import_module(f"steps.diarization_{name}")


def diarize_video(video, json_path, rttm_path, settings, threads=1, gpus=0, uri=None):
    """Diarize ``video`` and write ``diarization.json`` + ``.rttm``; returns the JSON record.

    ``settings``: ``backend``, ``num_speakers`` (0 = estimate), ``min_speakers``,
    ``max_speakers``, plus the backend's own keys (see ``steps.diarization_<backend>``).
    A video without an audio track, or without speech, gives an empty diarization.
    """
    backend = load_backend(settings["backend"])
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
    segments, speakers = finalize_segments(raw, duration, settings.get("merge_gap", 0.0))
    record = {"duration": duration, "backend": settings["backend"], "speakers": speakers, "segments": segments,
              "model": model, "device": device, "parameters": backend.parameters(settings)}
    with atomic_path(rttm_path) as tmp:
        tmp.write_text(to_rttm(segments, uri), encoding="utf-8")
    write_json(json_path, record)
    seconds = time.monotonic() - started
    log.info("done: %d speakers, %d segments, %.1f s of speech in %.1f s of audio; %.1f s wall (real-time factor "
             "%.3f)", len(speakers), len(segments), speech_seconds(segments), duration, seconds,
             seconds / max(duration, 1e-6))
    return record

