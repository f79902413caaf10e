"""Shared helpers: atomic writes, deterministic JSON, picklable errors, file locks."""

import errno
import fcntl
import json
import os
import pickle
import signal
import stat
import subprocess
import sys

import pytest

from conftest import ROOT
from vidflow.errors import UserError
from vidflow.io import atomic_path, exclusive_lock, read_json, remove_stale_temporaries, stale_temporaries, write_json
from vidflow.logs import interrupted
from vidflow.turns import overlapped_spans, own_overlap, solo_spans


def test_write_json_is_atomic_sorted_and_readable_by_others(tmp_path):
    path = tmp_path / "sub" / "x.json"
    write_json(path, {"b": 1, "a": [1.5, "é"]})
    assert path.read_text() == '{\n  "a": [\n    1.5,\n    "é"\n  ],\n  "b": 1\n}\n'
    assert read_json(path) == {"a": [1.5, "é"], "b": 1}
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
    write_json(path, {"z": 0}, compact=True)
    assert path.read_text() == '{"z":0}\n'


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        assert tmp.suffix == ".mp4" and tmp.parent == tmp_path
        tmp.write_text("partial")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_user_error_survives_pickling():
    err = pickle.loads(pickle.dumps(UserError("a.mp4", "no video stream")))
    assert isinstance(err, UserError) and str(err) == "a.mp4: no video stream" and err.reason == "no video stream"


def test_atomic_path_removes_what_a_killed_writer_of_the_same_output_left(tmp_path):
    target = tmp_path / "out.json"
    writer = ("import os, signal\nfrom vidflow.io import atomic_path\n"
              f"with atomic_path({str(target)!r}) as tmp:\n"
              "    tmp.write_text('half')\n    os.kill(os.getpid(), signal.SIGKILL)\n")
    left = []
    for _ in range(2):  # the second killed writer removes what the first left, then leaves its own
        proc = subprocess.run([sys.executable, "-c", writer], check=False,
                              env={**os.environ, "PYTHONPATH": str(ROOT / "scripts")})
        assert proc.returncode == -signal.SIGKILL
        left.append(stale_temporaries(target, ".json"))
    assert len(left[0]) == len(left[1]) == 1 and left[0] != left[1] and not target.exists()
    assert left[1][0].read_text() == "half" and not left[0][0].exists()
    left = left[1]
    (tmp_path / f"{left[0].name}.d").mkdir()  # not one of ours (the name goes on): kept
    stale_dir = tmp_path / ".out.json.abcd_123.json"  # a staging folder of the same output: removed
    (stale_dir / "sub").mkdir(parents=True)
    kept = [".out.json.lock", ".out.json.ABCD1234.json", ".out.json.abcd1234.csv", ".out.json.abcd12345.json",
            ".other.json.abcd1234.json", "out.json.abcd1234.json", ".out.jsonXabcd1234.json"]
    for name in kept:
        (tmp_path / name).write_text("keep")
    write_json(target, {"a": 1})
    assert read_json(target) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*kept, f"{left[0].name}.d", "out.json"])
    assert remove_stale_temporaries(tmp_path / "missing" / "x.json", ".json") == []


def test_exclusive_lock_excludes_other_processes_and_goes_on_where_the_file_system_has_none(tmp_path, monkeypatch,
                                                                                           caplog):
    lock = tmp_path / "archive" / ".lock"
    holder = subprocess.Popen([sys.executable, "-c", "import sys\nfrom vidflow.io import exclusive_lock\n"
                               "with exclusive_lock(sys.argv[1]) as locked:\n    print(locked, flush=True)\n"
                               "    sys.stdin.readline()\n", str(lock)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT / "scripts")})
    assert holder.stdout.readline() == b"True\n"
    with open(lock) as handle, pytest.raises(BlockingIOError):  # held by the other process
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    holder.communicate(b"\n")
    with exclusive_lock(lock) as locked, open(lock) as handle:
        assert locked is True
        with pytest.raises(BlockingIOError):
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    with open(lock) as handle:  # released on leaving the block
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def no_locks(*_):  # Lustre mounted without -o flock
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with exclusive_lock(lock) as locked:
        assert locked is False
    assert f"{lock}: the file system does not support locks (Function not implemented)" in caplog.text


