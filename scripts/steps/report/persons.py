"""What the report shows of identity (standard library only, for the report env): a persons table per project
(a face thumbnail per person, talk time, screen time, videos) and a video's timeline coloured by person.

``persons_rows(persons)`` takes persons.json's content (the page: steps.report.pages.persons_page);
``person_timeline(persons, video, identity)`` takes it with one video's name and its identity.json content and
returns an inline SVG (escaped, self-contained).
"""

from html import escape

# Colour-blind-safe palette (Okabe-Ito), then greys; a person keeps its colour on every page of the project.
PALETTE = ["#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#000000"]
UNASSIGNED = "#BBBBBB"


def person_colours(persons: dict) -> dict:
    """``person id -> colour`` in persons.json's order (PERSON_01 first)."""
    ids = [p["person"] for p in persons["persons"]]
    return {pid: PALETTE[i] if i < len(PALETTE) else f"hsl({(i * 47) % 360},45%,55%)" for i, pid in enumerate(ids)}


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60}:{seconds % 60:02d}"


def persons_rows(persons: dict) -> list[dict]:
    """One row per person for the persons table: colour, thumbnail (a data URI or None), id, name, talk time, words
    (``-`` without transcripts), screen time, videos and what joined them."""
    colours = person_colours(persons)
    return [{"person": p["person"], "name": p.get("name"), "colour": colours[p["person"]],
             "thumbnail": p.get("thumbnail"), "talk": _duration(p["talk_seconds"]),
             "words": p["words"] if "words" in p else "-",
             "screen": _duration(p["screen_seconds"]), "videos": ", ".join(p["videos"]),
             "evidence": (f"{'face + voice' if p['faces'] and p['voices'] else 'face' if p['faces'] else 'voice'}: "
                          f"{len(p['faces'])} tracks, {len(p['voices'])} speakers")}
            for p in persons["persons"]]


def unassigned_note(persons: dict) -> str:
    left = persons["unassigned"]
    return (f"Unassigned (too small, blurred or turned away; too little speech): {len(left['faces'])} face tracks, "
            f"{len(left['voices'])} speakers.")


def timeline_rows(persons: dict, video: str, identity: dict) -> list:
    """``[(person or None, kind, start s, end s)]`` of one video: each face track's span on screen and each
    speaker's turns, with the person they belong to (None: unassigned)."""
    mapping = persons["mapping"].get(video, {"tracks": {}, "speakers": {}})
    fps = float(identity["fps"])
    rows = [(mapping["tracks"].get(str(t["track_id"])), "face", t["first_frame"] / fps, (t["last_frame"] + 1) / fps)
            for t in identity["tracks"]]
    rows += [(mapping["speakers"].get(s["speaker"]), "voice", start, end)
             for s in identity["speakers"] for start, end in s["turns"]]
    return sorted(rows, key=lambda r: (r[0] is None, r[0] or "", r[1], r[2]))


def person_timeline(persons: dict, video: str, identity: dict, width: int = 800) -> str:
    """An inline SVG: one lane per person of the video (faces drawn full height, voice turns as a thin bar
    below), coloured by person; unassigned tracks and speakers on a grey lane at the bottom."""
    rows = timeline_rows(persons, video, identity)
    duration = max([identity["frame_count"] / float(identity["fps"])] + [r[3] for r in rows]) or 1.0
    colours = person_colours(persons)
    lanes = list(dict.fromkeys(r[0] for r in rows))
    lane_height, label_width = 22, 110
    scale = (width - label_width) / duration
    parts = []
    for lane, person in enumerate(lanes):
        y = lane * lane_height
        colour = colours.get(person, UNASSIGNED)
        parts.append(f'<text x="0" y="{y + 15}" font-size="12">{escape(person or "unassigned")}</text>')
        for who, kind, start, end in rows:
            if who != person:
                continue
            x, w = label_width + start * scale, max((end - start) * scale, 1.0)
            top, height = (y + 2, 12) if kind == "face" else (y + 16, 4)
            parts.append(f'<rect x="{x:.1f}" y="{top}" width="{w:.1f}" height="{height}" fill="{colour}">'
                         f'<title>{escape(person or "unassigned")} {kind} {start:.2f}-{end:.2f} s</title></rect>')
    height = max(len(lanes), 1) * lane_height
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'role="img" aria-label="persons of {escape(video)} over time">{"".join(parts)}</svg>')
