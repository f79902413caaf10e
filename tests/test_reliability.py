"""Reliability: bad and unusual inputs, interrupted runs, what a config change reruns, a full or read-only disk.

One real run (``odd_run``) puts one good clip beside every kind of bad or unusual input. It is also the
finished run the rerun test dry-runs against, and the uninterrupted reference of the interruption tests.
"""

import contextlib
import json
import os
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import media_factory as mf
import pytest
from conftest import (ROOT, SNAKEMAKE, VENV_DIR, ffprobe_json, make_testsrc, require_binaries, run_snakemake,
                      schema_defaults)
from vidflow.errors import UserError
from vidflow.io import write_json
from vidflow.job import job_json
from vidflow.media import ffprobe, packet_durations, summarize

GOOD_SHOT = mf.Shot("astronaut", 60, zoom=(1.15, 1.3), pan=(0.4, 0.3, 0.52, 0.28))
GOOD_SPEECH = [(0.3, "en-us+m3", "Hello there, nice to see you.")]
WEIRD_NAME = "-screen rec 'take \"2\"' \u00fcn\u00ef.mp4"  # leading dash, spaces, both quotes, unicode
# bad input -> the one warning/error line it must give (a fragment of it), and its reason in the manifest
BAD = {
    "empty.mp4": ("skipping empty.mp4: empty file (0 bytes)", "empty file (0 bytes)"),
    "truncated.mp4": ("skipping truncated.mp4: not a readable media file (moov atom not found",
                      "not a readable media file (moov atom not found; Invalid data found when processing input)"),
    "notes.mp4": ("skipping notes.mp4: not a readable media file (it is a text file)",
                  "not a readable media file (it is a text file)"),
    "audio only.mp4": ("skipping audio only.mp4: no video stream", "no video stream"),
    "nested.zip": ("nested.zip: skipping inner.zip: nested archive (not extracted)", None),
    "many.zip": ("many.zip: no video found (5000 member(s) skipped: 5000 not a video (extension))", None),
}
ODD = ("good", "one_frame", "uhd60", "portrait", "screen_rec_take_2_uni")


def ffmpeg(*args):
    subprocess.run(["ffmpeg", "-v", "error", "-y", *map(str, args)], check=True)


@pytest.fixture(scope="session")
def good_clip(tmp_path_factory):
    """2.4 s of the astronaut (one face) saying one sentence; already 25 fps H.264/AAC (remuxed)."""
    require_binaries("ffmpeg", "espeak-ng")
    folder = tmp_path_factory.mktemp("good_clip")
    speech = mf.make_speech(folder / "speech.wav", GOOD_SPEECH, 2.4)
    truth = mf.make_video(folder / "good.mp4", [GOOD_SHOT], audio=folder / "speech.wav")
    return folder / "good.mp4", truth, speech


def make_inputs(folder, good, scratch):
    """The good clip, the bad inputs of BAD and the unusual but valid videos of ODD; returns truths."""
    shutil.copy(good, folder / "good.mp4")
    (folder / "empty.mp4").write_bytes(b"")
    whole = make_testsrc(scratch / "whole.mp4", seconds=2)  # moov atom at the end: cut it off
    (folder / "truncated.mp4").write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    (folder / "notes.mp4").write_text("Meeting notes, not a video.\n" * 20)
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-c:a", "aac", folder / "audio only.mp4")
    with zipfile.ZipFile(scratch / "inner.zip", "w") as zf:
        zf.write(good, "clip.mp4")
    with zipfile.ZipFile(folder / "nested.zip", "w") as zf:
        zf.write(scratch / "inner.zip", "inner.zip")
    with zipfile.ZipFile(folder / "many.zip", "w") as zf:
        for i in range(5000):
            zf.writestr(f"notes/{i:04d}.txt", f"{i}\n")
    truths = {"one_frame": mf.make_video(folder / "one_frame.mp4", [mf.Shot("astronaut", 1, zoom=(1.2, 1.2),
                                                                               pan=(0.45, 0.3, 0.45, 0.3))])}
    make_testsrc(folder / "uhd60.mp4", seconds=1, fps=60, size="3840x2160", extra=["-crf", "35"])
    # a phone video: landscape pixels holding a sideways picture, and a display matrix that turns it upright
    truths["portrait"] = mf.make_video(scratch / "upright.mp4", [mf.Shot("astronaut", 30, zoom=(1.0, 1.1))],
                                       size=(180, 320))
    ffmpeg("-i", scratch / "upright.mp4", "-vf", "transpose=2", "-c:v", "libx264", "-preset", "ultrafast",
           folder / "portrait.mp4")
    mf.set_mp4_rotation(folder / "portrait.mp4", 90)
    # a screen recording: variable frame timing (mean 30 fps), no faces, no audio
    truths["screen_rec_take_2_uni"] = mf.make_video(folder / WEIRD_NAME, [mf.Shot("blank", 45, zoom=(1.0, 1.3))],
                                                    fps=30, vfr=True)
    return truths


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


