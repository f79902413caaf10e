"""Transcript clips of the real dev set: real recorded lines with their reference text, and no-speech clips.

Kind ``transcript`` (built by tools/real_media.py, scored by benchmarks/quality.py): per clip the spoken lines
with their text as their package writes it (truth ``segments``: start, end, speaker, text, source), so word error
rate, language and who-said-it can be scored:

- read and prompt speech of one voice per language: the LibriVox reader of pocketsphinx's tests (English, with
  ``.txt`` per utterance), the Asterisk prompts of June (fr-CA), Carlo (it) and Allison (es-MX) with the text
  lists of ``asterisk-core-sounds-<lang>`` (``usr/share/doc/.../core-sounds-<lang>.txt.gz``: ``name: text``);
- a real dialogue: Fish Fillets NG's Czech lines of the big and the small fish in the game's own order
  (``dialogs_cs.lua``: each line's id, speaker font and Czech text), taking turns, and the same with the next
  line starting before the last one ends (overlaps, for who-said-it);
- ``music`` (the game's instrumental music) and ``silence`` (a faint noise floor): no words are right.

Prompts whose listed text is not what is said (``...``, ``[tones]``, a translation in brackets, numbers read in
an unknown way) are left out, by rules on the text alone.
"""

import gzip
import re

import numpy as np
import real_media_audio as audio
import real_media_sources as sources

RATE = sources.RATE
ASTERISK_TEXT = {"fr_june": "fr", "it_carlo": "it", "es_allison": "es"}
UNSURE = re.compile(r"\.\.\.|…|[\[\](){}<>*#@/\\_=+]|\d|https?:|www\.")  # text that is not what is said

# name: (voices, seconds, seed, overlap share of turns, language, what it tests)
TRANSCRIPT = {
    "asr_en_reader": (["en_reader"], 60, 201, 0.0, "en", "English read speech (LibriVox reader, 5 lines)"),
    "asr_fr_june": (["fr_june"], 60, 202, 0.0, "fr", "French (Canadian) telephone prompts, one woman"),
    "asr_it_carlo": (["it_carlo"], 60, 203, 0.0, "it", "Italian telephone prompts, one man"),
    "asr_es_allison": (["es_allison"], 60, 204, 0.0, "es", "Spanish (Mexican) telephone prompts, one woman"),
    "asr_cs_dialogue": (["cz_big", "cz_small"], 60, 205, 0.0, "cs", "Czech dialogue of two voice actors, turns"),
    "asr_cs_overlap": (["cz_big", "cz_small"], 60, 206, 0.5, "cs",
                       "the Czech dialogue with half the turns starting 0.3-0.8 s before the last one ends"),
}
NO_SPEECH = {
    "asr_music": ("music", 30, 207, "instrumental music (Fish Fillets NG's soundtrack): no words"),
    "asr_silence": ("silence", 30, 208, "30 s of a faint noise floor (-70 dBFS): no words"),
}


def usable(text):
    """Whether a listed text is what is said (see the module doc): words only, at least three of them."""
    return bool(text) and not UNSURE.search(text) and len(text.split()) >= 3


def asterisk_texts(language, cache):
    """``{prompt name: text}`` from ``core-sounds-<language>.txt.gz`` (names may have a folder: ``digits/1``)."""
    folder = sources.unpacked(f"asterisk-core-sounds-{language}", cache)
    path = folder / f"usr/share/doc/asterisk-core-sounds-{language}/core-sounds-{language}.txt.gz"
    texts = {}
    for line in gzip.decompress(path.read_bytes()).decode("utf-8-sig").splitlines():
        name, sep, text = line.partition(":")
        if sep and not line.startswith(";"):
            texts[name.strip()] = text.strip().strip('"').strip()
    return texts


