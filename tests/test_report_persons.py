"""Identity in the report: the persons page (its table and each video's timeline coloured by person)."""

import re

from steps.report.pages import persons_page
from steps.report.persons import person_colours, person_timeline, timeline_rows

PERSONS = {
    "videos": ["a"],
    "persons": [
        {"person": "PERSON_01", "name": "Ana <B>", "faces": [{"video": "a", "track_id": 1, "distance": 0.1}],
         "voices": [{"video": "a", "speaker": "SPEAKER_00", "similarity": 0.9}], "videos": ["a"],
         "screen_seconds": 75.2, "talk_seconds": 3725.0, "thumbnail": "data:image/jpeg;base64,AAAA",
         "evidence": {"link_frames": 10, "gallery": None}},
        {"person": "PERSON_02", "name": None, "faces": [], "voices": [{"video": "a", "speaker": "SPEAKER_01",
                                                                        "similarity": 1.0}],
         "videos": ["a"], "screen_seconds": 0, "talk_seconds": 4.0, "words": 812,
         "evidence": {"link_frames": 0, "gallery": None}},
    ],
    "mapping": {"a": {"tracks": {"1": "PERSON_01"}, "speakers": {"SPEAKER_00": "PERSON_01",
                                                                   "SPEAKER_01": "PERSON_02"}}},
    "unassigned": {"faces": [{"video": "a", "track_id": 2, "reason": "tiny"}], "voices": []},
}
IDENTITY = {"fps": 25.0, "frame_count": 250,
            "tracks": [{"track_id": 1, "first_frame": 0, "last_frame": 99}, {"track_id": 2, "first_frame": 100,
                                                                             "last_frame": 149}],
            "speakers": [{"speaker": "SPEAKER_00", "turns": [[0.5, 2.0], [6.0, 7.0]]},
                         {"speaker": "SPEAKER_01", "turns": [[3.0, 5.0]]}]}


def test_persons_page_lists_each_person_with_times_thumbnail_and_escaped_name_then_timelines():
    html = persons_page("Persons: p", PERSONS, {"a": IDENTITY})
    rows = re.findall(r"<tr>.*?</tr>", html)
    assert len(rows) == 3  # the header and two persons
    assert 'src="data:image/jpeg;base64,AAAA"' in rows[1] and "Ana &lt;B&gt;" in rows[1]
    assert "<td>1:02:05</td><td>-</td><td>1:15</td>" in rows[1] and "face + voice: 1 tracks, 1 speakers" in rows[1]
    assert "voice only" in rows[2] and "<td>0:04</td><td>812</td><td>0:00</td>" in rows[2]
    assert f'style="background:{person_colours(PERSONS)["PERSON_02"]}"' in rows[2]
    assert "1 face tracks, 0 speakers" in html
    assert html.count("<svg") == 1 and "<h4>a</h4><svg" in html and ">unassigned</text>" in html


def test_timeline_colours_faces_and_turns_by_person():
    rows = timeline_rows(PERSONS, "a", IDENTITY)
    assert rows == [("PERSON_01", "face", 0.0, 4.0), ("PERSON_01", "voice", 0.5, 2.0),
                    ("PERSON_01", "voice", 6.0, 7.0), ("PERSON_02", "voice", 3.0, 5.0), (None, "face", 4.0, 6.0)]
    svg = person_timeline(PERSONS, "a", IDENTITY, width=1110)
    colours = person_colours(PERSONS)
    assert svg.count(f'fill="{colours["PERSON_01"]}"') == 3 and svg.count(f'fill="{colours["PERSON_02"]}"') == 1
    assert svg.count('fill="#BBBBBB"') == 1 and ">unassigned</text>" in svg
    # 10 s over 1000 px: the first face spans 0-4 s = 400 px after the 110 px of labels.
    assert '<rect x="110.0" y="2" width="400.0" height="12"' in svg