CTRL_C_STEP = """import os, signal, sys, time
from vidflow import interrupt
from vidflow.io import write_json
from vidflow.logs import run_main, setup_logging

def ctrl_c():
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.5)  # the KeyboardInterrupt comes here (or never, where SIGINT is ignored)

def main(argv):
    setup_logging(None)
    case = argv[0]
    if case == "held":  # an import or a model load: it finishes, then the step stops
        with interrupt.held():
            ctrl_c()
            print("load finished", flush=True)
        print("after the load", flush=True)
    try:
        ctrl_c()
    except KeyboardInterrupt:  # what torch's import machinery did to it
        if case == "error":
            raise AttributeError("partially initialized module 'torch._dynamo' has no attribute 'config'")
    print("ran on", flush=True)
    write_json(argv[1], {"a": 1})
    print("wrote", flush=True)

run_main(main, sys.argv[1:])
"""


@pytest.mark.parametrize("case", ["held", "swallowed", "error", "ignored"])
def test_ctrl_c_stops_a_step_whatever_a_library_does_with_it(tmp_path, case):
    """A SIGINT during a ``held`` block waits for its end; one a library swallowed, or turned into another error,
    still ends the step as ``interrupted`` (130) and publishes no output; an inherited SIG_IGN is respected."""
    output = tmp_path / "out.json"
    proc = subprocess.run([sys.executable, "-c", CTRL_C_STEP, case, str(output)], capture_output=True, text=True,
                          check=False, env={**os.environ, "PYTHONPATH": str(ROOT / "scripts")},
                          preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if case == "ignored"
                          else None)
    if case == "ignored":  # a background job of a non-interactive shell: Ctrl-C is not for it
        assert (proc.returncode, proc.stdout, proc.stderr) == (0, "ran on\nwrote\n", "")
        assert output.exists()
        return
    printed = {"held": "load finished\n", "swallowed": "ran on\n", "error": ""}[case]
    assert (proc.returncode, proc.stdout) == (130, printed), proc.stderr
    assert proc.stderr.strip().endswith("ERROR vidflow: interrupted") and len(proc.stderr.splitlines()) == 1
    assert not output.exists() and list(tmp_path.iterdir()) == []


def test_an_error_caused_by_ctrl_c_counts_as_interrupted():
    def import_failed_by_ctrl_c():
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as err:
            raise ImportError("initialization failed") from err

    with pytest.raises(ImportError) as caught:
        import_failed_by_ctrl_c()
    assert interrupted(caught.value) and interrupted(KeyboardInterrupt())
    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise RuntimeError("while handling it") from None  # context kept, cause suppressed
    except RuntimeError as err:
        assert interrupted(err)
    assert not interrupted(ValueError("plain")) and not interrupted(None)


# --- the run's tables: every item with its status (vidflow.status, vidflow.summary) ---

def write_log(path, *lines, mtime=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"2026-01-02 03:04:05,678 {line}\n" for line in lines))
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def test_item_status_done_failed_or_unfinished_from_outputs_and_logs(tmp_path):
    from vidflow.status import item_status, last_error

    out = tmp_path / "out.json"
    ok = write_log(tmp_path / "logs/convert/p/v.log", "INFO convert: remux")
    assert last_error(ok) is None and last_error(tmp_path / "missing.log") is None
    assert item_status([out], {"convert": ok}) == ("unfinished", "no out.json (its job did not run, or stopped "
                                                                 "without an error line)")
    bad = write_log(tmp_path / "logs/detect_scenes/p/v.log", "INFO scenes: start",
                    "ERROR vidflow: video.mp4: no frame decoded", mtime=1000)
    assert item_status([out], {"convert": ok, "detect_scenes": bad}) == (
        "failed", "detect_scenes: video.mp4: no frame decoded")
    out.write_text("{}")
    os.utime(out, (2000, 2000))  # written after the error (e.g. the failed engine was swapped for another): done
    assert item_status([out], {"convert": ok, "detect_scenes": bad}) == ("done", "")
    os.utime(bad, (3000, 3000))  # an error after the outputs (an earlier step's rerun failed): failed
    assert item_status([out], {"detect_scenes": bad})[0] == "failed"
    long = write_log(tmp_path / "logs/convert/p/w.log", "ERROR vidflow: " + "x" * 1000)
    reason = item_status([out], {"convert": long})[1]
    assert reason == f"convert: {'x' * 300}... (see {long})"


