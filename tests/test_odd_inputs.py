"""Bad and unusual inputs: one line each for the bad ones, and the rest of the run finishes; odd but valid videos
(one frame, 4K 60 fps, a rotated phone video, a variable-frame-rate screen recording with a weird name) are
normalised and analysed like any other (``odd_run``: tests/odd_inputs_run.py)."""

import re
import subprocess

import pytest
from odd_inputs_run import BAD, ODD, WEIRD_NAME, result

from conftest import ffprobe_json
from steps.tracking.tracks import iou
from vidflow.errors import UserError
from vidflow.media import ffprobe, packet_durations, summarize

pytest_plugins = ["odd_inputs_run"]


def test_unreadable_files_get_a_precise_reason(tmp_path, good_clip):
    """Fast checks of the reasons the odd-inputs run relies on (no Snakemake)."""
    cases = {"empty.mp4": b"", "notes.mp4": "Meeting notes: caf\u00e9\n".encode() * 300,
                       "truncated.mp4": good_clip[0].read_bytes()[:20000]}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(UserError) as err:
            ffprobe(tmp_path / name)
        assert err.value.subject == str(tmp_path / name) and str(tmp_path) not in err.value.reason
        assert err.value.reason == {"empty.mp4": "empty file (0 bytes)",
                                    "notes.mp4": "not a readable media file (it is a text file)",
                                    "truncated.mp4": "not a readable media file (moov atom not found; "
                                                     "Invalid data found when processing input)"}[name]


def faces_match(frames, truth_faces, min_share=0.9):
    """Share of frames whose single face overlaps the single true face with IoU >= 0.5, and the track ids."""
    hits = sum(len(f["faces"]) == 1 and len(t) == 1 and iou(f["faces"][0]["bbox"], t[0]["bbox"]) >= 0.5
               for f, t in zip(frames, truth_faces))
    assert hits >= min_share * len(truth_faces), f"{hits} of {len(truth_faces)} frames match the true face"
    return {face["track_id"] for f in frames for face in f["faces"]}


@pytest.mark.slow
def test_bad_inputs_give_one_line_each_and_the_rest_finishes(odd_run):
    work, proc, _, _ = odd_run
    assert proc.returncode == 0, proc.stderr[-4000:]  # bad inputs are skipped with a reason, not failed
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [line for line in proc.stderr.splitlines() if re.search(r" (WARNING|ERROR) ", line)]
    for name, (line, _) in BAD.items():
        mine = [x for x in lines if name in x]
        assert len(mine) == 1 and line in mine[0], f"{name}: expected one line with {line!r}, got {mine}"
    manifest = result(work, "extracted", "manifest.json", project="_loose")
    skipped = {s["member"]: s["reason"] for s in manifest["skipped"]}
    assert skipped == {name: reason for name, (_, reason) in BAD.items() if reason}
    assert sorted(v["video"] for v in manifest["videos"]) == sorted(ODD)
    assert result(work, "extracted", "manifest.json", project="nested")["videos"] == []
    many = result(work, "extracted", "manifest.json", project="many")
    assert many["videos"] == [] and len(many["skipped"]) == 5000


@pytest.mark.slow
def test_inputs_untouched_and_nothing_half_written(odd_run):
    work, _, _, before = odd_run
    assert {p.name: p.read_bytes() for p in (work / "input").iterdir()} == before
    leftovers = [str(p) for folder in ("results", "archive") for p in (work / folder).rglob(".*")
                 if p.name not in (".snakemake_timestamp", ".lock")]
    assert leftovers == []
    for video in ODD:
        receipt = result(work, video, "archive.json")
        subprocess.run(["sha256sum", "--quiet", "-c", "MANIFEST.sha256"], cwd=work / receipt["archive"], check=True)


