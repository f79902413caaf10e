"""Step export, the real step in its env on a clip with known faces: the files are read back by their own tools
(lxml + ELAN's EAF XSD, pympi, praatio, webvtt-py, pandas, DuckDB) and compared with the inputs; the review video is
probed and its boxes looked at; finalize's check of an export folder and the report's table of it."""

import json
import shutil
import subprocess

import pytest
from media_clips import make_video
from media_shots import Shot
from test_export_data import DIARIZATION, FPS, TRANSCRIPT, speaks

from build_env import build
from conftest import ROOT, VENV_DIR, require_binaries, schema_defaults
from steps.export.check import check_exports
from steps.report.pages import exports_page
from vidflow.errors import UserError
from vidflow.exports import export_rows
from vidflow.job import job_command

# --------------------------------------------------------------------------- the real step in its env

READ_BACK = r"""
import json, sys
from pathlib import Path
import duckdb, pandas as pd, pyarrow.parquet as pq, webvtt
from lxml import etree
from praatio import textgrid
from pympi import Elan
folder, xsd, name = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
schema = etree.XMLSchema(etree.parse(xsd))
valid = schema.validate(etree.parse(str(folder / f"{name}.eaf")))
eaf = Elan.Eaf(str(folder / f"{name}.eaf"))
names = list(eaf.get_tier_names())
out = {"xsd_valid": valid, "xsd_errors": [str(e) for e in schema.error_log][:3], "eaf_tiers": names,
       "eaf": {t: sorted(list(a)[:3] for a in eaf.get_annotation_data_for_tier(t)) for t in names},
       "participants": {t: eaf.get_parameters_for_tier(t).get("PARTICIPANT") for t in names},
       "media": eaf.media_descriptors, "time_slots": len(eaf.timeslots), "version": eaf.adocument["VERSION"]}
grid = textgrid.openTextgrid(str(folder / f"{name}.TextGrid"), includeEmptyIntervals=False)
out["textgrid"] = {n: [grid.getTier(n).tierType, [list(e) for e in grid.getTier(n).entries]] for n in grid.tierNames}
out["vtt"] = [[c.start, c.end, c.voice, c.text] for c in webvtt.read(str(folder / f"{name}.vtt"))]
con = duckdb.connect()
for table in ("faces", "turns"):
    parquet, csv = pd.read_parquet(folder / f"{table}.parquet"), pd.read_csv(folder / f"{table}.csv")
    try:
        pd.testing.assert_frame_equal(csv, parquet, check_dtype=False)
        same = True
    except AssertionError as err:
        same = str(err)
    counts = [con.execute(f"select count(*) from read_parquet('{folder / table}.parquet')").fetchone()[0],
              con.execute(f"select count(*) from read_csv_auto('{folder / table}.csv')").fetchone()[0]]
    fields = pq.read_schema(folder / f"{table}.parquet")
    out[table] = {"records": json.loads(parquet.to_json(orient="records")), "csv_equal": same, "duckdb": counts,
                  "types": {f.name: str(f.type) for f in fields},
                  "units": {f.name: f.metadata[b"description"].decode() for f in fields}}
out["speaking_frames"] = con.execute(
    f"select track_id, count(*) from read_parquet('{folder}/faces.parquet') where speaking group by track_id"
).fetchall()
print(json.dumps(out))
"""


@pytest.fixture(scope="session")
def python():
    return build(ROOT / "envs" / "export.yaml", VENV_DIR / "export")


@pytest.fixture(scope="session")
def clip(tmp_path_factory):
    """A 4 s clip (one face, a cut at frame 60, two faces) with a tone as audio; the inputs the step reads, made
    from the clip's true face boxes: track 1 speaks in SPEAKER_00's turns and is linked to it."""
    require_binaries("ffmpeg", "ffprobe")
    folder = tmp_path_factory.mktemp("export")
    wav = folder / "tone.wav"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=220:sample_rate=16000:duration=4",
                    str(wav)], check=True)
    truth = make_video(folder / "video.mp4", [Shot("astronaut", 60), Shot("astronaut_pair", 40)],
                          audio=wav)
    frames = []
    for f, faces in enumerate(truth["faces"]):
        faces = sorted(faces, key=lambda face: face["bbox"][0])
        tracks = [1] if f < 60 else [2, 3]
        frames.append({"frame": f, "faces": [
            {"track_id": track, "bbox": [round(v, 1) for v in face["bbox"]], "score": 0.95,
             "speaking": track == 1 and speaks(f), "speaker": "SPEAKER_00" if track == 1 and speaks(f) else None}
            for track, face in zip(tracks, faces)]})
    assert all(len(f["faces"]) == (1 if f["frame"] < 60 else 2) for f in frames)
    scenes = {"fps": 25, "frame_count": 100, "scenes": [{"start_frame": s["start_frame"], "end_frame": s["end_frame"]}
                                                        for s in truth["shots"]]}
    inputs = {"faces": {"fps": 25, "width": 320, "height": 180, "frame_count": 100, "engine": "truth",
                        "frames": frames},
              "diarization": DIARIZATION, "scenes": scenes,
              "speakers": {"tracks": [{"track_id": 1, "speaker": "SPEAKER_00"}, {"track_id": 2, "speaker": None},
                                      {"track_id": 3, "speaker": None}]}}
    for name, data in inputs.items():
        (folder / f"{name}.json").write_text(json.dumps(data))
    return folder, inputs


