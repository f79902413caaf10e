"""Speech recognisers of the ``transcribe`` step, behind one interface (imported only in envs/transcribe.yaml).

``recognise(samples, stretches, ...)`` takes 16 kHz mono int16 samples and the ``(start, end)`` stretches of speech
to transcribe (seconds); it returns ``(pieces, info)``: the recogniser's segments, each a list of words
``{"start", "end", "text", "probability"}`` in seconds of the whole audio, and what ran (engine, model, device,
language). Silence between the stretches is never decoded.
"""

import importlib.metadata
import logging
import os
import re
from pathlib import Path

import numpy as np

from vidflow.errors import UserError
from vidflow.io import sha256_file

LOG = logging.getLogger("transcribe")
RATE = 16000
WHISPER_FILES = ("model.bin", "config.json", "tokenizer.json")
SEED = 0  # CTranslate2's sampling seed (whisper's temperature fallback samples): same input, same words


def _version(dist):
    return importlib.metadata.version(dist)


# --- pocketsphinx ---

FILLER = re.compile(r"^(<.*>|\[.*\]|\+\+.*\+\+)$")  # <s>, </s>, <sil>, [NOISE], ++UH++
ALTERNATE = re.compile(r"\(\d+\)$")  # "the(2)": the dictionary's second pronunciation


def pocketsphinx_words(segments, frame_rate, offset):
    """Words from pocketsphinx segments ``(word, start_frame, end_frame, probability)``: fillers dropped,
    pronunciation variants named by their word, times in seconds from ``offset``."""
    words = []
    for word, first, last, probability in segments:
        if FILLER.match(word):
            continue
        words.append({"start": offset + first / frame_rate, "end": offset + (last + 1) / frame_rate,
                      "text": " " + ALTERNATE.sub("", word), "probability": float(probability)})
    return words


def recognise_pocketsphinx(samples, stretches, language="auto", threads=1, gpus=0):
    if language not in ("auto", "en"):
        raise UserError("transcribe.language", f"pocketsphinx ships US English only, not {language!r}; "
                        "use transcribe.engine: whisper for other languages")
    from pocketsphinx import Decoder, get_model_path

    decoder = Decoder(samprate=RATE, bestpath=True, loglevel="FATAL")
    frame_rate = decoder.config["frate"]
    model = Path(get_model_path()) / "en-us"
    LOG.info("pocketsphinx %s: model %s (US English, in the wheel), CPU, one thread", _version("pocketsphinx"), model)
    pieces = []
    for start, end in stretches:
        chunk = samples[int(round(start * RATE)):int(round(end * RATE))]
        decoder.start_utt()
        decoder.process_raw(chunk.astype("<i2").tobytes(), full_utt=True)
        decoder.end_utt()
        segments = [(s.word, s.start_frame, s.end_frame, s.prob) for s in decoder.seg()]
        pieces.append(pocketsphinx_words(segments, frame_rate, start))
    lm = model / "en-us.lm.bin"
    info = {"name": "pocketsphinx", "version": _version("pocketsphinx"), "model": "en-us (in the pocketsphinx wheel)",
            "model_sha256": sha256_file(lm) if lm.exists() else None, "device": "cpu", "language": "en",
            "language_probability": None}
    return pieces, info


# --- faster-whisper ---

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


def check_whisper_model(folder):
    """The model folder, or a one-line error: faster-whisper would otherwise try to download a missing file."""
    path = Path(folder)
    if not path.is_dir():
        raise UserError(folder, "no such model folder (pre-stage a CTranslate2 Whisper model there, "
                        "see README: Transcripts)")
    missing = [name for name in WHISPER_FILES if not (path / name).is_file()]
    if missing:
        raise UserError(folder, f"not a CTranslate2 Whisper model folder: {', '.join(missing)} missing")
    return path


def recognise_whisper(samples, stretches, model, compute_type="auto", beam_size=5, language="auto", threads=1,
                      gpus=0):
    os.environ["HF_HUB_OFFLINE"] = "1"  # never reach the hub, whatever faster-whisper would do with a bad folder
    import ctranslate2
    from faster_whisper import WhisperModel

    folder = check_whisper_model(model)
    device, why = choose_device(gpus, ctranslate2.get_cuda_device_count() if gpus else 0)
    compute = compute_type_for(compute_type, device)
    LOG.info("faster-whisper %s (CTranslate2 %s): model %s on %s (%s), %s, %d thread(s)",
             _version("faster-whisper"), ctranslate2.__version__, folder, device, why, compute, threads)
    ctranslate2.set_random_seed(SEED)
    try:
        recogniser = WhisperModel(str(folder), device=device, compute_type=compute, cpu_threads=threads)
    except (RuntimeError, ValueError) as err:
        raise UserError(folder, f"cannot load the model ({err})") from err
    if language != "auto" and language not in recogniser.supported_languages:
        raise UserError("transcribe.language", f"{language!r} is not a language of this model "
                        f"({', '.join(recogniser.supported_languages[:12])}, ...)")
    audio = samples.astype(np.float32) / 32768
    clips = [round(t, 3) for stretch in stretches for t in stretch]
    segments, result = recogniser.transcribe(audio, language=None if language == "auto" else language,
                                             beam_size=beam_size, word_timestamps=True, vad_filter=False,
                                             clip_timestamps=clips, condition_on_previous_text=True)
    pieces = [[{"start": w.start, "end": w.end, "text": w.word, "probability": w.probability}
               for w in segment.words or ()] for segment in segments]
    LOG.info("language %s (probability %.2f)", result.language, result.language_probability)
    info = {"name": "whisper", "version": _version("faster-whisper"), "model": folder.name,
            "model_sha256": sha256_file(folder / "model.bin"), "device": device, "compute_type": compute,
            "language": result.language, "language_probability": round(float(result.language_probability), 3)}
    return pieces, info


def recognise(engine, samples, stretches, settings, threads=1, gpus=0):
    """Run ``engine`` (``pocketsphinx`` or ``whisper``) on the stretches; see the module's docstring."""
    if engine == "pocketsphinx":
        return recognise_pocketsphinx(samples, stretches, settings.language, threads, gpus)
    whisper = settings.whisper
    return recognise_whisper(samples, stretches, whisper["model"], whisper["compute_type"], whisper["beam_size"],
                             settings.language, threads, gpus)
