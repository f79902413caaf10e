"""Integration: the real workflow (Snakemake CLI) on the bundled demo, a malicious archive and loose videos."""

import hashlib
import json
import re
import shutil
import subprocess
import zipfile

import pytest

from conftest import ROOT, ffprobe_json, read_tsv, run_snakemake
from steps.tracking.tracks import iou
from vidflow.media import packet_durations, summarize

DEMO = ROOT / "resources" / "demo" / "demo_interviews.zip"
LOOSE_NAME = "Café 'Talk' #1.mp4"
TRUTH = json.loads((ROOT / "resources" / "demo" / "truth.json").read_text())["clips"]


def jobs_run(proc):
    """Names of the rules whose jobs a Snakemake run executed."""
    return set(re.findall(r"^(?:local)?(?:rule|checkpoint) (\w+):", proc.stdout + proc.stderr, flags=re.M))


@pytest.fixture(scope="module")
def workflow_run(tmp_path_factory, tiny_video):
    """One run over: the demo archive, an archive with a path-traversal member, and a loose video."""
    work = tmp_path_factory.mktemp("workflow")
    inputs = work / "input"
    inputs.mkdir()
    shutil.copy(DEMO, inputs)
    with zipfile.ZipFile(inputs / "evil.zip", "w") as zf:
        zf.writestr("ok.mp4", tiny_video.read_bytes())
        zf.writestr("../../escaped.mp4", tiny_video.read_bytes())
    shutil.copy(tiny_video, inputs / LOOSE_NAME)
    proc = run_snakemake(work, config={"input_dir": str(inputs)}, check=False)
    return work, proc


def test_on_two_cores_a_videos_jobs_take_one_thread_each_but_convert(workflow_run):
    """rules/common.smk's branch_threads: with --cores 2 the steps that can run beside another of their video (its
    audio jobs beside its video jobs) get one thread each (their config asks for 2); convert keeps 2. Tracking gets
    the second of its 2 as a spare thread (a worker at nice 19)."""
    _, proc = workflow_run
    threads, spare = {}, {}
    for step, count, rest in re.findall(r"run_step\.py (\S+) '.*' --threads (\d+)(.*)", proc.stdout + proc.stderr):
        threads.setdefault(step, set()).add(int(count))
        spare.setdefault(step, set()).add(re.search(r"--spare-threads (\S+)", rest)[1] if "--spare" in rest else None)
    for step in ("scenes", "diarization", "transcribe:run_speech", "identity", "export", "tracking"):
        assert threads[step] == {1}, (step, threads)
    assert threads["convert"] == {2} and threads["transcribe"] == {1}
    assert spare["tracking"] == {"1"} and spare["scenes"] == {None}  # Snakemake prints the shell as it ran it


def test_dry_run_lists_the_extraction_jobs(tmp_path):
    proc = run_snakemake(tmp_path, "-n", config={"input_dir": str(DEMO.parent)})
    assert "extract" in proc.stdout and "demo_interviews" in proc.stdout
    assert not (tmp_path / "results").exists()


