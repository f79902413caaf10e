"""Transcripts as data: words linked to diarization speakers and face tracks, speaker segments, subtitle cues.

Pure functions over plain values (standard library only), shared by the ``transcribe`` step, its tests and the
report. A word is a dict ``{"start", "end", "word", "probability"}`` (seconds); a turn ``{"start", "end",
"speaker"}`` as ``diarization.json`` holds it.
"""

import bisect
import math
from collections import Counter, defaultdict

ROUND = 3  # decimals of times and probabilities in transcript.json (milliseconds)


def assign_speakers(words, turns, order=None):
    """The diarization speaker of each word (a list parallel to ``words``).

    A word belongs to the speaker whose turns overlap it longest; a word in a gap between turns (or outside all of
    them) to the nearest turn's speaker (by the distance between the word and the turn). Ties go to the speaker
    first in ``order`` (default: order of first appearance in ``turns``). ``None`` only when there are no turns.
    """
    turns = sorted(turns, key=lambda t: (t["start"], t["end"]))
    if not turns:
        return [None] * len(words)
    order = list(order or dict.fromkeys(t["speaker"] for t in turns))
    rank = {speaker: i for i, speaker in enumerate(order)}
    starts = [t["start"] for t in turns]
    longest = max(t["end"] - t["start"] for t in turns)
    latest, best = [], None  # latest[i]: index of the turn ending last among turns[: i + 1]
    for i, turn in enumerate(turns):
        if best is None or turn["end"] > turns[best]["end"]:
            best = i
        latest.append(best)
    speakers = []
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
        overlap = {speaker: _covered(intervals) for speaker, intervals in parts.items()}
        if overlap:
            speakers.append(min(overlap, key=lambda s: (-overlap[s], rank.get(s, len(rank)))))
            continue
        candidates = []
        if hi > 0:
            before = turns[latest[hi - 1]]
            candidates.append((max(0.0, start - before["end"]), rank.get(before["speaker"], len(rank)), before))
        if hi < len(turns):
            after = turns[hi]
            candidates.append((max(0.0, after["start"] - end), rank.get(after["speaker"], len(rank)), after))
        speakers.append(min(candidates, key=lambda c: c[:2])[2]["speaker"])
    return speakers


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
    speakers = assign_speakers(words, turns, order)
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
