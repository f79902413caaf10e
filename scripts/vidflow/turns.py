"""Overlapped speech in diarization.json's segments (``{"start", "end", "speaker"}``, seconds).

Segments of different speakers may overlap (two people talking at once); a speaker's own segments never do (the
diarization merges them; here they are merged again so that a file that breaks that rule is read the same way).
"""


def _merged(spans):
    """Sorted ``(start, end)`` spans with the ones that overlap joined (touching ones stay apart), empty ones
    dropped."""
    out = []
    for start, end in sorted(spans):
        if end <= start:
            continue
        if out and start < out[-1][1]:
            out[-1] = (out[-1][0], max(end, out[-1][1]))
        else:
            out.append((start, end))
    return out


def own_overlap(segments):
    """``(speaker, earlier segment, later segment)`` of the first two segments of one speaker that overlap (a
    diarization must merge them), or None."""
    last = {}
    for seg in sorted(segments, key=lambda s: (s["start"], s["end"])):
        before = last.get(seg["speaker"])
        if before is not None and seg["start"] < before["end"]:
            return seg["speaker"], before, seg
        if before is None or seg["end"] > before["end"]:
            last[seg["speaker"]] = seg
    return None


def speaker_spans(segments) -> dict:
    """``speaker -> [(start, end), ...]``: each speaker's segments, merged and sorted."""
    spans = {}
    for seg in segments:
        spans.setdefault(seg["speaker"], []).append((float(seg["start"]), float(seg["end"])))
    return {speaker: _merged(own) for speaker, own in sorted(spans.items())}


def overlapped_spans(segments) -> list:
    """Sorted ``(start, end)`` spans where two or more different speakers speak at once (segments that only touch do
    not overlap)."""
    events = sorted((t, step) for own in speaker_spans(segments).values() for start, end in own
                    for t, step in ((start, 1), (end, -1)))  # at equal times -1 sorts first: an end before a start
    out, count, since = [], 0, None
    for t, step in events:
        count += step
        if count >= 2 and since is None:
            since = t
        elif count < 2 and since is not None:
            if t > since:
                out.append((since, t))
            since = None
    return _merged(out)


def _minus(spans, holes):
    """``spans`` with the sorted, disjoint ``holes`` cut out."""
    out = []
    for start, end in spans:
        for hole_start, hole_end in holes:
            if hole_end <= start or hole_start >= end:
                continue
            if hole_start > start:
                out.append((start, hole_start))
            start = max(start, hole_end)
        if end > start:
            out.append((start, end))
    return out


def solo_spans(segments) -> dict:
    """``speaker -> [(start, end), ...]``: where each speaker speaks and nobody else does (its speech without the
    overlapped parts, in which other voices are mixed in). A speaker that only ever speaks over others gets ``[]``."""
    holes = overlapped_spans(segments)
    return {speaker: _minus(own, holes) for speaker, own in speaker_spans(segments).items()}