def test_ctrl_c_in_a_step_is_one_line_without_traceback(tmp_path):
    script = tmp_path / "step.py"
    script.write_text("from vidflow.logs import run_main, setup_logging\n\ndef main(argv):\n"
                      "    setup_logging(None)\n    raise KeyboardInterrupt\n\nrun_main(main)\n")
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=False,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "scripts")})
    assert proc.returncode == 130 and proc.stderr.strip().endswith("ERROR vidflow: interrupted")
    assert len(proc.stderr.strip().splitlines()) == 1


def test_a_write_that_does_not_fit_names_the_output_and_leaves_nothing(tmp_path):
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))  # EFBIG (Python ignores SIGXFSZ)
    try:
        with pytest.raises(UserError) as err:
            write_json(tmp_path / "big.json", {"x": "y" * 10000})
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert str(err.value) == (f"{tmp_path / 'big.json'}: cannot write (File too large); "
                              f"free disk space or fix the output folder")
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="session")
def odd_run(tmp_path_factory, good_clip):
    work = tmp_path_factory.mktemp("odd_run")
    inputs = work / "input"
    inputs.mkdir()
    truths = make_inputs(inputs, good_clip[0], tmp_path_factory.mktemp("odd_scratch"))
    before = {p.name: p.read_bytes() for p in inputs.iterdir()}
    proc = run_snakemake(work, "--keep-going", config={"input_dir": str(inputs)}, check=False)
    return work, proc, truths, before


def iou(a, b):
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    return w * h / (aw * ah + bw * bh - w * h)


def result(work, video, name, project="_loose"):
    return json.loads((work / "results" / project / video / name).read_text())


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


def job_counts(proc):
    """``{rule: count}`` from the job stats table of a (dry) run."""
    table = (proc.stdout + proc.stderr).split("Job stats:", 1)[-1].split("total", 1)[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, flags=re.M)}


@pytest.mark.slow
def test_changing_the_tracking_engine_reruns_only_tracking_and_what_uses_it(odd_run, tmp_path):
    work, proc, _, _ = odd_run
    assert proc.returncode == 0
    config = {"input_dir": str(work / "input")}
    unchanged = run_snakemake(work, "-n", config=config)
    assert "Nothing to be done" in unchanged.stdout + unchanged.stderr
    task = ROOT.parent / "shared" / "models" / "mediapipe" / "face_landmarker_v2_with_blendshapes.task"
    override = tmp_path / "engine.yaml"  # same env family (mediapipe), so the same rule reruns
    override.write_text(json.dumps({"tracking": {"engine": "mediapipe_tasks",
                                                 "mediapipe_tasks": {"model": str(task), "sha256": ""}}}))
    jobs = job_counts(run_snakemake(work, "-n", config=config, configfiles=[override]))
    videos = len(ODD)
    assert jobs == {"track_faces_mediapipe": videos, "link_speakers": videos, "reduce": videos, "finalize": videos,
                    "report_video": videos, "project_summary": 1, "report_run": 1, "diagnostics": 1, "all": 1}


@contextlib.contextmanager
def full_disk(kind, folder):
    """``folder`` on a 32 KiB tmpfs (ENOSPC), read-only (EROFS), or writes capped at 32 KiB per file (RLIMIT_FSIZE:
    EFBIG in Python, SIGXFSZ kills FFmpeg). Mounting needs CAP_SYS_ADMIN (root in a plain container lacks it):
    those cases skip with the reason; the rlimit case works everywhere."""
    folder.mkdir()
    if kind == "tmpfs":
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32k", "tmpfs", str(folder)],
                                 capture_output=True, text=True, check=False)
        if mounted.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}); the rlimit case covers it")
        try:
            yield "No space left on device"
        finally:
            subprocess.run(["umount", str(folder)], check=True)
    elif kind == "readonly":
        where = shlex.quote(str(folder))
        mounted = subprocess.run(f"mount --bind {where} {where} && mount -o remount,ro,bind {where}", shell=True,
                                 capture_output=True, text=True, check=False)
        if mounted.returncode != 0:
            subprocess.run(["umount", str(folder)], capture_output=True, check=False)
            pytest.skip(f"cannot make a read-only bind mount here ({mounted.stderr.strip()})")
        try:
            yield "Read-only file system"
        finally:
            subprocess.run(["umount", str(folder)], check=True)
    else:
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (32 << 10, hard))  # inherited by the workflow's processes
        try:
            yield "File too large"
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