def test_malicious_archive_fails_alone_with_a_one_line_reason(workflow_run):
    work, proc = workflow_run
    assert proc.returncode != 0
    assert {"extract", "convert", "project_summary"} <= jobs_run(proc)
    log = (work / "logs" / "extract" / "evil.log").read_text()
    errors = [line for line in log.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "evil.zip: unsafe member path '../../escaped.mp4': path traversal" in errors[0]
    assert "evil.zip: unsafe member path" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (work / "results" / "evil" / "extracted").exists()
    escaped = [p for p in work.parent.rglob("escaped.mp4")]
    assert escaped == []


@pytest.mark.parametrize("project, video, mode", [("demo_interviews", "interview_one", "remux"),
                                                  ("demo_interviews", "Lecture-2", "encode"),
                                                  ("_loose", "Cafe_Talk_1", "remux")])
def test_good_videos_are_converted_to_25fps_cfr_with_audio(workflow_run, project, video, mode):
    work, _ = workflow_run
    out = work / "results" / project / video / "video.mp4"
    info = json.loads((work / "results" / project / video / "video.json").read_text())
    s = summarize(ffprobe_json(out))
    v = s["video"]
    assert (v["codec"], v["pix_fmt"], v["r_frame_rate"], v["avg_frame_rate"]) == ("h264", "yuv420p", "25", "25")
    assert len(packet_durations(out)) == 1, "not constant frame rate"
    assert abs(v["nb_frames"] - round(info["source"]["duration"] * 25)) <= 1
    assert s["audio"]["codec"] == "aac"
    assert info["mode"] == mode
    assert f"{video}.tsv" in {p.name for p in (work / "results" / "benchmarks" / "convert" / project).iterdir()}


def test_manifest_keeps_original_names_and_skips_non_videos(workflow_run):
    work, _ = workflow_run
    demo = json.loads((work / "results" / "demo_interviews" / "extracted" / "manifest.json").read_text())
    assert {v["original_name"] for v in demo["videos"]} == {"interview one.mp4", "Lecture-2.mp4"}
    assert any(s["reason"] == "not a video (extension)" for s in demo["skipped"])
    loose = json.loads((work / "results" / "_loose" / "extracted" / "manifest.json").read_text())
    assert [v["original_name"] for v in loose["videos"]] == [LOOSE_NAME]
    assert (work / "input" / LOOSE_NAME).exists() and (work / "input" / "evil.zip").exists()


def load(work, video, name):
    return json.loads((work / "results" / "demo_interviews" / video / name).read_text())


def test_demo_scenes_speakers_and_faces_match_the_truth(workflow_run):
    work, _ = workflow_run
    one = TRUTH["interview one.mp4"]
    scenes = load(work, "interview_one", "scenes.json")["scenes"]
    assert len(scenes) == 2 and abs(scenes[1]["start_frame"] - one["cuts"][0]) <= 1
    assert len(load(work, "Lecture-2", "scenes.json")["scenes"]) == 1
    diar = load(work, "interview_one", "diarization.json")
    assert diar["speakers"] == ["SPEAKER_00", "SPEAKER_01"] and len(diar["segments"]) == 4
    voice_of = {}
    for got, want in zip(diar["segments"], one["speech"]["segments"]):
        assert voice_of.setdefault(got["speaker"], want["speaker"]) == want["speaker"]
        assert abs(got["start"] - want["start"]) <= 0.3 and abs(got["end"] - want["end"]) <= 0.3
    assert load(work, "Lecture-2", "diarization.json")["speakers"] == ["SPEAKER_00"]
    frames = load(work, "interview_one", "tracking.json")["frames"]
    cut = one["cuts"][0]
    shot_a = [f["faces"] for f in frames[:cut]]
    assert sum(len(faces) == 1 for faces in shot_a) >= 0.9 * cut
    assert len({face["track_id"] for faces in shot_a for face in faces}) == 1
    assert all(not f["faces"] for f in frames[cut + 1:]), "a face found in the coffee shot"
    for index, box in ((0, one["shots"][0]["faces_first_frame"][0]), (cut - 1, one["shots"][0]["faces_last_frame"][0])):
        assert iou(frames[index]["faces"][0]["bbox"], box) >= 0.5
    pair = load(work, "Lecture-2", "tracking.json")["frames"]
    ids = [sorted(face["track_id"] for face in f["faces"]) for f in pair]
    assert sum(len(i) == 2 for i in ids) >= 0.9 * len(pair) and len({t for i in ids for t in i}) == 2


def test_demo_talker_is_linked_to_its_face_and_the_off_screen_voice_to_none(workflow_run):
    """interview one: the astronaut's mouth moves with the male voice; the female interviewer is never on screen."""
    work, _ = workflow_run
    one = TRUTH["interview one.mp4"]
    diar = load(work, "interview_one", "diarization.json")
    label = {want["speaker"]: got["speaker"] for got, want in zip(diar["segments"], one["speech"]["segments"])}
    tracks = {face["track_id"] for f in load(work, "interview_one", "tracking.json")["frames"] for face in f["faces"]}
    links = {s["speaker"]: s["tracks"] for s in load(work, "interview_one", "speakers.json")["speakers"]}
    assert links[label[one["speech"]["talker"]]] == sorted(tracks) and len(tracks) == 1
    assert [links[label[voice]] for voice in one["speech"]["speakers"] if voice != one["speech"]["talker"]] == [[]]
    faces = load(work, "interview_one", "faces.json")["frames"]
    speaking = [face["speaking"] for f in faces for face in f["faces"]]
    assert any(speaking) and not all(speaking)  # the astronaut speaks in the male turns only


def test_demo_persons_join_the_talker_face_and_voice_and_keep_faces_on_screen_together_apart(workflow_run):
    """Identity: interview one's astronaut face and the male voice its mouth follows are one person, the off-screen
    interviewer's voice another; Lecture-2's two faces (on screen together) are two persons."""
    work, _ = workflow_run
    persons = json.loads((work / "results" / "demo_interviews" / "persons.json").read_text())
    one = TRUTH["interview one.mp4"]
    diar = load(work, "interview_one", "diarization.json")
    label = {want["speaker"]: got["speaker"] for got, want in zip(diar["segments"], one["speech"]["segments"])}
    interview, lecture = persons["mapping"]["interview_one"], persons["mapping"]["Lecture-2"]
    talker = interview["speakers"][label[one["speech"]["talker"]]]
    assert interview["tracks"] == {"1": talker}
    interviewer = [interview["speakers"][label[v]] for v in one["speech"]["speakers"] if v != one["speech"]["talker"]]
    assert interviewer[0] != talker
    assert len(lecture["tracks"]) == 2 and len(set(lecture["tracks"].values())) == 2
    by_id = {p["person"]: p for p in persons["persons"]}
    assert by_id[talker]["faces"] and by_id[talker]["voices"] and not by_id[interviewer[0]]["faces"]
    assert by_id[talker]["thumbnail"].startswith("data:image/jpeg;base64,")
    page = (work / "results" / "demo_interviews" / "report" / "persons.html").read_text()
    assert page.count("<h4>") == 2 and all(f">{person}</text>" in page for person in by_id)


def test_demo_is_transcribed_by_default_with_speakers_faces_and_persons_words(workflow_run):
    """Transcription is on by default: each demo line's words carry its voice, the talker's words his face; the
    persons count the words; the report, the EAF and the review video show them."""
    work, _ = workflow_run
    one = TRUTH["interview one.mp4"]
    diar = load(work, "interview_one", "diarization.json")
    label = {want["speaker"]: got["speaker"] for got, want in zip(diar["segments"], one["speech"]["segments"])}
    transcript = load(work, "interview_one", "transcript.json")
    assert (transcript["engine"]["model"], transcript["language"]) == ("base", "en")
    words = [w for s in transcript["segments"] for w in s["words"]]
    tracks = {s["speaker"]: s["tracks"] for s in load(work, "interview_one", "speakers.json")["speakers"]}
    for line in one["speech"]["segments"]:
        said = [w for w in words if line["start"] - 0.2 <= (w["start"] + w["end"]) / 2 <= line["end"] + 0.2]
        assert said and {w["speaker"] for w in said} == {label[line["speaker"]]}, (line, said)
        linked = tracks[label[line["speaker"]]]  # the talker's face until the cut, then none on screen
        assert {w["track_id"] for w in said} <= {*linked, None} and (not linked or said[0]["track_id"] in linked)
    spoken = " ".join(w["word"].strip(",.").lower() for w in words)
    assert "welcome to the show" in spoken and "journey into space" in spoken
    lecture = " ".join(s["text"] for s in load(work, "Lecture-2", "transcript.json")["segments"])
    assert "rockets" in lecture and "fuel" in lecture
    persons = json.loads((work / "results" / "demo_interviews" / "persons.json").read_text())
    counted = sum(p["words"] for p in persons["persons"])
    total = sum(load(work, video, "transcript.json")["word_count"] for video in ("interview_one", "Lecture-2"))
    assert 0 < counted <= total
    report = work / "results" / "demo_interviews" / "interview_one" / "report"
    assert "journey" in (report / "transcript.html").read_text()
    eaf = (work / "results" / "demo_interviews" / "interview_one" / "export" / "interview_one.eaf").read_text()
    assert "SPEAKER_00 words" in eaf and "Welcome" in eaf


def test_archives_are_complete_and_verifiable(workflow_run):
    work, _ = workflow_run
    for video in ("interview_one", "Lecture-2", "Cafe_Talk_1"):
        project = "_loose" if video == "Cafe_Talk_1" else "demo_interviews"
        receipt = json.loads((work / "results" / project / video / "archive.json").read_text())
        folder = work / receipt["archive"]
        video_bytes = (work / "results" / project / video / "video.mp4").read_bytes()
        assert receipt["sha256"] == hashlib.sha256(video_bytes).hexdigest()
        assert sorted(p.name for p in folder.iterdir()) == sorted(receipt["files"]) == sorted(
            [f"{video}_tracking.json", f"{video}_audio.json", f"{video}_scenes.csv", f"{video}_diarization.rttm",
             "metadata.json", "MANIFEST.sha256",  # and the research exports (on by default)
             f"{video}.eaf", f"{video}.TextGrid", f"{video}.vtt", f"{video}_faces.parquet", f"{video}_faces.csv",
             f"{video}_turns.parquet", f"{video}_turns.csv", f"{video}_review.mp4",
             f"{video}_identity.json",  # and the identity step's embeddings (on by default)
             f"{video}_transcript.json", f"{video}_transcript.vtt", f"{video}_transcript.srt"])  # and the transcript
        subprocess.run(["sha256sum", "--quiet", "-c", "MANIFEST.sha256"], cwd=folder, check=True)
        meta = json.loads((folder / "metadata.json").read_text())
        assert meta["project"] == project and meta["converted_sha256"] == receipt["sha256"]
        assert set(meta["steps"]) >= {"scenes", "diarization", "tracking", "video"}
        assert meta["video_hash"] == receipt["sha256"] and all((folder / f).is_file() for f in meta["copied"].values())
        assert str(work) not in (folder / "metadata.json").read_text()
    meta = json.loads((work / json.loads((work / "results" / "demo_interviews" / "interview_one" / "archive.json")
                                         .read_text())["archive"] / "metadata.json").read_text())
    assert meta["source"] == {"archive": "demo_interviews.zip", "member": "interview one.mp4",
                              "sha256": TRUTH["interview one.mp4"]["sha256"]}
    assert (meta["video_path"], meta["video_stem"]) == ("interview one.mp4", "interview one")
    assert meta["copied"] == {kind: f"interview_one{suffix}" for kind, suffix in
                              {"scenes": "_scenes.csv", "audio": "_audio.json", "tracking": "_tracking.json"}.items()}


def test_rerun_after_fixing_input_completes_then_does_nothing(workflow_run):
    work, _ = workflow_run
    (work / "input" / "evil.zip").unlink()
    config = {"input_dir": str(work / "input")}
    second = run_snakemake(work, config=config)
    ran = jobs_run(second)  # only the run-level report, which waited for every project, is new
    assert ran <= {"all", "report_run", "diagnostics"}, f"no video should be recomputed, but {ran} ran"
    for env_file in (ROOT / "envs").glob("*.yaml"):  # e.g. a git checkout: new mtimes, same pins
        env_file.touch()
    third = run_snakemake(work, config=config)
    assert "Nothing to be done" in third.stdout + third.stderr


def jobs_planned(proc):
    """(rule, wildcards) of every job a dry run lists."""
    jobs = []
    for block in re.split(r"^(?=(?:local)?(?:rule|checkpoint) \w+:)", proc.stdout + proc.stderr, flags=re.M)[1:]:
        rule = re.match(r"(?:local)?(?:rule|checkpoint) (\w+):", block).group(1)
        found = re.search(r"^\s+wildcards: (.*)$", block, flags=re.M)
        jobs.append((rule, dict(kv.split("=", 1) for kv in found.group(1).split(", ")) if found else {}))
    return jobs


AGGREGATES = {("project_summary", "_loose"), ("identity_persons", "_loose"), ("report_persons", "_loose"),
              ("report_run", None), ("diagnostics", None), ("all", None)}


def test_adding_or_removing_a_video_reruns_only_its_jobs_and_the_tables(workflow_run, tiny_video):
    work, _ = workflow_run
    config = {"input_dir": str(work / "input")}
    added = work / "input" / "second take.mp4"
    shutil.copy(tiny_video, added)
    run_snakemake(work, "results/_loose/extracted", config=config)  # the project's checkpoint: the new video is known
    planned = jobs_planned(run_snakemake(work, "-n", config=config))
    per_video = {(rule, wc["video"]) for rule, wc in planned if "video" in wc}
    assert {video for _, video in per_video} == {"second_take"}, f"other videos' jobs rerun: {per_video}"
    assert {"video_source", "convert", "scenes", "finalize", "report_video"} <= {rule for rule, _ in per_video}
    assert {(rule, wc.get("project")) for rule, wc in planned if "video" not in wc} == AGGREGATES
    added.unlink()
    run_snakemake(work, "results/_loose/extracted", config=config)
    planned = jobs_planned(run_snakemake(work, "-n", config=config))  # the manifest is back to what the tables saw,
    assert {(rule, wc.get("project")) for rule, wc in planned} <= AGGREGATES  # so Snakemake may find nothing to do


def test_json_outputs_match_their_schemas(workflow_run):
    import jsonschema

    work, _ = workflow_run
    pairs = [("manifest", p) for p in (work / "results").glob("*/extracted/manifest.json")]
    pairs += [("video", p) for p in (work / "results").glob("*/*/video.json")]
    assert len(pairs) == 2 + 3
    for schema, path in pairs:
        jsonschema.validate(json.loads(path.read_text()),
                            json.loads((ROOT / "schemas" / f"{schema}.schema.json").read_text()))


def archive_of(work, project, video):
    return work / json.loads((work / "results" / project / video / "archive.json").read_text())["archive"]


def test_two_clean_runs_give_byte_identical_archives(workflow_run, tmp_path):
    work, _ = workflow_run
    run_snakemake(tmp_path, config={"input_dir": str(DEMO.parent)})
    for video in ("interview_one", "Lecture-2"):
        first, second = archive_of(work, "demo_interviews", video), archive_of(tmp_path, "demo_interviews", video)
        assert first.name == second.name
        for path in sorted(first.iterdir()):
            a, b = path.read_bytes(), (second / path.name).read_bytes()
            if path.name == "metadata.json":
                a, b = (json.loads(x) for x in (a, b))
                assert a.pop("created_at") and b.pop("created_at")
            if path.name == "MANIFEST.sha256":  # covers metadata.json, hence its created_at
                a, b = ([line for line in x.splitlines() if not line.endswith(b"  metadata.json")] for x in (a, b))
            assert a == b, f"{video}/{path.name} differs between two clean runs"


def test_corrupt_intermediate_fails_only_its_video_with_a_precise_message(workflow_run):
    work, _ = workflow_run
    good, bad_video = archive_of(work, "demo_interviews", "interview_one"), "Lecture-2"
    bad_archive = archive_of(work, "demo_interviews", bad_video)
    bad = work / "results" / "demo_interviews" / bad_video / f"{bad_video}_audio.json"
    data = json.loads(bad.read_text())
    data["frames_analysis"][3]["audio_info"]["is_speech_present"] = "yes"
    bad.write_text(json.dumps(data))
    for video, folder in (("interview_one", good), (bad_video, bad_archive)):
        shutil.rmtree(folder)
        (work / "results" / "demo_interviews" / video / "archive.json").unlink()
    proc = run_snakemake(work, config={"input_dir": str(work / "input")}, check=False)
    assert proc.returncode != 0
    assert (f"results/demo_interviews/{bad_video}/{bad_video}_audio.json: /frames_analysis/3/audio_info/"
            f"is_speech_present: violates 'type' of reduced_audio.schema.json: 'yes' is not of type 'boolean'"
            in proc.stderr)
    assert not bad_archive.exists() and not list(bad_archive.parent.glob(f".{bad_archive.name}*"))
    subprocess.run(["sha256sum", "--quiet", "-c", "MANIFEST.sha256"], cwd=good, check=True)
    # the project's table, made by its rule in an earlier run, now lists the failure with the error line of the log
    reason = (f"finalize: results/demo_interviews/{bad_video}/{bad_video}_audio.json: /frames_analysis/3/audio_info/"
              f"is_speech_present: violates 'type'")
    rows = {row["video"]: row for row in read_tsv(work / "results" / "demo_interviews" / "videos.tsv")}
    assert rows["interview_one"]["status"] == "done"
    assert rows[bad_video]["status"] == "failed" and rows[bad_video]["reason"].startswith(reason)
    # and the next run still tries the failed job again
    again = run_snakemake(work, config={"input_dir": str(work / "input")}, check=False)
    assert again.returncode != 0 and re.findall(r"^Error in rule (\w+):", again.stderr, flags=re.M) == ["finalize"]
