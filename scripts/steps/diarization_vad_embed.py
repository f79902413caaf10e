"""Diarization backend ``vad_embed`` (the default; offline, CPU): Silero VAD + Resemblyzer + spectral clustering.

1. Speech regions: Silero VAD (``silero_vad.onnx`` from the silero-vad wheel) run with
   onnxruntime alone. The package itself is never imported (``import silero_vad`` changes
   torch's thread settings process-wide); its ONNX file is located through the installed
   distribution. Long audio is cut into independent streams (each warmed up on the 2 s before
   it) that run as one batch.
2. Embeddings: Resemblyzer's speaker encoder (``pretrained.pt`` from its wheel) on 1.6 s
   partial windows every ``1 / embed_rate`` s *inside* the speech regions (shorter regions get
   one window of their own length). torch runs with one thread: Resemblyzer's LSTM is ~8x
   slower with two threads on two cores.
3. Clustering: spectral clustering with an eigengap estimate of the speaker count
   (``steps.diarization_cluster``), then per-region temporal smoothing of the window labels
   (majority over neighbouring windows); speaker changes fall midway between windows.
"""

import importlib.metadata
import logging
import time
from dataclasses import fields
from importlib.util import find_spec
from pathlib import Path

import numpy as np

from steps.diarization import speech_regions
from steps.diarization_cluster import cluster_embeddings
from vidflow import interrupt
from vidflow.errors import UserError
from vidflow.io import sha256_file

log = logging.getLogger("diarization.vad_embed")

VAD_FRAME = 512  # samples per Silero frame at 16 kHz
VAD_CONTEXT = 64  # samples of the previous frame Silero v5+ prepends
VAD_STREAM_FRAMES = 1875  # 60 s per independent stream
VAD_WARMUP_FRAMES = 63  # ~2 s of audio run before a stream's own frames and discarded
MEL_HOP = 160  # 10 ms
MEL_FFT = 400  # 25 ms
PARTIAL_FRAMES = 160  # 1.6 s, Resemblyzer's partial utterance
BATCH = 64

# Fixed parts of the method (not settings), recorded with the settings in diarization.json's "parameters":
# padding of speech regions (s), windows each side in the label smoothing, embeddings clustered at most.
FIXED = {"speech_pad": 0.03, "smoothing": 2, "max_cluster_points": 1000}


def _package_file(dist, package, relative):
    """Path of a data file of an installed package, found without importing the package."""
    spec = find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise UserError("diarization.backend", f"vad_embed needs the {dist} package (envs/diarization.yaml)")
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.exists():
        raise UserError(path, f"model file missing from the {dist} package")
    return path


def model_files():
    return {"vad": _package_file("silero-vad", "silero_vad", "data/silero_vad.onnx"),
            "embedding": _package_file("resemblyzer", "resemblyzer", "pretrained.pt")}


def model_info(settings):
    """Names, versions and SHA-256 of the model files (no absolute paths: outputs stay byte-identical)."""
    files = model_files()
    return {"vad": {"name": "silero-vad", "version": importlib.metadata.version("silero-vad"),
                    "file": "silero_vad/data/silero_vad.onnx", "sha256": sha256_file(files["vad"])},
            "embedding": {"name": "resemblyzer", "version": importlib.metadata.version("resemblyzer"),
                          "file": "resemblyzer/pretrained.pt", "sha256": sha256_file(files["embedding"])},
            "clustering": "spectral (NME-SC eigengap)"}


def parameters(settings):
    """The settings (VadEmbedSettings) and the fixed parts of the method, as diarization.json records them."""
    return {**{item.name: getattr(settings, item.name) for item in fields(settings)}, **FIXED}


# --------------------------------------------------------------------------- VAD