@pytest.mark.parametrize("kind", ["tmpfs", "rlimit", "readonly"])
def test_full_or_read_only_disk_gives_a_clear_error_and_no_corrupt_output(tmp_path, good_clip, kind):
    """An archive (extracted by Python) and a loose video (written by FFmpeg) whose outputs do not fit."""
    inputs = tmp_path / "input"
    inputs.mkdir()
    with zipfile.ZipFile(inputs / "clips.zip", "w") as zf:
        zf.write(good_clip[0], "clip.mp4")
    shutil.copy(good_clip[0], inputs / "loose.mp4")
    with full_disk(kind, tmp_path / "results") as reason:
        proc = run_snakemake(tmp_path, "--keep-going", config={"input_dir": str(inputs)}, check=False)
        files = sorted(str(p.relative_to(tmp_path)) for p in (tmp_path / "results").rglob("*") if p.is_file())
        manifest = tmp_path / "results" / "_loose" / "extracted" / "manifest.json"
        loose_manifest = json.loads(manifest.read_text()) if manifest.exists() else None
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    if kind == "readonly":  # Snakemake itself cannot create the output folders: its own one-line error
        assert re.search(r"Failed to create output directory results/\w+", proc.stderr)
        assert f"[Errno 30] {reason}" in proc.stderr and files == []
        return
    errors = sorted({line.split(" ERROR vidflow: ", 1)[1] for line in proc.stderr.splitlines()
                     if " ERROR vidflow: " in line})
    assert len(errors) == 2, errors
    if kind == "tmpfs":  # FFmpeg 5.1 exits 0 here (the unreadable output gives it away); newer ones fail
        assert re.fullmatch(rf"{re.escape(str(inputs / 'loose.mp4'))}: ffmpeg failed: .*{reason}"
                            r"|results/_loose/loose/video\.mp4: FFmpeg wrote an unreadable file \(.+\); "
                            r"the disk is full \(\d+ bytes free\)", errors[0]), errors[0]
    else:
        assert errors[0] == (f"{inputs / 'loose.mp4'}: ffmpeg failed: killed by SIGXFSZ "
                             f"(file size limit exceeded while writing the output)")
    assert errors[1] == f"results/clips/extracted: cannot write ({reason}); free disk space or fix the output folder"
    # only complete files: the loose manifest and video record (they fit), the tables that list the failure,
    # benchmarks; no video, no extracted folder, no temp files
    assert loose_manifest is not None and [v["video"] for v in loose_manifest["videos"]] == ["loose"]
    assert [f for f in files if not f.startswith("results/benchmarks/")] == [
        "results/_loose/extracted/.snakemake_timestamp", "results/_loose/extracted/manifest.json",
        "results/_loose/loose/source.json", "results/_loose/videos.tsv", "results/report/run.html"]


# --- interruption: SIGKILL or Ctrl-C (SIGINT) of the whole process group, in each heavy rule ---

HEAVY = [("convert", "video.mp4"), ("scenes", "scenes.json"), ("diarization", "diarization.json"),
         ("track_faces_mediapipe", "tracking.json")]


def workflow_cmd(work, *args):
    """The command run_snakemake runs (without its timeout), for a run the test signals itself."""
    return [str(SNAKEMAKE), "-s", str(ROOT / "Snakefile"), "--directory", str(work), "--configfile",
            str(ROOT / "config" / "config.yaml"), "--cores", "2", *args, "--config", f"venv_dir={VENV_DIR}",
            f"input_dir={work / 'input'}"]


def step_running(group):
    """Whether a process of ``group`` runs one of the workflow's step scripts (scripts/*.py)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) != group:
                continue
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, ProcessLookupError):
            continue
        if any(arg.startswith(str(ROOT / "scripts").encode()) and arg.endswith(b".py") for arg in cmdline):
            return True
    return False


def step_done(log):
    """Whether the step's log has its last line (every heavy step ends with ``INFO <name>: done: ...``)."""
    return re.search(r" INFO [\w.]+: done: ", log.read_text(errors="replace")) is not None


def wait_for_first_line(proc, log, timeout=600):
    """Wait until the step has written its log's first line (or ``proc`` ended)."""
    deadline = time.monotonic() + timeout
    while not (log.exists() and log.stat().st_size) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)


