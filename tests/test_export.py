"""Step export: tiers, rows and cues as plain data (driver venv), and the real step in its env on a clip with known
faces: the files are read back by their own tools (lxml + ELAN's EAF XSD, pympi, praatio, webvtt-py, pandas, DuckDB)
and compared with the inputs; the review video is probed and its boxes looked at."""

import json
import shutil
import subprocess

import pytest

import media_factory as mf
from build_env import build
from conftest import ROOT, VENV_DIR, require_binaries, schema_defaults
from steps.export_check import check_exports
from steps.export_data import annotation_tiers, clean_intervals, read_faces, review_timeline, subtitle_cues, turn_rows
from steps.export_report import export_rows, exports_html
from vidflow.errors import UserError
from vidflow.job import job_command

FPS = 25
DIARIZATION = {"duration": 4.0, "speakers": ["SPEAKER_00", "SPEAKER_01"],
               "segments": [{"start": 0.2, "end": 1.5, "speaker": "SPEAKER_00"},
                            {"start": 1.7, "end": 2.9, "speaker": "SPEAKER_01"},
                            {"start": 3.0, "end": 3.9, "speaker": "SPEAKER_00"}]}
SCENES = {"fps": 25, "frame_count": 100, "scenes": [{"start_frame": 0, "end_frame": 59}, {"start_frame": 60,
                                                                                           "end_frame": 99}]}
SPEAKERS = {"tracks": [{"track_id": 1, "speaker": "SPEAKER_00"}, {"track_id": 2, "speaker": None}]}
TRANSCRIPT = {"segments": [
    {"start": 0.25, "end": 1.4, "speaker": "SPEAKER_00", "track_id": 1, "text": " Hello there.",
     "words": [{"start": 0.25, "end": 0.7, "word": " Hello", "probability": 0.91, "speaker": "SPEAKER_00",
                "track_id": 1},
               {"start": 0.75, "end": 1.4, "word": " there.", "probability": 0.8, "speaker": "SPEAKER_00",
                "track_id": 1}]},
    {"start": 1.8, "end": 2.8, "speaker": "SPEAKER_01", "track_id": None, "text": "Good morning",
     "words": [{"start": 1.8, "end": 2.2, "word": "Good", "probability": 0.7, "speaker": "SPEAKER_01"},
               {"start": 2.1, "end": 2.8, "word": "morning", "probability": 0.6, "speaker": "SPEAKER_01"}]}]}


def speaks(frame):
    """Track 1 speaks during SPEAKER_00's turns (frame middles)."""
    t = (frame + 0.5) / FPS
    return any(s["start"] <= t < s["end"] for s in DIARIZATION["segments"] if s["speaker"] == "SPEAKER_00")


def faces_document(frames=100):
    """Track 1 in frames 0-59 but 20-24 (a gap), track 2 in frames 60-99 with blendshapes and a head pose."""
    out = []
    for f in range(frames):
        faces = []
        if f < 60 and not 20 <= f < 25:
            faces.append({"track_id": 1, "bbox": [10.0 + f, 20.0, 50.0, 60.0], "score": 0.9, "speaking": speaks(f),
                          "speaker": "SPEAKER_00" if speaks(f) else None, "landmarks": [[1.0, 2.0, 3.0]] * 3})
        if f >= 60:
            faces.append({"track_id": 2, "bbox": [200.0, 30.0, 40.0, 44.0], "speaking": False, "speaker": None,
                          "blendshapes": {"jawOpen": 0.25, "eyeBlinkLeft": f / 100}, "head_pose":
                          {"yaw": 5.0, "pitch": -2.0, "roll": 1.5}})
        out.append({"frame": f, "faces": faces})
    return {"fps": 25, "width": 320, "height": 180, "frame_count": frames, "engine": "truth", "frames": out}