def fillets_dialogue(cache, fonts):
    """``[(font, sound file relative to the cs package, Czech text)]`` of every level in the game's order."""
    scripts, sounds = sources.unpacked("fillets-ng-data", cache), sources.unpacked("fillets-ng-data-cs", cache)
    pattern = re.compile(r'dialogId\("([^"]+)",\s*"([^"]*)",\s*"(?:[^"\\]|\\.)*"\)\s*dialogStr\("((?:[^"\\]|\\.)*)"')
    lines = []
    for script in sorted((scripts / sources.FILLETS / "script").glob("*/dialogs_cs.lua")):
        for dialog_id, font, text in pattern.findall(script.read_text(encoding="utf-8")):
            rel = f"{sources.FILLETS}/sound/{script.parent.name}/cs/{dialog_id}.ogg"
            if font in fonts and (sounds / rel).exists():
                lines.append((font, rel, text.replace('\\"', '"')))
    return lines


def lines_of(voice, cache, rng):
    """``[(package, path, text)]`` of a one-voice clip: its recordings with a usable text, in a seeded order."""
    if voice == "en_reader":
        folder = sources.unpacked("pocketsphinx", cache)
        pairs = [(p, (folder / p).with_suffix(".txt").read_text().strip()) for _, p in sources.recordings(voice, cache)]
    else:
        texts = asterisk_texts(ASTERISK_TEXT[voice], cache)
        base = sources.VOICES[voice].folder + "/"
        pairs = [(p, texts.get(p.removeprefix(base).rsplit(".", 1)[0], ""))
                 for _, p in sources.recordings(voice, cache)]
    pairs = [(sources.VOICES[voice].package, p, t) for p, t in pairs if usable(t)]
    return [pairs[i] for i in rng.permutation(len(pairs))]