def run_export(python, clip, out, extra=None, **settings):
    folder, _ = clip
    names = {"eaf": "clip.eaf", "textgrid": "clip.TextGrid", "vtt": "clip.vtt", "faces_parquet": "faces.parquet",
             "faces_csv": "faces.csv", "turns_parquet": "turns.parquet", "turns_csv": "turns.csv"}
    settings = schema_defaults("export", **settings)
    if settings["review_video"]:
        names["review"] = "review.mp4"
    inputs = {"video": folder / "video.mp4", **{k: folder / f"{k}.json" for k in ("diarization", "scenes", "faces",
                                                                                   "speakers")}, **(extra or {})}
    command = job_command(python, "export", inputs, {k: out / v for k, v in names.items()},
                          settings, {"project": "p", "video": "clip"}, threads=2, log=out.parent / f"{out.name}.log")
    return subprocess.run(command, capture_output=True, text=True, check=False)


@pytest.fixture(scope="session")
def exported(python, clip):
    out = clip[0] / "export"
    proc = run_export(python, clip, out)
    assert proc.returncode == 0, proc.stderr + (out.parent / "export.log").read_text()
    back = subprocess.run([str(python), "-c", READ_BACK, str(out), str(ROOT / "schemas" / "EAFv3.0.xsd"), "clip"],
                          capture_output=True, text=True, check=False)
    assert back.returncode == 0, back.stderr
    return out, json.loads(back.stdout)


def test_eaf_validates_against_elans_schema_and_holds_the_turns(exported):
    _, back = exported
    assert back["xsd_valid"], back["xsd_errors"]
    assert back["version"] == "3.0" and back["time_slots"] == 2 * sum(map(len, back["eaf"].values())) == 18
    assert back["media"] == [{"MEDIA_URL": "../video.mp4", "RELATIVE_MEDIA_URL": "../video.mp4",
                              "MIME_TYPE": "video/mp4"}]
    assert back["eaf_tiers"] == ["scenes", "SPEAKER_00", "SPEAKER_01", "face 1", "face 1 speaking", "face 2",
                                 "face 3"]
    for name in DIARIZATION["speakers"]:
        turns = [[round(s["start"] * 1000), round(s["end"] * 1000), name] for s in DIARIZATION["segments"]
                 if s["speaker"] == name]
        assert back["eaf"][name] == turns and back["participants"][name] == name
    assert back["eaf"]["scenes"] == [[0, 2400, "scene 1"], [2400, 4000, "scene 2"]]
    assert back["eaf"]["face 1"] == [[0, 2400, "SPEAKER_00"]] and back["eaf"]["face 2"] == [[2400, 4000, "unlinked"]]
    spoken = [f for f in range(60) if speaks(f)]
    assert back["eaf"]["face 1 speaking"] == [[spoken[0] * 40, (spoken[-1] + 1) * 40, "SPEAKER_00"]] == \
        [[200, 1480, "SPEAKER_00"]]  # frames 5-36, whose middles lie in the turn 0.2-1.5 s


def test_textgrid_and_vtt_hold_the_same_turns(exported):
    _, back = exported
    assert list(back["textgrid"]) == back["eaf_tiers"]
    assert all(kind == "IntervalTier" for kind, _ in back["textgrid"].values())
    for name in DIARIZATION["speakers"]:
        assert back["textgrid"][name][1] == [[s["start"], s["end"], name] for s in DIARIZATION["segments"]
                                             if s["speaker"] == name]
    assert back["vtt"] == [["00:00:00.200", "00:00:01.500", "SPEAKER_00", "SPEAKER_00 (face 1)"],
                           ["00:00:01.700", "00:00:02.900", "SPEAKER_01", "SPEAKER_01"],
                           ["00:00:03.000", "00:00:03.900", "SPEAKER_00", "SPEAKER_00 (face 1)"]]