def vad_session(path):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def vad_probabilities(samples, session, sample_rate=16000):
    """Silero speech probability of every 512-sample frame (32 ms), the audio run as parallel streams."""
    n_frames = -(-len(samples) // VAD_FRAME)
    padded = np.zeros(n_frames * VAD_FRAME, dtype=np.float32)
    padded[:len(samples)] = samples
    frames = padded.reshape(n_frames, VAD_FRAME)
    starts = list(range(0, n_frames, VAD_STREAM_FRAMES))
    first = [max(0, s - VAD_WARMUP_FRAMES) for s in starts]
    length = max(min(s + VAD_STREAM_FRAMES, n_frames) - f for s, f in zip(starts, first))
    batch = np.zeros((len(starts), length, VAD_FRAME), dtype=np.float32)
    for b, f in enumerate(first):
        chunk = frames[f:min(starts[b] + VAD_STREAM_FRAMES, n_frames)]
        batch[b, :len(chunk)] = chunk
    state = np.zeros((2, len(starts), 128), dtype=np.float32)
    context = np.zeros((len(starts), VAD_CONTEXT), dtype=np.float32)
    rate = np.array(sample_rate, dtype=np.int64)
    out = np.zeros((len(starts), length), dtype=np.float32)
    for i in range(length):
        x = np.concatenate([context, batch[:, i]], axis=1)
        prob, state = session.run(None, {"input": x, "state": state, "sr": rate})
        out[:, i] = prob[:, 0]
        context = x[:, -VAD_CONTEXT:]
    probs = np.zeros(n_frames, dtype=np.float32)
    for b, (s, f) in enumerate(zip(starts, first)):
        stop = min(s + VAD_STREAM_FRAMES, n_frames)
        probs[s:stop] = out[b, s - f:stop - f]
    return probs


# --------------------------------------------------------------------------- embeddings


def mel_filters():
    """Resemblyzer's mel filterbank (librosa's, as ``librosa.feature.melspectrogram`` builds it)."""
    import librosa

    return librosa.filters.mel(sr=16000, n_fft=MEL_FFT, n_mels=40).astype(np.float32)


def mel_frames(samples, filters, chunk=8192):
    """Resemblyzer's mel spectrogram (power, centred frames, zero padding): ``(frames, 40)`` float32.

    Same values as ``resemblyzer.wav_to_mel_spectrogram`` but computed in chunks of frames,
    so memory stays bounded however long the audio is.
    """
    n_frames = 1 + len(samples) // MEL_HOP
    padded = np.pad(samples.astype(np.float32), (MEL_FFT // 2, MEL_FFT // 2))
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(MEL_FFT) / MEL_FFT)).astype(np.float32)
    out = np.empty((n_frames, filters.shape[0]), dtype=np.float32)
    for start in range(0, n_frames, chunk):
        stop = min(start + chunk, n_frames)
        index = (np.arange(start, stop) * MEL_HOP)[:, None] + np.arange(MEL_FFT)[None]
        spectrum = np.fft.rfft(padded[index] * window, axis=1)
        power = (spectrum.real ** 2 + spectrum.imag ** 2).astype(np.float32)
        out[start:stop] = power @ filters.T
    return out


def partial_windows(n_frames, rate):
    """Start frames of the 1.6 s windows covering a region of ``n_frames`` mel frames."""
    if n_frames <= PARTIAL_FRAMES:
        return [0]
    step = max(1, int(round(100 / rate)))
    starts = list(range(0, n_frames - PARTIAL_FRAMES + 1, step))
    if starts[-1] != n_frames - PARTIAL_FRAMES:
        starts.append(n_frames - PARTIAL_FRAMES)
    return starts


class Embedder:
    """Resemblyzer's speaker encoder on one CPU thread."""

    def __init__(self, weights):
        import torch

        torch.set_num_threads(1)
        self.torch = torch
        from resemblyzer import VoiceEncoder

        self.encoder = VoiceEncoder("cpu", verbose=False, weights_fpath=weights).eval()

    def __call__(self, mels):
        with self.torch.inference_mode():
            return self.encoder(self.torch.from_numpy(np.ascontiguousarray(mels))).numpy()


def embed_regions(samples, regions, embedder, filters, rate, sample_rate=16000):
    """Partial embeddings inside each region: ``(embeddings (N, 256), centres (N,) s, region index (N,))``."""
    full, full_meta, short = [], [], []
    embeddings, centres, owners = [], [], []

    def flush():
        if full:
            embeddings.append(embedder(np.stack(full)))
            centres.extend(c for c, _ in full_meta)
            owners.extend(r for _, r in full_meta)
            full.clear()
            full_meta.clear()

    for r, (start, end) in enumerate(regions):
        a, b = int(round(start * sample_rate)), int(round(end * sample_rate))
        mel = mel_frames(samples[a:b], filters)
        for s in partial_windows(len(mel), rate):
            window = mel[s:s + PARTIAL_FRAMES]
            centre = start + (s + len(window) / 2) * MEL_HOP / sample_rate
            if len(window) < PARTIAL_FRAMES:
                short.append((window, centre, r))
                continue
            full.append(window)
            full_meta.append((centre, r))
            if len(full) == BATCH:
                flush()
    flush()
    for window, centre, r in short:
        embeddings.append(embedder(window[None]))
        centres.append(centre)
        owners.append(r)
    if not embeddings:
        return np.zeros((0, 256), np.float32), np.zeros(0), np.zeros(0, int)
    embeddings = np.concatenate(embeddings)
    centres, owners = np.array(centres), np.array(owners)
    order = np.lexsort((centres, owners))
    return embeddings[order], centres[order], owners[order]


# --------------------------------------------------------------------------- labels -> segments


def smooth_labels(labels, width):
    """Majority vote over ``width`` windows on each side (ties keep the window's own label)."""
    labels = np.asarray(labels)
    if width <= 0 or len(labels) < 3:
        return labels.copy()
    out = labels.copy()
    for i in range(len(labels)):
        votes = np.bincount(labels[max(0, i - width):i + width + 1])
        if votes.max() > votes[labels[i]]:
            out[i] = int(votes.argmax())
    return out


def label_segments(regions, centres, owners, labels, smoothing=2):
    """Segments ``(start, end, label)``: each region split where the smoothed window label changes."""
    segments = []
    for r, (start, end) in enumerate(regions):
        mine = np.flatnonzero(owners == r)
        if mine.size == 0:
            continue
        lab = smooth_labels(labels[mine], smoothing)
        cen = centres[mine]
        seg_start = start
        for i in range(1, len(lab)):
            if lab[i] != lab[i - 1]:
                cut = (cen[i - 1] + cen[i]) / 2
                segments.append((seg_start, cut, int(lab[i - 1])))
                seg_start = cut
        segments.append((seg_start, end, int(lab[-1])))
    return segments


# --------------------------------------------------------------------------- backend entry point


def diarize(samples, sample_rate, settings, threads=1, gpus=0):
    """``{"segments": [(start, end, label)], "device": ...}`` for mono float32 ``samples``."""
    if sample_rate != 16000:
        raise ValueError("vad_embed works on 16 kHz audio")
    if gpus:
        log.info("vad_embed runs on the CPU (Resemblyzer and Silero are small): ignoring the %d GPU(s)", gpus)
    log.info("torch and onnxruntime use 1 thread (Resemblyzer's LSTM is much slower with more); rule threads=%d",
             threads)
    files = model_files()
    t0 = time.monotonic()
    with interrupt.held():  # a Ctrl-C cannot cut onnxruntime's import short; it stops the step right after
        session = vad_session(files["vad"])
    probs = vad_probabilities(samples, session, sample_rate)
    regions = speech_regions(probs, VAD_FRAME / sample_rate, threshold=settings.vad_threshold,
                             min_speech=settings.min_speech, min_silence=settings.min_silence,
                             pad=FIXED["speech_pad"], duration=len(samples) / sample_rate)
    t1 = time.monotonic()
    speech = sum(b - a for a, b in regions)
    log.info("VAD: %d speech regions, %.1f s of speech (%.1f s)", len(regions), speech, t1 - t0)
    if not regions:
        return {"segments": [], "device": "cpu"}
    with interrupt.held():  # torch, resemblyzer and librosa imports
        embedder, filters = Embedder(files["embedding"]), mel_filters()
    embeddings, centres, owners = embed_regions(samples, regions, embedder, filters, settings.embed_rate,
                                                sample_rate)
    t2 = time.monotonic()
    log.info("embeddings: %d partial windows (%.1f s)", len(embeddings), t2 - t1)
    labels, info = cluster_embeddings(embeddings, settings.num_speakers, settings.min_speakers,
                                      settings.max_speakers, FIXED["max_cluster_points"], times=centres,
                                      exclude_within=PARTIAL_FRAMES * MEL_HOP / sample_rate,
                                      merge_similarity=settings.merge_similarity)
    log.info("clustering: %s (%.1f s)", info, time.monotonic() - t2)
    return {"segments": label_segments(regions, centres, owners, labels, FIXED["smoothing"]), "device": "cpu"}