def assert_25fps_cfr(path, frames, size):
    v = summarize(ffprobe_json(path))["video"]
    assert (v["codec"], v["pix_fmt"], v["r_frame_rate"], v["avg_frame_rate"]) == ("h264", "yuv420p", "25", "25")
    assert len(packet_durations(path)) <= 1, "not constant frame rate"
    assert abs(v["nb_frames"] - frames) <= 1 and (v["width"], v["height"], v["rotation"]) == (*size, 0)


@pytest.mark.slow
def test_good_clip_is_analysed_correctly(odd_run, good_clip):
    work, _, _, _ = odd_run
    _, truth, speech = good_clip
    assert_25fps_cfr(work / "results" / "_loose" / "good" / "video.mp4", 60, (320, 180))
    assert result(work, "good", "video.json")["mode"] == "remux"
    assert [(s["start_frame"], s["end_frame"]) for s in result(work, "good", "scenes.json")["scenes"]] == [(0, 59)]
    assert len(faces_match(result(work, "good", "tracking.json")["frames"], truth["faces"])) == 1
    diar = result(work, "good", "diarization.json")
    assert diar["speakers"] == ["SPEAKER_00"] and len(diar["segments"]) == 1
    (got,), (want,) = diar["segments"], speech["segments"]
    assert abs(got["start"] - want["start"]) <= 0.3 and abs(got["end"] - want["end"]) <= 0.3


@pytest.mark.slow
def test_single_frame_video_is_valid_input(odd_run):
    work, _, truths, _ = odd_run
    assert_25fps_cfr(work / "results" / "_loose" / "one_frame" / "video.mp4", 1, (320, 180))
    scenes = result(work, "one_frame", "scenes.json")
    assert scenes["frame_count"] == 1 and [(s["start_frame"], s["end_frame"]) for s in scenes["scenes"]] == [(0, 0)]
    assert (work / "results" / "_loose" / "one_frame" / "scenes.csv").read_text().splitlines()[1:] == [
        "1,00:00:00.000,00:00:00.000,1,1"]
    tracking = result(work, "one_frame", "tracking.json")
    assert tracking["frame_count"] == 1 and len(tracking["frames"]) == 1
    # A face seen in every frame of a scene shorter than tracking.min_track_frames (3) is kept.
    (truth,), (face,) = truths["one_frame"]["faces"][0], tracking["frames"][0]["faces"]
    assert iou(face["bbox"], truth["bbox"]) >= 0.5 and face["track_id"] == 1
    assert result(work, "one_frame", "diarization.json")["speakers"] == []  # no audio stream
    reduced = result(work, "one_frame", "one_frame_tracking.json")
    assert reduced["total_frames"] == 1 and len(reduced["frames_analysis"]) == 1


@pytest.mark.slow
def test_4k_60fps_portrait_and_vfr_screen_recording_are_normalised(odd_run):
    work, _, truths, _ = odd_run
    folder = work / "results" / "_loose"
    assert_25fps_cfr(folder / "uhd60" / "video.mp4", 25, (3840, 2160))
    assert result(work, "uhd60", "tracking.json")["width"] == 3840
    assert_25fps_cfr(folder / "portrait" / "video.mp4", 30, (180, 320))  # upright, as the phone showed it
    assert len(faces_match(result(work, "portrait", "tracking.json")["frames"], truths["portrait"]["faces"])) == 1
    screen = truths["screen_rec_take_2_uni"]
    assert len(packet_durations(work / "input" / WEIRD_NAME)) > 1, "fixture should be VFR"
    assert_25fps_cfr(folder / "screen_rec_take_2_uni" / "video.mp4", round(screen["duration"] * 25), (320, 180))
    videos = result(work, "extracted", "manifest.json")["videos"]
    entry = next(v for v in videos if v["video"] == "screen_rec_take_2_uni")
    assert entry["original_name"] == WEIRD_NAME and entry["path"] == str(work / "input" / WEIRD_NAME)
    assert WEIRD_NAME.replace('"', '""') in (folder / "videos.tsv").read_text()
