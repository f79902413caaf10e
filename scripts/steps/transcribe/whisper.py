"""Speech recognition of the ``transcribe`` step: Whisper through faster-whisper (imported only in its env).

``recognise(samples, stretches, settings, threads, gpus)`` takes 16 kHz mono int16 samples and the ``(start, end)``
stretches of diarized speech (seconds); it returns ``(pieces, info)``: the recogniser's segments, each a list of
words ``{"start", "end", "text", "probability"}`` in seconds of the whole audio, and what ran (model, checksums,
device, compute type, language and its probability, decoding settings). Only the stretches are decoded.

Against text in music and silence (Whisper's known failure): only diarized speech is decoded, and of it only
what Silero VAD (the model in faster-whisper's wheel, its default settings) also hears as speech; a window whose
no-speech probability is above ``NO_SPEECH`` while its mean log-probability is below ``LOG_PROB`` is skipped, one
whose text compresses more than ``COMPRESSION`` (a repetition loop) is decoded again at a higher temperature;
words in a long silence inside a window are dropped (``hallucination_silence_threshold``); each window starts
without the previous text (a hallucination does not propagate); and segments that are only a sound label
(``[Music]``, ``(applause)``, ``♪``) are not words. These are Whisper's own thresholds (its paper, the reference
implementation's defaults), not values fitted here.
"""

import importlib.metadata
import logging
import os
import re

import numpy as np

from steps.transcribe.weights import model_folder
from vidflow.errors import UserError

LOG = logging.getLogger("transcribe")
RATE = 16000
SEED = 0  # CTranslate2's sampling seed (the temperature fallback samples): same input, same words
NO_SPEECH, LOG_PROB, COMPRESSION = 0.6, -1.0, 2.4  # Whisper's reference thresholds
SILENCE_HALLUCINATION = 2.0  # s: words after a silence this long inside a window are checked as hallucinations
TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)  # fallback when a window fails the checks above
DETECTION_WINDOWS = 3  # 30 s windows of speech whose language probabilities are averaged
BATCH_SECONDS = 300  # the audio goes to Whisper in slices of at most this span (memory flat in the video's length)
SOUND_LABEL = re.compile(r"^\W*$|^\s*[\[(*♪♫].*[\])*♪♫]\s*$")  # only punctuation, or one bracketed/starred label


def choose_device(gpus, cuda_devices):
    """``(device, why)``: CUDA only when the rule was given a GPU and CTranslate2 sees one."""
    if gpus < 1:
        return "cpu", "the rule was given no GPU (transcribe.gpu is 0)"
    if cuda_devices < 1:
        return "cpu", "no CUDA device visible to CTranslate2"
    return "cuda", f"{cuda_devices} CUDA device(s) visible"


def compute_type_for(setting, device):
    """CTranslate2 compute type: ``auto`` is int8 on CPU, float16 on a GPU."""
    if setting != "auto":
        return setting
    return "float16" if device == "cuda" else "int8"


def voiced(audio, stretches):
    """The parts of ``stretches`` that Silero VAD hears as speech (faster-whisper's defaults: 0.4 s padding,
    pauses under 2 s bridged), as ``(start, end)`` seconds rounded to milliseconds."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    kept = []
    for start, end in stretches:
        first = int(round(start * RATE))
        chunk = audio[first:int(round(end * RATE))]
        for region in get_speech_timestamps(chunk, VadOptions(), RATE):
            low = round(max(start, (first + region["start"]) / RATE), 3)
            high = round(min(end, (first + region["end"]) / RATE), 3)
            if high > low:
                kept.append((low, high))
    return kept


def speech_audio(audio, stretches, seconds):
    """The first ``seconds`` of the stretches' audio, joined (float32 samples)."""
    parts, left = [], int(seconds * RATE)
    for start, end in stretches:
        chunk = audio[int(round(start * RATE)):int(round(end * RATE))][:left]
        parts.append(chunk)
        left -= len(chunk)
        if left <= 0:
            break
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def average_language(windows):
    """``(language, probability)`` from per-window ``[(language, probability), ...]`` lists: the mean
    probability of every language over the windows, the highest wins (ties: alphabetical)."""
    totals = {}
    for probabilities in windows:
        for language, probability in probabilities:
            totals[language] = totals.get(language, 0.0) + probability / len(windows)
    language = min(totals, key=lambda name: (-totals[name], name))
    return language, totals[language]


def detect_language(recogniser, audio, stretches):
    """The video's language and its probability, from up to ``DETECTION_WINDOWS`` windows of its speech."""
    speech = speech_audio(audio, stretches, 30 * DETECTION_WINDOWS)
    windows = [speech[i:i + 30 * RATE] for i in range(0, len(speech), 30 * RATE)]
    windows = [w for w in windows if len(w) >= RATE] or windows[:1]  # a last scrap under 1 s says little
    return average_language([recogniser.detect_language(audio=w)[2] for w in windows])


