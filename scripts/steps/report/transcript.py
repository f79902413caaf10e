"""What the review report shows of a transcript (standard library only, so the report env can import it).

The colours and clock of the transcript page (steps.report.pages.transcript_page renders it from
reports/templates/transcript_page.html.j2); ``timeline_rows(transcript)``: the words as intervals per speaker.
"""


# The report's speaker palette (colour-blind safe, Okabe-Ito); speakers take them in order of appearance.
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]
LOW_PROBABILITY = 0.5  # words below this are shown faded


def speaker_colours(transcript):
    """``{speaker: colour}`` in the transcript's speaker order (colours repeat after eight speakers)."""
    names = [entry["speaker"] for entry in transcript.get("speakers", ())]
    names += [s["speaker"] for s in transcript.get("segments", ()) if s["speaker"] not in names]
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(dict.fromkeys(names))}


def clock(seconds):
    """``M:SS.s`` (or ``H:MM:SS.s``) for the report."""
    tenths = int(round(seconds * 10))
    hours, rest = divmod(tenths, 36000)
    minutes, rest = divmod(rest, 600)
    text = f"{minutes:02d}:{rest / 10:04.1f}" if hours else f"{minutes}:{rest / 10:04.1f}"
    return f"{hours}:{text}" if hours else text


def timeline_rows(transcript):
    """``[(speaker, colour, [(start, end, word), ...])]`` for the report's timeline, one row per speaker."""
    colours = speaker_colours(transcript)
    rows = {speaker: [] for speaker in colours}
    for segment in transcript.get("segments", ()):
        rows.setdefault(segment["speaker"], []).extend((w["start"], w["end"], w["word"]) for w in segment["words"])
    return [(speaker, colours.get(speaker, "#777777"), words) for speaker, words in rows.items() if words]