@pytest.fixture
def faces(tmp_path):
    path = tmp_path / "faces.json"
    path.write_text(json.dumps(faces_document()))
    return read_faces(path)


# --------------------------------------------------------------------------- plain data (driver venv)


def test_tiers_are_scenes_speaker_turns_and_face_tracks(faces):
    tiers = annotation_tiers(DIARIZATION, SCENES, faces, SPEAKERS)
    assert [t.name for t in tiers] == ["scenes", "SPEAKER_00", "SPEAKER_01", "face 1", "face 1 speaking", "face 2"]
    by_name = {t.name: t for t in tiers}
    assert by_name["scenes"].intervals == ((0.0, 2.4, "scene 1"), (2.4, 4.0, "scene 2"))
    for name in DIARIZATION["speakers"]:
        turns = [(s["start"], s["end"], name) for s in DIARIZATION["segments"] if s["speaker"] == name]
        assert list(by_name[name].intervals) == turns and by_name[name].participant == name
    assert by_name["face 1"].intervals == ((0.0, 0.8, "SPEAKER_00"), (1.0, 2.4, "SPEAKER_00"))  # the gap: 20-24
    assert by_name["face 2"].intervals == ((2.4, 4.0, "unlinked"),) and by_name["face 2"].participant is None
    speaking = [f for f in range(60) if speaks(f) and not 20 <= f < 25]
    assert [(round(a * FPS), round(b * FPS)) for a, b, _ in by_name["face 1 speaking"].intervals] == \
        [(speaking[0], 20), (25, speaking[-1] + 1)]


def test_face_rows_equal_the_faces_of_faces_json(faces):
    document = faces_document()
    expected = [(f["frame"], face) for f in document["frames"] for face in f["faces"]]
    rows = faces.rows
    assert len(rows["frame"]) == len(expected) == 95
    assert list(rows)[:10] == ["frame", "time", "track_id", "x", "y", "w", "h", "score", "speaking", "speaker"]
    assert sorted(list(rows)[10:]) == ["blendshape_eyeBlinkLeft", "blendshape_jawOpen", "head_pitch", "head_roll",
                                       "head_yaw"]
    for i, (frame, face) in enumerate(expected):
        assert (rows["frame"][i], rows["time"][i], rows["track_id"][i]) == (frame, round(frame / FPS, 3),
                                                                             face["track_id"])
        assert [rows[k][i] for k in "xywh"] == face["bbox"]
        assert (rows["score"][i], rows["speaking"][i], rows["speaker"][i]) == \
            (face.get("score"), face["speaking"], face["speaker"])
        assert rows["blendshape_jawOpen"][i] == face.get("blendshapes", {}).get("jawOpen")
        assert rows["head_yaw"][i] == face.get("head_pose", {}).get("yaw")
    assert faces.boxes[30] == [(1, 40.0, 20.0, 50.0, 60.0, speaks(30), "SPEAKER_00" if speaks(30) else None)]


def test_transcript_adds_tiers_rows_cues_and_subtitles(faces):
    tiers = {t.name: t for t in annotation_tiers(DIARIZATION, SCENES, faces, SPEAKERS, TRANSCRIPT)}
    assert tiers["SPEAKER_00 transcript"].intervals == ((0.25, 1.4, "Hello there."),)
    assert tiers["SPEAKER_00 words"].intervals == ((0.25, 0.7, "Hello"), (0.75, 1.4, "there."))
    assert tiers["SPEAKER_01 words"].intervals == ((1.8, 2.2, "Good"), (2.2, 2.8, "morning"))  # overlap trimmed
    rows = turn_rows(DIARIZATION, TRANSCRIPT)
    kinds = list(zip(rows["kind"], rows["start"], rows["text"]))
    assert kinds[:4] == [("turn", 0.2, None), ("segment", 0.25, "Hello there."), ("word", 0.25, "Hello"),
                         ("word", 0.75, "there.")]
    assert rows["kind"].count("turn") == 3 and rows["kind"].count("word") == 4
    word = rows["text"].index("morning")
    assert (rows["probability"][word], rows["track_id"][word], rows["duration"][word]) == (0.6, None, 0.7)
    assert subtitle_cues(DIARIZATION, SPEAKERS, TRANSCRIPT) == [(0.25, 1.4, "SPEAKER_00", "Hello there."),
                                                                (1.8, 2.8, "SPEAKER_01", "Good morning")]
    timeline = review_timeline(DIARIZATION, SCENES, 100, FPS, TRANSCRIPT)
    assert timeline.subtitle[10] == "Hello there." and timeline.subtitle[40] == "" and timeline.subtitle[50] == \
        "Good morning"