def batches(stretches, span=BATCH_SECONDS):
    """The stretches in consecutive groups whose audio (first start to last end) spans at most ``span`` s (a longer
    stretch alone), so that Whisper's features are computed for one slice at a time."""
    groups = []
    for stretch in stretches:
        if groups and stretch[1] - groups[-1][0][0] <= span:
            groups[-1].append(stretch)
        else:
            groups.append([stretch])
    return groups


def is_sound_label(text):
    """A segment that is only a sound label or punctuation (``[Music]``, ``(applause)``, ``♪ ♪``, ``...``)."""
    return bool(SOUND_LABEL.match(text.strip()))


def segment_words(segments, offset=0.0):
    """The recogniser's segments as lists of plain words, times + ``offset`` s (sound-label segments dropped);
    and how many were dropped."""
    pieces, labels = [], 0
    for segment in segments:
        if is_sound_label(segment.text):
            labels += 1
            continue
        pieces.append([{"start": offset + w.start, "end": offset + w.end, "text": w.word,
                        "probability": w.probability} for w in segment.words or ()])
    return pieces, labels


def load(folder, device, compute, threads):
    from faster_whisper import WhisperModel

    try:
        return WhisperModel(str(folder), device=device, compute_type=compute, cpu_threads=threads)
    except (RuntimeError, ValueError) as err:
        raise UserError(folder, f"cannot load the model ({' '.join(str(err).split())[:200]})") from err


def recognise(samples, stretches, settings, threads=1, gpus=0):
    """Run Whisper on the stretches; see the module's docstring. ``settings``: the step's ``TranscribeSettings``."""
    os.environ["HF_HUB_OFFLINE"] = "1"  # never reach the hub, whatever faster-whisper would do with a bad folder
    import ctranslate2

    folder, record = model_folder(settings.model)
    device, why = choose_device(gpus, ctranslate2.get_cuda_device_count() if gpus else 0)
    compute = compute_type_for(settings.compute_type, device)
    version = importlib.metadata.version("faster-whisper")
    LOG.info("faster-whisper %s (CTranslate2 %s): model %s (%s) on %s (%s), %s, %d thread(s)", version,
             ctranslate2.__version__, record["model"], folder, device, why, compute, threads)
    ctranslate2.set_random_seed(SEED)
    recogniser = load(folder, device, compute, threads)
    if settings.language != "auto" and settings.language not in recogniser.supported_languages:
        raise UserError("transcribe.language", f"{settings.language!r} is not a language of model "
                        f"{record['model']} ({', '.join(recogniser.supported_languages[:12])}, ...)")
    audio = samples.astype(np.float32) / 32768
    heard = voiced(audio, stretches)
    LOG.info("Silero VAD hears %.1f s of the %.1f s of diarized speech", sum(e - s for s, e in heard),
             sum(e - s for s, e in stretches))
    info = {"name": "whisper", "version": version, "ctranslate2": ctranslate2.__version__, **record,
            "device": device, "compute_type": compute, "threads": threads, "language": None,
            "language_probability": None, "voiced": [{"start": s, "end": e} for s, e in heard],
            "decoding": {"beam_size": settings.beam_size, "temperatures": list(TEMPERATURES), "seed": SEED,
                         "no_speech_threshold": NO_SPEECH, "log_prob_threshold": LOG_PROB,
                         "compression_ratio_threshold": COMPRESSION,
                         "hallucination_silence_threshold": SILENCE_HALLUCINATION,
                         "condition_on_previous_text": False, "vad": "silero (faster-whisper defaults)",
                         "batch_seconds": BATCH_SECONDS}}
    if not heard:
        LOG.info("no speech to decode")
        return [], info
    if settings.language != "auto":
        language, probability = settings.language, None
        LOG.info("language %s (transcribe.language)", language)
    elif not recogniser.model.is_multilingual:
        language, probability = "en", None
        LOG.info("language en (model %s is English only)", record["model"])
    else:
        language, probability = detect_language(recogniser, audio, heard)
        LOG.info("language %s detected (probability %.2f)", language, probability)
    pieces, labels = [], 0
    for group in batches(heard):
        first, last = int(round(group[0][0] * RATE)), int(round(group[-1][1] * RATE))
        offset = first / RATE
        segments, _ = recogniser.transcribe(
            audio[first:last], language=language, beam_size=settings.beam_size, temperature=list(TEMPERATURES),
            word_timestamps=True, vad_filter=False,
            clip_timestamps=[round(t - offset, 3) for s in group for t in s], condition_on_previous_text=False,
            no_speech_threshold=NO_SPEECH, log_prob_threshold=LOG_PROB, compression_ratio_threshold=COMPRESSION,
            hallucination_silence_threshold=SILENCE_HALLUCINATION)
        found, dropped = segment_words(segments, offset)
        pieces, labels = pieces + found, labels + dropped
    if labels:
        LOG.info("%d segment(s) that were only a sound label ([Music], ...) dropped", labels)
    info.update(language=language,
                language_probability=None if probability is None else round(float(probability), 3))
    return pieces, info
