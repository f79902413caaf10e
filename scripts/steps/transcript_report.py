"""What the review report shows of a transcript (standard library only, so the report env can import it).

``transcript_html(transcript)``: the transcript per video, one line per speaker segment (time, speaker, linked face
track, words), speaker-coloured, with low-confidence words greyed. ``timeline_rows(transcript)``: the words as
intervals for the report's timeline (one row per speaker).
"""

import html

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


def transcript_html(transcript):
    """An HTML fragment (a table) of the transcript; a sentence saying so when there are no words."""
    engine = transcript.get("engine", {})
    about = f"{html.escape(engine.get('name', '?'))} on {html.escape(engine.get('device', '?'))}"
    if transcript.get("language"):
        about += f", language {html.escape(transcript['language'])}"
    if not transcript.get("segments"):
        return f'<p class="transcript-empty">No words transcribed ({about}).</p>'
    colours = speaker_colours(transcript)
    rows = []
    for segment in transcript["segments"]:
        speaker = segment["speaker"] or "UNKNOWN"
        colour = colours.get(segment["speaker"], "#777777")
        track = "" if segment["track_id"] is None else f"face {segment['track_id']}"
        words = " ".join(
            html.escape(w["word"]) if w["probability"] >= LOW_PROBABILITY else
            f'<span style="opacity:0.55" title="p={w["probability"]:.2f}">{html.escape(w["word"])}</span>'
            for w in segment["words"])
        rows.append(f'<tr><td>{clock(segment["start"])}</td>'
                    f'<td style="color:{colour};font-weight:bold">{html.escape(speaker)}</td>'
                    f'<td>{track}</td><td style="border-left:4px solid {colour};padding-left:6px">{words}</td></tr>')
    return (f'<table class="transcript"><caption>{transcript.get("word_count", 0)} words ({about})</caption>'
            '<thead><tr><th>time</th><th>speaker</th><th>face</th><th>words</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def timeline_rows(transcript):
    """``[(speaker, colour, [(start, end, word), ...])]`` for the report's timeline, one row per speaker."""
    colours = speaker_colours(transcript)
    rows = {speaker: [] for speaker in colours}
    for segment in transcript.get("segments", ()):
        rows.setdefault(segment["speaker"], []).extend((w["start"], w["end"], w["word"]) for w in segment["words"])
    return [(speaker, colours.get(speaker, "#777777"), words) for speaker, words in rows.items() if words]
