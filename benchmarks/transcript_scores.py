#!/usr/bin/env python3
"""Transcript scores against the dev set's truth: word error rate, language, who-said-it, word times.

Runs in the transcribe env (jiwer, num2words): ``python transcript_scores.py < {"truth", "transcript",
"mapping"}`` prints the scores as JSON (benchmarks/quality.py does this per clip; tests import the functions).

- WER (jiwer) after the same normalisation of reference and hypothesis: Unicode NFKC, lower case, accents
  removed (the Spanish text list is written without them), numbers spelt out in the clip's language
  (num2words), English abbreviations written out (``mr`` -> ``mister``), punctuation (hyphens and apostrophes
  included) turned into spaces.
- who-said-it: the share of words whose speaker maps (``mapping``: diarization speaker -> true speaker, the
  DER's optimal mapping) to the true speaker of the moment the word is said; where two true speakers talk at
  once, the one whose line holds the word (a word in both lines, or in neither, is not scored).
- times: every word inside the audio (0 <= start <= end <= duration) and the starts in order.
"""

import json
import re
import sys
import unicodedata

ABBREVIATIONS = {"en": {"mr": "mister", "mrs": "missus", "dr": "doctor", "st": "saint", "vs": "versus"}}
NUMBER = re.compile(r"\d+(?:[.,]\d+)?")


def spell_numbers(text, language):
    """Digits as words in ``language`` (num2words); unchanged where it does not know the language."""
    if not language or not NUMBER.search(text):
        return text
    from num2words import num2words

    def spell(match):
        value = match.group(0).replace(",", ".")
        try:
            return f" {num2words(float(value) if '.' in value else int(value), lang=language)} "
        except (NotImplementedError, ValueError, OverflowError):
            return match.group(0)

    return NUMBER.sub(spell, text)


def normalise(text, language=None):
    """The words of ``text`` as WER compares them (see the module doc), joined by single spaces."""
    text = spell_numbers(unicodedata.normalize("NFKC", text), language).lower()
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    text = "".join(" " if unicodedata.category(c)[0] in "PS" else c for c in text)
    words = [ABBREVIATIONS.get(language or "", {}).get(w, w) for w in text.split()]
    return " ".join(words)


def word_error_rate(reference, hypothesis, language=None):
    """``(wer, reference words)``; WER is 0 for an empty reference with an empty hypothesis, else 1 per word."""
    import jiwer

    ref, hyp = normalise(reference, language), normalise(hypothesis, language)
    if not ref.split():
        return (0.0 if not hyp.split() else float(len(hyp.split()))), 0
    return jiwer.wer(ref, hyp), len(ref.split())


def words_of(transcript):
    return [w for segment in transcript.get("segments", ()) for w in segment["words"]]


def true_speaker(word, truth_segments, language=None, tolerance=0.15):
    """The true speaker of ``word`` (see the module doc), or None where it cannot be told."""
    middle = (word["start"] + word["end"]) / 2
    covering = [s for s in truth_segments if s["start"] - tolerance <= middle <= s["end"] + tolerance]
    if not covering:
        nearest = min(truth_segments, key=lambda s: max(s["start"] - middle, middle - s["end"]), default=None)
        return nearest["speaker"] if nearest else None
    speakers = {s["speaker"] for s in covering}
    if len(speakers) == 1:
        return speakers.pop()
    said = normalise(word["word"], language)
    holders = {s["speaker"] for s in covering if said and said in normalise(s.get("text", ""), language).split()}
    return holders.pop() if len(holders) == 1 else None


def who_said_it(words, truth_segments, mapping, language=None):
    """``(share of scored words with the right speaker, scored words)``; share None without scored words."""
    scored = right = 0
    for word in words:
        truth = true_speaker(word, truth_segments, language)
        if truth is None:
            continue
        scored += 1
        right += mapping.get(word["speaker"]) == truth
    return (right / scored if scored else None), scored


def times_ok(words, duration):
    """Every word inside ``[0, duration]`` with start <= end, and the words' starts in order."""
    inside = all(0 <= w["start"] <= w["end"] <= duration + 1e-6 for w in words)
    return inside and all(a["start"] <= b["start"] for a, b in zip(words, words[1:]))


def transcript_scores(truth, transcript, mapping):
    """The scores of one clip (plain dict; see the module doc)."""
    language = truth.get("language")
    words = words_of(transcript)
    reference = " ".join(s["text"] for s in sorted(truth["segments"], key=lambda s: s["start"]))
    wer, count = word_error_rate(reference, " ".join(w["word"] for w in words), language)
    share, scored = who_said_it(words, truth["segments"], mapping, language)
    multi = len({s["speaker"] for s in truth["segments"]}) > 1
    return {"language_true": language, "language_found": transcript.get("language"),
            "language_probability": transcript.get("language_probability"),
            "language_ok": None if language is None else transcript.get("language") == language,
            "ref_words": count, "hyp_words": len(words), "wer": round(wer, 4),
            "who_said_it": round(share, 4) if multi and share is not None else None,
            "who_scored": scored if multi else None, "times_ok": times_ok(words, truth["duration"])}


if __name__ == "__main__":
    job = json.load(sys.stdin)
    print(json.dumps(transcript_scores(job["truth"], job["transcript"], job["mapping"]), sort_keys=True))
