"""Transcripts as data: words linked to diarization speakers and face tracks, speaker segments, subtitle cues.

Pure functions over plain values (standard library only), shared by the ``transcribe`` step, its tests and the
report. A word is a dict ``{"start", "end", "word", "probability"}`` (seconds); a turn ``{"start", "end",
"speaker"}`` as ``diarization.json`` holds it.
"""

import bisect
import math
from collections import Counter, defaultdict

ROUND = 3  # decimals of times and probabilities in transcript.json (milliseconds)
OVERLAP_SHARE = 0.5  # a word is in an overlap when two speakers' turns each cover at least this share of it


def speaker_overlaps(words, turns):
    """For each word, ``{speaker: seconds of the word inside that speaker's turns}`` (a speaker's overlapping
    turns count once; a zero-length word inside a turn counts as covered). Empty where no turn touches it."""
    turns = sorted(turns, key=lambda t: (t["start"], t["end"]))
    starts = [t["start"] for t in turns]
    longest = max((t["end"] - t["start"] for t in turns), default=0.0)
    result = []
    for word in words:
        start, end = word["start"], word["end"]
        hi = bisect.bisect_left(starts, end) if end > start else bisect.bisect_right(starts, end)
        parts = defaultdict(list)  # speaker -> the word's parts inside its turns
        for i in range(hi - 1, -1, -1):
            turn = turns[i]
            if turn["start"] < start - longest:
                break
            low, high = max(start, turn["start"]), min(end, turn["end"])
            if high > low or (start == end and turn["start"] <= start <= turn["end"]):
                parts[turn["speaker"]].append((low, high))
        result.append({speaker: _covered(intervals) for speaker, intervals in parts.items()})
    return result


def nearest_speaker(word, turns, rank):
    """The speaker of the turn nearest to ``word`` (a word in a gap); ties go to the speaker first in ``rank``."""
    def distance(turn):
        return max(0.0, turn["start"] - word["end"], word["start"] - turn["end"])

    best = min(turns, key=lambda t: (distance(t), rank.get(t["speaker"], len(rank)), -t["end"]))
    return best["speaker"]


def in_overlap(covered, duration, share=OVERLAP_SHARE):
    """The speakers of a word said while several talk: those whose turns cover at least ``share`` of it (all that
    touch a zero-length word); fewer than two means the word is not in an overlap."""
    if duration <= 0:
        return sorted(covered)
    return sorted(s for s, seconds in covered.items() if seconds >= share * duration)


def assign_speakers(words, turns, order=None, pieces=None):
    """The diarization speaker of each word (a list parallel to ``words``).

    Outside overlaps, a word belongs to the speaker whose turns cover it longest; a word in a gap between turns
    (or outside all of them) to the nearest turn's speaker. Where the diarization has two or more speakers at
    once (each covering at least half the word), the word goes to the one whose voice the recogniser was
    following (:func:`resolve_overlap`): ``pieces`` (one id per word: the recogniser's segment it came from,
    an utterance of one voice) gives the context. Ties go to the speaker first in ``order`` (default: order of
    first appearance). ``None`` only when there are no turns.
    """
    if not turns:
        return [None] * len(words)
    order = list(order or dict.fromkeys(t["speaker"] for t in sorted(turns, key=lambda t: (t["start"], t["end"]))))
    rank = {speaker: i for i, speaker in enumerate(order)}
    covers = speaker_overlaps(words, turns)
    speakers, contested = [], []
    for word, covered in zip(words, covers):
        several = in_overlap(covered, word["end"] - word["start"])
        contested.append(several if len(several) > 1 else None)
        if covered:
            speakers.append(min(covered, key=lambda s: (-covered[s], rank.get(s, len(rank)))))
        else:
            speakers.append(nearest_speaker(word, turns, rank))
    pieces = pieces if pieces is not None else [0] * len(words)
    for i, candidates in enumerate(contested):
        if candidates:
            speakers[i] = resolve_overlap(i, candidates, words, speakers, contested, pieces, turns, rank)
    return speakers


SENTENCE_END = (".", "?", "!", "\u3002", "\uff1f", "\uff01")


def resolve_overlap(i, candidates, words, speakers, contested, pieces, turns, rank):
    """The speaker of word ``i``, said while ``candidates`` all talk.

    A recogniser follows one voice through an utterance, so the word belongs to the candidate who says the
    nearest words of the same recogniser segment that lie outside the overlap: the one before it, or the one
    after it when a sentence ends between that word before and this one (a new sentence in an overlap is the
    next speaker's). With no such word among the candidates (the whole utterance lies in the overlap), it
    goes to the candidate whose turn matches the utterance's extent best (intersection over union): the voice
    that talks exactly while the recogniser hears an utterance is the one it transcribed.
    """
    before = next((j for j in range(i - 1, -1, -1) if pieces[j] == pieces[i] and not contested[j]), None)
    after = next((j for j in range(i + 1, len(words)) if pieces[j] == pieces[i] and not contested[j]), None)
    left = speakers[before] if before is not None and speakers[before] in candidates else None
    right = speakers[after] if after is not None and speakers[after] in candidates else None
    if left and right and left != right:
        ended = any(words[j]["text"].strip().endswith(SENTENCE_END) for j in range(before, i))
        return right if ended else left
    if left or right:
        return left or right
    members = [j for j in range(len(words)) if pieces[j] == pieces[i]]
    span = (min(words[j]["start"] for j in members), max(words[j]["end"] for j in members))
    return max(candidates, key=lambda s: (_best_match(span, [t for t in turns if t["speaker"] == s]),
                                          -rank.get(s, len(rank))))


