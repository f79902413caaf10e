"""Integration: the real workflow (Snakemake CLI) on the bundled demo, a malicious archive and loose videos."""

import json
import re
import shutil
import zipfile

import pytest
from conftest import ROOT, ffprobe_json, run_snakemake
from vidflow.media import packet_durations, summarize

DEMO = ROOT / "resources" / "demo" / "demo_interviews.zip"
LOOSE_NAME = "Café 'Talk' #1.mp4"


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


def test_rerun_after_fixing_input_completes_then_does_nothing(workflow_run):
    work, _ = workflow_run
    (work / "input" / "evil.zip").unlink()
    config = {"input_dir": str(work / "input")}
    second = run_snakemake(work, config=config)
    ran = jobs_run(second)
    assert ran <= {"all"}, f"nothing should be recomputed, but {ran} ran"
    for env_file in (ROOT / "envs").glob("*.yaml"):  # e.g. a git checkout: new mtimes, same pins
        env_file.touch()
    third = run_snakemake(work, config=config)
    assert "Nothing to be done" in third.stdout + third.stderr


def test_json_outputs_match_their_schemas(workflow_run):
    import jsonschema

    work, _ = workflow_run
    pairs = [("manifest", p) for p in (work / "results").glob("*/extracted/manifest.json")]
    pairs += [("video", p) for p in (work / "results").glob("*/*/video.json")]
    assert len(pairs) == 2 + 3
    for schema, path in pairs:
        jsonschema.validate(json.loads(path.read_text()),
                            json.loads((ROOT / "schemas" / f"{schema}.schema.json").read_text()))