def signal_if_working(proc, log, sig):
    """Freeze ``proc``'s process group (SIGSTOP), send ``sig`` to it if the step still works (its script runs
    and has not logged ``done:``), let the group go on; returns whether it was signalled."""
    os.killpg(proc.pid, signal.SIGSTOP)
    working = step_running(proc.pid) and not step_done(log)
    if working:
        os.killpg(proc.pid, sig)
    os.killpg(proc.pid, signal.SIGCONT)
    return working


def like_a_terminal():
    """In the child: SIGINT back to its default action, as a shell gives a foreground job. A process started in the
    background by a non-interactive shell (``pytest ... &`` in a script, some CI runners) inherits SIGINT ignored;
    Snakemake and every step would then ignore the Ctrl-C, finish and exit 0, as an earlier version of this test
    saw 5 times of 5."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def interrupt(work, rule, output, sig, attempts=8):
    """Run the workflow up to ``output``, send ``sig`` to its process group once ``rule`` has started working
    (its log has a line), and wait until every process of the group is gone; returns what the run printed.

    The group is frozen (SIGSTOP) while checking that the step still works (its process runs and has not logged
    ``done:``), and the signal lands before it continues. A step that has logged ``done:`` is only exiting: a
    signal then would test Snakemake, not the step (a CI run saw exactly that race on the 60-frame clip), so the
    group is let go unsignalled; when the run succeeds, the output is removed and the run retried.
    A real Ctrl-C in a terminal reaches the same processes: the terminal's foreground process group."""
    log, transcript = work / "logs" / rule / "_loose" / "good.log", work / f"{rule}.{sig.name}.txt"
    for _ in range(attempts):
        with open(transcript, "w") as out:
            proc = subprocess.Popen(workflow_cmd(work, "--rerun-incomplete", f"results/_loose/good/{output}"),
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                    preexec_fn=like_a_terminal)  # noqa: PLW1509 - no threads in the test process
            wait_for_first_line(proc, log)
            assert proc.poll() is None, f"the run ended before {rule} started:\n{transcript.read_text()[-3000:]}"
            signal_if_working(proc, log, sig)
            proc.wait(timeout=300)
        if proc.returncode != 0:
            break
        log.unlink(missing_ok=True)  # the step ended before the signal: run it again
        (work / "results" / "_loose" / "good" / output).unlink(missing_ok=True)
    else:
        raise AssertionError(f"{rule} finished every time before it could be interrupted")
    for _ in range(200):  # nothing of the killed run may survive
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        raise AssertionError(f"processes of the interrupted run survived (group {proc.pid})")
    return transcript.read_text()