def test_tables_load_in_pandas_and_duckdb_and_equal_faces_json(exported, clip):
    _, back = exported
    faces = [(f["frame"], face) for f in clip[1]["faces"]["frames"] for face in f["faces"]]
    records = back["faces"]["records"]
    assert back["faces"]["csv_equal"] is True and back["faces"]["duckdb"] == [len(faces), len(faces)] == [140, 140]
    for row, (frame, face) in zip(records, faces):
        assert (row["frame"], row["time"], row["track_id"], row["score"], row["speaking"], row["speaker"]) == \
            (frame, frame / FPS, face["track_id"], face["score"], face["speaking"], face["speaker"])
        assert [row[k] for k in "xywh"] == face["bbox"]
    assert back["faces"]["types"] == {"frame": "int32", "time": "double", "track_id": "int32", "x": "double",
                                      "y": "double", "w": "double", "h": "double", "score": "double",
                                      "speaking": "bool", "speaker": "string"}
    assert back["faces"]["units"]["time"].startswith("s:") and back["faces"]["units"]["x"].startswith("px:")
    assert back["speaking_frames"] == [[1, sum(speaks(f) for f in range(60))]]
    turns = back["turns"]
    assert turns["csv_equal"] is True and turns["duckdb"] == [3, 3]
    assert [(r["kind"], r["start"], r["end"], r["speaker"]) for r in turns["records"]] == \
        [("turn", s["start"], s["end"], s["speaker"]) for s in DIARIZATION["segments"]]


def frame_rgb(path, index, size):
    import numpy as np

    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-vf", f"select=eq(n\\,{index})", "-frames:v",
                          "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(size[1], size[0], 3)


def test_review_video_has_every_frame_the_audio_and_boxes_coloured_by_speaking(exported, clip):
    from vidflow.media import ffprobe, summarize

    out, _ = exported
    review, source = summarize(ffprobe(out / "review.mp4")), summarize(ffprobe(clip[0] / "video.mp4"))
    count = ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
             "stream=nb_read_frames", "-of", "csv=p=0"]
    frames = [int(subprocess.run([*count, str(p)], capture_output=True, text=True, check=True).stdout)
              for p in (out / "review.mp4", clip[0] / "video.mp4")]
    assert frames == [100, 100]
    assert (review["video"]["codec"], review["video"]["width"], review["video"]["height"]) == ("h264", 640, 360)
    assert review["audio"]["codec"] == "aac" and abs(review["duration"] - source["duration"]) < 0.05
    faces = clip[1]["faces"]["frames"]
    speaking = next(f for f in range(60) if speaks(f) and speaks(f + 1) and speaks(f - 1))
    silent = next(f for f in range(40, 60) if not speaks(f))
    for frame, colour in ((speaking, "green"), (silent, "amber")):
        x, y, w, h = faces[frame]["faces"][0]["bbox"]
        pixels = frame_rgb(out / "review.mp4", frame, (640, 360))
        r, g, b = (int(v) for v in pixels[round((y + h / 2) * 2), round(x * 2) + 1])  # the box's left edge
        if colour == "green":  # (40, 220, 70) drawn; x264 smears the thin line's chroma a little
            assert g > r + 25 and g > b + 60, (frame, r, g, b)
        else:  # (255, 176, 0)
            assert r > g + 25 and g > b + 60, (frame, r, g, b)
        inside = pixels[round((y + h / 2) * 2), round((x + w / 2) * 2)]
        assert not (inside[1] > 150 and inside[0] < 120), "the face itself is not painted"


def test_rerun_is_byte_identical_and_review_video_can_be_off(python, clip, exported):
    first, _ = exported
    again = clip[0] / "again"
    proc = run_export(python, clip, again)
    assert proc.returncode == 0, proc.stderr
    for path in sorted(first.iterdir()):
        assert (again / path.name).read_bytes() == path.read_bytes(), path.name
    off = clip[0] / "off"
    proc = run_export(python, clip, off, review_video=False)
    assert proc.returncode == 0, proc.stderr
    assert not (off / "review.mp4").exists() and (off / "clip.eaf").read_bytes() == (first / "clip.eaf").read_bytes()
    assert not list(off.glob(".*")), "temporary files left behind"


def test_bad_input_is_a_one_line_error_naming_the_file(python, clip, tmp_path):
    folder, _ = clip
    bad = tmp_path / "clip"
    bad.mkdir()
    for name in ("video.mp4", "scenes.json", "faces.json", "speakers.json"):
        (bad / name).symlink_to(folder / name)
    (bad / "diarization.json").write_text(json.dumps({"speakers": []}))
    proc = run_export(python, (bad, None), bad / "export")
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"{bad / 'diarization.json'}: not a diarization.json: no segments" in lines[0], lines
    assert not list((bad / "export").glob("*.eaf"))