def test_tables_list_every_video_link_and_skipped_candidate(tmp_path):
    from vidflow.summary import download_rows, project_rows, tsv_text, write_table

    results, logs = tmp_path / "results", tmp_path / "logs"
    info = {"output": {"duration": 1.0, "video": {"nb_frames": 25}}, "mode": "remux", "encoder": None}
    for video in ("a", "b"):
        (results / "p" / video).mkdir(parents=True)
        (results / "p" / video / "video.json").write_text(json.dumps(info))
    (results / "p" / "a" / "a_audio.json").write_text("{}")
    write_log(logs / "reduce/p/b.log", "ERROR vidflow: faces.json: no frames")
    skipped = [{"member": "x/notes.txt", "reason": "not a video (extension)"},
               {"member": "x/sound.mp4", "reason": "no video stream"}]
    manifest = {"project": "p", "source": {"kind": "loose"}, "skipped": skipped, "videos": [
        {"video": v, "original_name": f"{v}.mp4", "member": f"{v}.mp4", "sha256": v * 64} for v in ("b", "a", "c")]}
    rows = project_rows(manifest, results, logs, ["video.json", "{video}_audio.json"])
    assert [(r["video"] if "video" in r else r["member"], r["status"], r["reason"]) for r in rows] == [
        ("a", "done", ""), ("b", "failed", "reduce: faces.json: no frames"),
        ("c", "unfinished", "no video.json (its job did not run, or stopped without an error line)"),
        ("x/sound.mp4", "skipped", "no video stream")]
    assert rows[0]["frames"] == 25 and rows[1]["mode"] == "remux" and "frames" not in rows[2]
    assert tsv_text(rows).splitlines()[4] == "\tsound.mp4\tx/sound.mp4\tskipped\tno video stream\t\t\t\t\t"
    (tmp_path / "dl" / "id1").mkdir(parents=True)
    (tmp_path / "dl" / "id1" / "status.json").write_text(json.dumps({"url": "https://h/a.zip", "status": "downloaded",
                                                                      "file": "f", "sha256": "s", "size": 3}))
    write_log(logs / "download/id2.log", "ERROR vidflow: https://h/gone.zip: download failed (HTTP 404)")
    rows = download_rows({"id1": "https://h/a.zip", "id2": "https://h/gone.zip", "id3": "https://h/later.zip"},
                         tmp_path / "dl", logs, ["https://fromsmash.com/x"])
    assert [(r["url"], r["status"], r["reason"]) for r in rows] == [
        ("https://fromsmash.com/x", "skipped", "manual download required"),
        ("https://h/a.zip", "downloaded", ""), ("https://h/gone.zip", "failed", "download failed (HTTP 404)"),
        ("https://h/later.zip", "unfinished", "no status.json (its job did not run, or stopped without an error line)")]
    # a table written outside its rule is dated just before its rule's oldest input; an unchanged one is not touched
    table, anchor = tmp_path / "t.tsv", tmp_path / "manifest.json"
    anchor.write_text("{}")
    os.utime(anchor, (5000, 5000))
    assert write_table(table, "a\n", older_than=[anchor, tmp_path / "missing"]) and table.stat().st_mtime == 4999
    assert not write_table(table, "a\n", older_than=[anchor]) and table.stat().st_mtime == 4999
    assert write_table(table, "b\n") and table.stat().st_mtime > 5000


def test_project_summary_entry_writes_the_projects_table_from_its_job(tmp_path):
    """project_summary's entry script on a job as its rule writes it (scripts/vidflow/job.py): the same table."""
    from build_env import build
    from conftest import VENV_DIR
    from vidflow.job import job_command

    results, logs = tmp_path / "results", tmp_path / "logs"
    (results / "p" / "a").mkdir(parents=True)
    (results / "p" / "a" / "video.json").write_text(json.dumps(
        {"output": {"duration": 1.5, "video": {"nb_frames": 37}}, "mode": "encode", "encoder": "libx264"}))
    write_log(logs / "convert/p/b.log", "ERROR convert: b.mp4: moov atom not found")
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"project": "p", "source": {"kind": "loose"}, "skipped": [], "videos": [
        {"video": v, "original_name": f"{v} 1.mp4", "member": f"{v} 1.mp4", "sha256": v * 64} for v in "ab"]}))
    python = build(ROOT / "envs" / "summary.yaml", VENV_DIR / "summary")
    table = tmp_path / "videos.tsv"
    command = job_command(python, "summary", {"manifest": manifest}, {"table": table},
                          {"expected": ["video.json"], "results": str(results), "logs": str(logs)},
                          {"project": "p"})
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert table.read_text().splitlines()[1:] == [
        f"a\ta 1.mp4\ta 1.mp4\tdone\t\t{'a' * 64}\t1.500\t37\tencode\tlibx264",
        f"b\tb 1.mp4\tb 1.mp4\tfailed\tconvert: b.mp4: moov atom not found\t{'b' * 64}\t\t\t\t"]
    assert f"{table}: 1 done, 1 failed" in proc.stderr  # the job's log (stderr without --log)


