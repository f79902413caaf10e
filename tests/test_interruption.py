"""Interrupted runs: SIGKILL or Ctrl-C (SIGINT) of the whole process group in each heavy rule, resumed to outputs
identical to an uninterrupted run (``odd_run``: tests/odd_inputs_run.py); Ctrl-C at any moment of a step's start
ends it as interrupted, in one line."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, SNAKEMAKE, VENV_DIR, run_snakemake, schema_defaults
from vidflow.job import job_command

pytest_plugins = ["odd_inputs_run"]


def test_ctrl_c_in_a_step_is_one_line_without_traceback(tmp_path):
    script = tmp_path / "step.py"
    script.write_text("from vidflow.logs import run_main, setup_logging\n\ndef main(argv):\n"
                      "    setup_logging(None)\n    raise KeyboardInterrupt\n\nrun_main(main)\n")
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=False,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "scripts")})
    assert proc.returncode == 130 and proc.stderr.strip().endswith("ERROR vidflow: interrupted")
    assert len(proc.stderr.strip().splitlines()) == 1


HEAVY = [("convert", "video.mp4"), ("scenes", "scenes.json"), ("diarization", "diarization.json"),
         ("tracking", "tracking.json"), ("recognise_speech", "words.json")]


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
    """The command of one heavy step on the good clip of ``work`` (the odd-inputs run), writing into ``out``: its
    step on the job its rule would write, settings from config/schema.yaml."""
    folder = work / "results" / "_loose" / "good"
    video, scenes = folder / "video.mp4", folder / "scenes.json"
    env, name, inputs, outputs, settings, threads = {
        "scenes": ("scenes", "scenes", {"video": video},
                   {"json": out / "scenes.json", "csv": out / "scenes.csv", "probs": out / "probs.json"},
                   schema_defaults("scenes"), 2),
        "diarization": ("diarization", "diarization", {"video": video},
                        {"json": out / "d.json", "rttm": out / "d.rttm"}, schema_defaults("diarization"), 1),
        "tracking": ("tracking_mediapipe", "tracking", {"video": video, "scenes": scenes},
                     {"tracking": out / "tracking.json"}, schema_defaults("tracking", chunk_frames=30), 2),
    }[step]
    return job_command(VENV_DIR / env / "bin" / "python", name, inputs, outputs, settings,
                       {"project": "_loose", "video": "good"}, threads=threads, log=out / "step.log")


@pytest.mark.slow
# scenes: OpenVINO starts in ~0.4 s once its export is cached (no torch import); done ~0.6 s after its first line
@pytest.mark.parametrize("step, delays", [("scenes", (0, 0.02, 0.05, 0.08, 0.1, 0.15, 0.2, 0.3, 0.4)),
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