def read_back(python, out, name="clip"):
    proc = subprocess.run([str(python), "-c", READ_BACK, str(out), str(ROOT / "schemas" / "EAFv3.0.xsd"), name],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_a_transcript_reaches_every_file(python, clip):
    folder, _ = clip
    (folder / "transcript.json").write_text(json.dumps(TRANSCRIPT))
    out = folder / "with_transcript"
    proc = run_export(python, clip, out, {"transcript": folder / "transcript.json"}, review_video=False)
    assert proc.returncode == 0, proc.stderr
    back = read_back(python, out)
    assert back["xsd_valid"], back["xsd_errors"]
    assert back["eaf_tiers"][:7] == ["scenes", "SPEAKER_00", "SPEAKER_01", "SPEAKER_00 transcript", "SPEAKER_00 words",
                                     "SPEAKER_01 transcript", "SPEAKER_01 words"]
    assert back["eaf"]["SPEAKER_00 words"] == [[250, 700, "Hello"], [750, 1400, "there."]]
    assert back["textgrid"]["SPEAKER_01 words"][1] == [[1.8, 2.2, "Good"], [2.2, 2.8, "morning"]]
    assert back["vtt"] == [["00:00:00.250", "00:00:01.400", "SPEAKER_00", "Hello there."],
                           ["00:00:01.800", "00:00:02.800", "SPEAKER_01", "Good morning"]]
    words = [r for r in back["turns"]["records"] if r["kind"] == "word"]
    assert [(w["text"], w["probability"], w["track_id"]) for w in words] == \
        [("Hello", 0.91, 1), ("there.", 0.8, 1), ("Good", 0.7, None), ("morning", 0.6, None)]
    assert back["turns"]["csv_equal"] is True and back["turns"]["duckdb"] == [9, 9]


def test_finalize_check_accepts_the_exports_and_names_a_bad_file(exported, clip, tmp_path):
    out, _ = exported
    video = clip[0] / "video.mp4"
    assert check_exports(out, "clip", video) == "structure"  # the driver venv has no lxml: structure only
    bad = tmp_path / "export"
    shutil.copytree(out, bad)
    eaf, vtt = bad / "clip.eaf", bad / "clip.vtt"
    good_eaf, good_vtt = eaf.read_text(), vtt.read_text()
    eaf.write_text(good_eaf.replace('TIME_SLOT_ID="ts2"', 'TIME_SLOT_ID="tsX"'))
    with pytest.raises(UserError, match="refers to a missing time slot"):
        check_exports(bad, "clip", video)
    eaf.write_text(good_eaf)
    vtt.write_text(good_vtt.replace("00:00:01.700 --> 00:00:02.900", "00:00:02.900 --> 00:00:01.700"))
    with pytest.raises(UserError, match="line 6: bad or unordered cue timing"):
        check_exports(bad, "clip", video)
    vtt.write_text(good_vtt)
    (bad / "faces.parquet").write_bytes((out / "faces.parquet").read_bytes()[:-10])
    with pytest.raises(UserError, match="faces.parquet: not a Parquet file"):
        check_exports(bad, "clip", video)
    shutil.copy(out / "faces.parquet", bad / "faces.parquet")
    shorter = make_short(tmp_path / "short.mp4")
    with pytest.raises(UserError, match="h264 with 100 frames, expected h264 with 25"):
        check_exports(bad, "clip", shorter)
    (bad / "review.mp4").unlink()
    with pytest.raises(UserError, match="review.mp4: missing or empty"):
        check_exports(bad, "clip", video)
    assert check_exports(bad, "clip", video, review=False) == "structure"


def make_short(path):
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=1",
                    "-c:v", "libx264", "-preset", "ultrafast", str(path)], check=True)
    return path


CHECK_IN_ENV = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from steps.export.check import check_eaf
from vidflow.errors import UserError
print(check_eaf(sys.argv[2]))
broken = Path(sys.argv[3])
broken.write_text(Path(sys.argv[2]).read_text().replace(' MIME_TYPE="video/mp4"', ''))
try:
    check_eaf(broken)
except UserError as err:
    print(err)