# ---------------------------------------------------------------- overlapped speech in diarization segments

OVERLAPPING = [{"start": 0.0, "end": 3.0, "speaker": "SPEAKER_00"}, {"start": 2.0, "end": 5.0, "speaker": "SPEAKER_01"},
               {"start": 4.5, "end": 6.0, "speaker": "SPEAKER_02"}, {"start": 6.0, "end": 7.0, "speaker": "SPEAKER_00"}]


def test_overlapped_spans_are_where_two_speakers_talk_and_touching_turns_are_not():
    assert overlapped_spans(OVERLAPPING) == [(2.0, 3.0), (4.5, 5.0)]
    assert overlapped_spans([s for s in OVERLAPPING if s["speaker"] != "SPEAKER_01"]) == []
    # three at once is one overlapped stretch
    three = [{"start": 0.0, "end": 4.0, "speaker": n} for n in ("A", "B")]
    three.append({"start": 1.0, "end": 6.0, "speaker": "C"})
    assert overlapped_spans(three) == [(0.0, 4.0)]


def test_solo_spans_cut_the_overlaps_out_of_every_speakers_turns():
    assert solo_spans(OVERLAPPING) == {"SPEAKER_00": [(0.0, 2.0), (6.0, 7.0)], "SPEAKER_01": [(3.0, 4.5)],
                                       "SPEAKER_02": [(5.0, 6.0)]}
    plain = [s for s in OVERLAPPING if s["speaker"] != "SPEAKER_01"]
    assert solo_spans(plain) == {"SPEAKER_00": [(0.0, 3.0), (6.0, 7.0)], "SPEAKER_02": [(4.5, 6.0)]}
    inside = [{"start": 0.0, "end": 8.0, "speaker": "A"}, {"start": 2.0, "end": 5.0, "speaker": "B"}]
    assert solo_spans(inside) == {"A": [(0.0, 2.0), (5.0, 8.0)], "B": []}


def test_own_overlap_finds_a_speaker_overlapping_itself_whatever_the_order():
    assert own_overlap(OVERLAPPING) is None  # different speakers overlap, SPEAKER_00's turns only touch
    inner = {"start": 1.0, "end": 1.5, "speaker": "SPEAKER_00"}
    outer = {"start": 0.5, "end": 6.5, "speaker": "SPEAKER_00"}
    assert own_overlap([inner, *OVERLAPPING]) == ("SPEAKER_00", OVERLAPPING[0], inner)
    assert own_overlap([OVERLAPPING[3], outer]) == ("SPEAKER_00", outer, OVERLAPPING[3])


def test_packaged_model_files_are_found_without_import_and_checked(tmp_path):
    from vidflow.io import sha256_file
    from vidflow.packaged import checked_file, package_folder

    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "m.bin").write_bytes(b"weights")
    spec = type("Spec", (), {"submodule_search_locations": [str(tmp_path / "pkg")]})
    assert package_folder("pkg", "envs/x.yaml", lambda name: spec) == tmp_path / "pkg"
    with pytest.raises(UserError, match=r"^nope: model package not installed in this env \(envs/x\.yaml pins it\)$"):
        package_folder("nope", "envs/x.yaml", lambda name: None)
    good = sha256_file(tmp_path / "pkg" / "m.bin")
    assert checked_file(tmp_path / "pkg" / "m.bin", good) == tmp_path / "pkg" / "m.bin"
    with pytest.raises(UserError, match=r"m\.bin: corrupt model file: SHA-256 .* is not the pinned 000000000000"):
        checked_file(tmp_path / "pkg" / "m.bin", "0" * 64)
    with pytest.raises(UserError, match=r"gone\.bin: model file missing from its package"):
        checked_file(tmp_path / "pkg" / "gone.bin")