def outputs_of(work):
    """Every per-video output and archived file, by path relative to ``work`` (archive metadata minus its date)."""
    folder = work / "results" / "_loose" / "good"
    files = {str(p.relative_to(work)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    receipt = folder / "archive.json"
    for path in (work / json.loads(receipt.read_text())["archive"]).iterdir() if receipt.exists() else []:
        data = path.read_bytes()
        if path.name == "metadata.json":
            meta = json.loads(data)
            assert meta.pop("created_at")
            data = json.dumps(meta, sort_keys=True).encode()
        if path.name == "MANIFEST.sha256":  # covers metadata.json, hence its created_at
            data = b"\n".join(line for line in data.splitlines() if not line.endswith(b"  metadata.json"))
        files[str(path.relative_to(work))] = data
    return files


def is_temporary(name):
    """A file under a temporary name (``.video.mp4.k2j4h1x0.mp4``, ``.tracking.v6qt33kg/...``), which a
    SIGKILL-ed step could not remove; never one of the workflow's outputs."""
    return any(re.fullmatch(r"\.[\w.-]+\.\w{8}(\.\w+)?", part) for part in Path(name).parts)


def temporaries_under(folder):
    """Files and folders under a temporary name anywhere below ``folder``."""
    return sorted(str(p.relative_to(folder.parent)) for p in folder.rglob("*") if is_temporary(p.name))


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_interrupted_runs_resume_to_identical_outputs(odd_run, good_clip, tmp_path, sig):
    """SIGKILL: then ``--unlock`` and ``--rerun-incomplete``, as the README says. SIGINT (Ctrl-C): Snakemake stops
    the running job and exits non-zero with a short message; rerunning the same command finishes the work."""
    reference = outputs_of(odd_run[0])
    assert len(reference) > 20 and any(name.startswith("archive/") for name in reference)
    (tmp_path / "input").mkdir()
    shutil.copy(good_clip[0], tmp_path / "input" / "good.mp4")
    config = {"input_dir": str(tmp_path / "input")}
    for rule, output in HEAVY:
        printed = interrupt(tmp_path, rule, output, sig)
        assert not (tmp_path / "results" / "_loose" / "good" / output).exists(), f"{rule} was not interrupted"
        partial = outputs_of(tmp_path)
        temporary = sorted(name for name in partial if is_temporary(name))
        for name in set(partial) - set(temporary):  # whatever exists under a final name is complete
            assert partial[name] == reference[name], f"{name} differs after interrupting {rule}"
        if sig == signal.SIGKILL:  # Snakemake's lock outlives a killed run; --unlock is the documented fix
            run_snakemake(tmp_path, "--unlock", config=config)
            continue
        # Ctrl-C: Snakemake ends the job, the step says "interrupted" in one line, no traceback anywhere
        assert "Terminating processes on user request" in printed, printed[-3000:]
        assert "ERROR vidflow: interrupted" in printed and "Traceback" not in printed, printed[-6000:]
        assert temporary == [], f"{rule} left {temporary} after a Ctrl-C"
    final = ["--rerun-incomplete"] if sig == signal.SIGKILL else []
    run_snakemake(tmp_path, *final, config=config)
    resumed = {name: data for name, data in outputs_of(tmp_path).items() if not is_temporary(name)}
    assert sorted(resumed) == sorted(reference)
    assert [name for name in sorted(reference) if resumed[name] != reference[name]] == []
    # a killed step leaves its temporary files behind; the next writer of the same output removes them
    assert temporaries_under(tmp_path / "results") == []


def step_command(step, work, out):
    """The command of one heavy step on the good clip of ``work`` (the odd-inputs run), writing into ``out``."""
    folder = work / "results" / "_loose" / "good"
    video, scenes = folder / "video.mp4", folder / "scenes.json"
    env, script, args = {
        "scenes": ("scenes", "scenes.py", [job_json({"video": str(video)}, {
            "json": str(out / "scenes.json"), "csv": str(out / "scenes.csv"), "probs": str(out / "probs.json")},
            schema_defaults("scenes")), "--threads", "2"]),
        "diarization": ("diarization", "diarization.py", [job_json(
            {"video": str(video)}, {"json": str(out / "d.json"), "rttm": str(out / "d.rttm")},
            schema_defaults("diarization"))]),
        "tracking": ("tracking_mediapipe", "track_faces.py", ["--video", video, "--scenes", scenes, "--output",
                                                              out / "tracking.json", "--threads", "2",
                                                              "--chunk-frames", "30"]),
    }[step]
    return [str(VENV_DIR / env / "bin" / "python"), str(ROOT / "scripts" / script), *map(str, args),
            "--log", str(out / "step.log")]


@pytest.mark.slow
@pytest.mark.parametrize("step, delays", [("scenes", (0, 0.1, 0.2, 0.35, 0.5, 0.7, 0.9, 1.1, 1.4)),
                                          ("diarization", (0, 0.1, 0.3, 0.6, 1.0)),
                                          ("tracking", (0, 0.02, 0.05, 0.1, 0.2, 0.4))])
def test_ctrl_c_at_any_moment_of_a_step_s_start_ends_it_as_interrupted(odd_run, tmp_path, step, delays):
    """Ctrl-C while torch/onnxruntime/mediapipe are imported, models load or tracking workers start: always
    exit 130 with one line, no traceback, no output. (Before: the scenes step ran on to exit 0 after some of
    these, or died with 'unexpected AttributeError: partially initialized module'; tracking workers printed
    tracebacks.) A step that has logged ``done:`` when the signal would land is not signalled."""
    signalled = 0
    for delay in delays:
        out = tmp_path / str(delay)
        out.mkdir()
        log = out / "step.log"
        proc = subprocess.Popen(step_command(step, odd_run[0], out), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True,
                                preexec_fn=like_a_terminal)  # noqa: PLW1509 - no threads in the test process
        wait_for_first_line(proc, log)
        time.sleep(delay)
        hit = signal_if_working(proc, log, signal.SIGINT)
        printed = proc.communicate(timeout=300)[0]
        if not hit:
            continue
        signalled += 1
        assert proc.returncode == 130, f"{step}, SIGINT {delay} s in: exit {proc.returncode}\n{printed[-3000:]}"
        assert printed.strip().endswith("ERROR vidflow: interrupted") and "Traceback" not in printed, \
            f"{step}, SIGINT {delay} s after its first log line:\n{printed[-3000:]}"
        assert log.read_text().strip().endswith("ERROR vidflow: interrupted")
        assert sorted(p.name for p in out.iterdir()) == ["step.log"], f"{step} left output after a Ctrl-C"
    assert signalled >= len(delays) - 2, f"only {signalled} of {len(delays)} signals landed before the step ended"