"""


def test_finalize_check_validates_the_eaf_against_elans_xsd_where_lxml_is(python, exported, tmp_path):
    out, _ = exported
    proc = subprocess.run([str(python), "-c", CHECK_IN_ENV, str(ROOT / "scripts"), str(out / "clip.eaf"),
                           str(tmp_path / "broken.eaf")], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    first, second = proc.stdout.strip().splitlines()
    assert first == "xsd"
    assert second.startswith(f"{tmp_path / 'broken.eaf'}: not valid against EAFv3.0.xsd") and "MIME_TYPE" in second


def test_report_table_describes_every_export_file(exported):
    out, _ = exported
    rows = export_rows(out, "clip")
    assert [(r["file"], r["holds"]) for r in rows] == [
        ("export/clip.eaf", "7 tiers, 9 annotations"), ("export/clip.TextGrid", "7 interval tiers"),
        ("export/clip.vtt", "3 cues"), ("export/faces.parquet", ""), ("export/faces.csv", "140 rows"),
        ("export/turns.parquet", ""), ("export/turns.csv", "3 rows"), ("export/review.mp4", "")]
    assert rows[0]["for"] == "ELAN" and rows[-1]["size"].endswith("KB")
    page = exports_page("Exports: p / clip", rows + [{"file": "<b>", "for": "x", "holds": "", "size": "1 B"}], True)
    assert "<table>" in page and page.count("<tr>") == 10 and "&lt;b&gt;" in page and "<b>" not in page
    assert "under Review video" in page and "Review video" not in exports_page("Exports: p / clip", rows, False)


# SPEAKER_00 2.6-3.4 s and SPEAKER_01 3.0-3.8 s talk at once in 3.0-3.4 s (frames 75-84); faces 2 and 3 (on screen
# together from frame 60) speak for them
OVERLAPPED = {"duration": 4.0, "backend": "hand", "speakers": ["SPEAKER_00", "SPEAKER_01"],
              "segments": [{"start": 2.6, "end": 3.4, "speaker": "SPEAKER_00"},
                           {"start": 3.0, "end": 3.8, "speaker": "SPEAKER_01"}]}


def test_overlapped_speakers_reach_every_file_on_tiers_of_their_own(python, clip, tmp_path):
    folder, inputs = clip
    voice = {2: "SPEAKER_00", 3: "SPEAKER_01"}

    def talks(track, frame):
        return any(s["start"] <= (frame + 0.5) / FPS < s["end"] for s in OVERLAPPED["segments"]
                   if s["speaker"] == voice.get(track))

    frames = [{"frame": f["frame"], "faces": [{**face, "speaking": talks(face["track_id"], f["frame"]),
                                               "speaker": voice.get(face["track_id"])} for face in f["faces"]]}
              for f in inputs["faces"]["frames"]]
    documents = {"diarization": OVERLAPPED, "faces": {**inputs["faces"], "frames": frames},
                 "speakers": {"tracks": [{"track_id": t, "speaker": voice.get(t)} for t in (1, 2, 3)]}}
    for name, data in documents.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(data))
    out = tmp_path / "export"
    proc = run_export(python, clip, out, {name: tmp_path / f"{name}.json" for name in documents})
    assert proc.returncode == 0, proc.stderr
    back = read_back(python, out)
    assert back["xsd_valid"], back["xsd_errors"]
    assert back["eaf"]["SPEAKER_00"] == [[2600, 3400, "SPEAKER_00"]]
    assert back["eaf"]["SPEAKER_01"] == [[3000, 3800, "SPEAKER_01"]]
    assert back["eaf"]["face 2 speaking"] == [[2600, 3400, "SPEAKER_00"]]  # frames 65-84
    assert back["eaf"]["face 3 speaking"] == [[3000, 3800, "SPEAKER_01"]]  # frames 75-94
    assert back["textgrid"]["SPEAKER_00"][1] == [[2.6, 3.4, "SPEAKER_00"]]
    assert back["textgrid"]["SPEAKER_01"][1] == [[3.0, 3.8, "SPEAKER_01"]]
    assert [(r["kind"], r["start"], r["end"], r["speaker"]) for r in back["turns"]["records"]] == \
        [("turn", 2.6, 3.4, "SPEAKER_00"), ("turn", 3.0, 3.8, "SPEAKER_01")]
    assert back["speaking_frames"] == [[2, 20], [3, 20]]
    assert [c[2] for c in back["vtt"]] == ["SPEAKER_00", "SPEAKER_01"]
    pixels = frame_rgb(out / "review.mp4", 80, (640, 360))  # both faces framed as speaking (green) at once
    for face in frames[80]["faces"]:
        x, y, w, h = face["bbox"]
        r, g, b = (int(v) for v in pixels[round((y + h / 2) * 2), round(x * 2) + 1])
        assert g > r + 25 and g > b + 60, (face["track_id"], r, g, b)