def _best_match(span, turns):
    """The highest intersection over union of ``span`` with one of ``turns``."""
    best = 0.0
    for turn in turns:
        inter = min(span[1], turn["end"]) - max(span[0], turn["start"])
        union = max(span[1], turn["end"]) - min(span[0], turn["start"])
        if inter > 0 and union > 0:
            best = max(best, inter / union)
    return best


def _covered(intervals):
    """Length of the union of ``(start, end)`` intervals (a speaker's overlapping turns count once)."""
    total, reach = 0.0, None
    for low, high in sorted(intervals):
        if reach is None or low > reach:
            total, reach = total + high - low, high
        elif high > reach:
            total, reach = total + high - reach, high
    return total


def word_tracks(words, speakers, linked, fps):
    """The face track of each word: the track linked to its speaker that is on screen longest during the word.

    ``linked`` maps a frame (0-based) to ``[(track_id, speaker), ...]``, the faces of that frame whose track is
    linked to a speaker (``faces.json``: ``speaker`` set). The frames of a word are those whose time lies in
    ``[start, end)`` (the frame nearest its middle for a word shorter than a frame). ``None`` where the speaker
    has no linked face in those frames. Ties go to the smaller track id.
    """
    tracks = []
    for word, speaker in zip(words, speakers):
        first, last = math.ceil(word["start"] * fps - 1e-9), math.ceil(word["end"] * fps - 1e-9)
        frames = range(first, last) if last > first else [int(round((word["start"] + word["end"]) / 2 * fps))]
        seen = Counter(track for frame in frames for track, owner in linked.get(frame, ()) if owner == speaker)
        tracks.append(min(seen, key=lambda t: (-seen[t], t)) if seen and speaker is not None else None)
    return tracks


def speech_stretches(turns, duration, pad, max_gap):
    """The stretches of audio to transcribe: diarized turns merged across gaps up to ``max_gap`` s, padded by
    ``pad`` s on each side and clipped to ``[0, duration]``; sorted, non-overlapping ``(start, end)`` pairs."""
    stretches = []
    for turn in sorted(turns, key=lambda t: (t["start"], t["end"])):
        start, end = max(0.0, turn["start"] - pad), min(duration, turn["end"] + pad)
        if end <= start:
            continue
        if stretches and start - stretches[-1][1] <= max(0.0, max_gap - 2 * pad):
            stretches[-1][1] = max(stretches[-1][1], end)
        else:
            stretches.append([start, end])
    return [(round(s, ROUND), round(e, ROUND)) for s, e in stretches]


def inside(words, stretches, tolerance=0.0):
    """The words whose middle lies in one of ``stretches`` (recognisers can place a word in the silence next
    to a stretch, or past it with random weights), with times clipped to that stretch."""
    kept = []
    starts = [s for s, _ in stretches]
    for word in words:
        middle = (word["start"] + word["end"]) / 2
        i = bisect.bisect_right(starts, middle + tolerance) - 1
        if i < 0 or middle > stretches[i][1] + tolerance:
            continue
        low, high = stretches[i]
        start = min(max(word["start"], low), high)
        kept.append({**word, "start": start, "end": min(max(word["end"], start), high)})
    return kept


def build_segments(pieces, turns, linked=None, fps=25.0, order=None):
    """Speaker segments from the recogniser's segments.

    ``pieces`` is a list of recogniser segments, each a list of words (dicts with ``start``, ``end``, ``text`` as
    the recogniser spells it, spaces included, and ``probability``). Every word gets its speaker and track; a
    segment is split where the speaker changes. Returns the ``segments`` of transcript.json.
    """
    flat = [(index, word) for index, piece in enumerate(pieces) for word in piece if word["text"].strip()]
    words = [word for _, word in flat]
    speakers = assign_speakers(words, turns, order, [index for index, _ in flat])
    tracks = word_tracks(words, speakers, linked or {}, fps)
    segments = []
    for (index, word), speaker, track in zip(flat, speakers, tracks):
        entry = {"start": round(word["start"], ROUND), "end": round(word["end"], ROUND), "word": word["text"].strip(),
                 "probability": round(word["probability"], ROUND), "speaker": speaker, "track_id": track}
        if not segments or segments[-1][0] != index or segments[-1][1]["speaker"] != speaker:
            segments.append((index, {"speaker": speaker, "words": [], "text": ""}))
        segment = segments[-1][1]
        segment["words"].append(entry)
        segment["text"] += word["text"]
    result = []
    for _, segment in segments:
        words = segment["words"]
        tracks = Counter(w["track_id"] for w in words if w["track_id"] is not None)
        result.append({"start": words[0]["start"], "end": max(w["end"] for w in words), "speaker": segment["speaker"],
                       "track_id": min(tracks, key=lambda t: (-tracks[t], t)) if tracks else None,
                       "text": " ".join(segment["text"].split()),
                       "words": words})
    return result


def cues(segments, max_seconds=7.0, max_chars=84):
    """Subtitle cues ``(start, end, speaker, text)``: each segment cut at word boundaries into cues of at most
    ``max_seconds`` and ``max_chars`` (two 42-character lines, as subtitle guidelines recommend)."""
    result = []
    for segment in segments:
        current = []
        for word in segment["words"]:
            text = " ".join(w["word"] for w in current + [word])
            if current and (word["end"] - current[0]["start"] > max_seconds or len(text) > max_chars):
                result.append(_cue(current, segment["speaker"]))
                current = []
            current.append(word)
        if current:
            result.append(_cue(current, segment["speaker"]))
    return result


def _cue(words, speaker):
    return (words[0]["start"], max(w["end"] for w in words), speaker, " ".join(w["word"] for w in words))


def speaker_label(speaker):
    return speaker or "UNKNOWN"