def dialogue_lines(voices, cache, rng):
    """``[(voice, package, path, text)]``: the fish's lines in the game's order, from a seeded level onwards."""
    fonts = {sources.VOICES[v].font: v for v in voices}
    lines = [(fonts[f], "fillets-ng-data-cs", rel, text) for f, rel, text in fillets_dialogue(cache, fonts)
             if usable(text)]
    start = int(rng.integers(len(lines) // 2))
    return lines[start:] + lines[:start]


def trimmed(cache, package, rel):
    """The recording trimmed to its speech, level-normalised (float64)."""
    samples = sources.decode(cache, package, rel)
    regions = audio.speech_regions(samples)
    if not regions:
        return None
    clip = samples[regions[0][0]:regions[-1][1]].astype(np.float64)
    level = 20 * np.log10(np.sqrt(np.mean(clip ** 2)) + 1e-9)
    return clip * 10 ** ((audio.LEVEL_DB - level) / 20)


def place_lines(lines, seconds, rng, overlap):
    """``(track, segments)``: the lines one after another (pauses 0.5-1.2 s), each turn starting 0.3-0.8 s before
    the last one ends with probability ``overlap`` (two speakers); at most ``seconds`` long."""
    placed, t, last_speaker = [], 0.5, None
    for speaker, package, rel, text, samples in lines:
        length = len(samples) / RATE
        if placed and speaker != last_speaker and rng.random() < overlap:
            start = max(placed[-1][1] - rng.uniform(0.3, min(0.8, 0.5 * length)), placed[-1][0] + 0.3)
        else:
            start = t + (rng.uniform(0.5, 1.2) if placed else 0.0)
        start = round(start, 2)
        if start + length > seconds - 0.5:
            break
        placed.append((start, start + length, speaker, package, rel, text, samples))
        t, last_speaker = max(t, start + length), speaker
    total = int(round((max(p[1] for p in placed) + 0.6) * RATE))
    track = np.zeros(total)
    segments = []
    for start, _end, speaker, package, rel, text, samples in placed:
        first = int(round(start * RATE))
        track[first:first + len(samples)] += samples
        segments.append({"start": round(start, 3), "end": round(first / RATE + len(samples) / RATE, 3),
                         "speaker": speaker, "text": text, "source": f"{package}:{rel}"})
    return track, sorted(segments, key=lambda s: (s["start"], s["speaker"]))


def build_transcript(name, cache, tmp):
    """A transcript clip (``TRANSCRIPT``): <name>.wav, .mp4, .rttm in ``tmp``; returns its truth."""
    voices, seconds, seed, overlap, language, description = TRANSCRIPT[name]
    rng = np.random.default_rng(seed)
    if len(voices) == 1:
        chosen = [(voices[0], *line) for line in lines_of(voices[0], cache, rng)]
    else:
        chosen = dialogue_lines(voices, cache, rng)
    lines, length = [], 0.0
    for voice, package, rel, text in chosen:
        samples = trimmed(cache, package, rel)
        if samples is not None:
            lines.append((voice, package, rel, text, samples))
            length += len(samples) / RATE + 1.0
        if length > seconds:
            break
    track, segments = place_lines(lines, seconds, rng, overlap)
    return finish(name, "transcript", description, track, segments, tmp, cache, seed,
                  {"language": language, "speakers": voices})


def build_no_speech(name, cache, tmp):
    """A clip where no word is right: the game's music, or a faint noise floor."""
    what, seconds, seed, description = NO_SPEECH[name]
    rng = np.random.default_rng(seed)
    total = seconds * RATE
    if what == "music":
        folder = sources.unpacked("fillets-ng-music", cache)
        tunes = sorted(p.relative_to(folder).as_posix() for p in (folder / sources.FILLETS / "music").glob("*.ogg"))
        tune = tunes[int(rng.integers(len(tunes)))]
        music = sources.decode(cache, "fillets-ng-music", tune).astype(np.float64)
        track = np.zeros(total)
        track[:min(total, len(music))] = music[:total] * 10 ** ((audio.LEVEL_DB + 6 - _level(music)) / 20)
        extra = {"music": f"fillets-ng-music:{tune}"}
    else:
        track, extra = rng.normal(0.0, 10 ** (-70 / 20), total), {}
    return finish(name, "transcript", description, track, [], tmp, cache, seed, {"language": None, "speakers": [],
                                                                                 **extra})


def _level(samples):
    return 20 * np.log10(np.sqrt(np.mean(samples ** 2)) + 1e-9)


def finish(name, kind, description, track, segments, tmp, cache, seed, extra):
    """Write the clip's wav, rttm and mp4; return its truth."""
    frames = int(np.ceil(len(track) / RATE * 25))
    track = np.concatenate([track, np.zeros(frames * RATE // 25 - len(track))])
    audio.write_wav(tmp / f"{name}.wav", track)
    audio.write_rttm(tmp / f"{name}.rttm", name, segments)
    duration = round(frames / 25, 3)
    audio.still_video(tmp / f"{name}.mp4", tmp / f"{name}.wav", duration)
    packages = {s["source"].split(":")[0] for s in segments} | ({extra["music"].split(":")[0]} if "music" in extra
                                                                else set())
    packages |= {f"asterisk-core-sounds-{ASTERISK_TEXT[v]}" for v in extra.get("speakers", ()) if v in ASTERISK_TEXT}
    packages |= {"fillets-ng-data"} if any(p == "fillets-ng-data-cs" for p in packages) else set()
    speakers = [{"id": v, "gender": sources.VOICES[v].gender, "language": sources.VOICES[v].language,
                 "description": sources.VOICES[v].description,
                 "speech_s": round(sum(s["end"] - s["start"] for s in segments if s["speaker"] == v), 3)}
                for v in extra.get("speakers", ())]
    return {"name": name, "kind": kind, "description": description, "fps": 25, "frame_count": frames,
            "duration": duration, "sample_rate": RATE, "conditions": {}, "language": extra["language"],
            "speakers": speakers, "segments": segments, "overlap_s": audio.overlap_seconds(segments),
            "words": sum(len(s["text"].split()) for s in segments), "seed": seed,
            "sources": sources.package_files(cache, packages)}