def test_without_transcript_cues_are_turns_and_the_timeline_follows_diarization_and_scenes():
    assert subtitle_cues(DIARIZATION, SPEAKERS) == [(0.2, 1.5, "SPEAKER_00", "SPEAKER_00 (face 1)"),
                                                    (1.7, 2.9, "SPEAKER_01", "SPEAKER_01"),
                                                    (3.0, 3.9, "SPEAKER_00", "SPEAKER_00 (face 1)")]
    rows = turn_rows(DIARIZATION)
    assert rows["kind"] == ["turn"] * 3 and rows["speaker"] == ["SPEAKER_00", "SPEAKER_01", "SPEAKER_00"]
    assert rows["duration"] == [1.3, 1.2, 0.9]
    timeline = review_timeline(DIARIZATION, SCENES, 100, FPS)
    assert timeline.scene[59] == 1 and timeline.scene[60] == 2
    assert timeline.speakers[2] == () and timeline.speakers[10] == ("SPEAKER_00",) and timeline.speakers[
        45] == ("SPEAKER_01",) and timeline.speakers[73] == ()


def test_tier_intervals_never_overlap():
    assert clean_intervals([(1.0, 2.0, "a"), (0.0, 1.5, "a"), (3.0, 3.0, "a")]) == [(0.0, 2.0, "a")]
    assert clean_intervals([(0.0, 1.5, "a"), (1.0, 2.0, "b"), (1.2, 1.4, "c")], merge_equal=False) == \
        [(0.0, 1.5, "a"), (1.5, 2.0, "b")]


@pytest.mark.parametrize("document, reason", [
    ({"fps": 25, "width": 320, "height": 180, "frame_count": 1, "frames": [{"frame": 1, "faces": []}]},
     "not numbered 0, 1, 2"),
    ({"fps": 25, "width": 320, "height": 180, "frame_count": 1, "frames": [{"frame": 0, "faces": [{"bbox": [1]}]}]},
     "not a faces.json"),
    ({"fps": 25, "width": 320, "height": 180, "frame_count": 2, "frames": [{"frame": 0, "faces": []}]},
     "lists 1 frames, but its frame_count is 2"),
])
def test_bad_faces_json_is_a_one_line_error(tmp_path, document, reason):
    path = tmp_path / "faces.json"
    path.write_text(json.dumps(document))
    with pytest.raises(UserError, match=reason) as err:
        read_faces(path)
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)
    path.write_text('{"frames": [')
    with pytest.raises(UserError, match="cannot read"):
        read_faces(path)


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
    truth = mf.make_video(folder / "video.mp4", [mf.Shot("astronaut", 60), mf.Shot("astronaut_pair", 40)],
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
    command = job_command(python, ROOT / "scripts" / "export.py", inputs, {k: out / v for k, v in names.items()},
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
from steps.export_check import check_eaf
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
    page = exports_html(rows + [{"file": "<b>", "for": "x", "holds": "", "size": "1 B"}])
    assert page.startswith('<table class="exports">') and page.count("<tr>") == 10 and "&lt;b&gt;" in page
    assert "<em>Review video</em>" in page and "Review video" not in exports_html(rows, review=False)
