"""Step 5: every face in every frame with a track id that is stable within a scene.

Plan: the video is cut into chunks at scene cuts and every ``chunk_frames`` frames inside a
scene (fixed positions, so the result does not depend on the thread count). Each chunk starts with
a detection and nothing from the chunk before it, and writes its faces to a temporary JSON-lines
file. Consecutive chunks are grouped into runs, each decoded by one FFmpeg rawvideo pipe (a seek
per chunk cost more CPU than the decoding itself); runs go to up to ``threads`` worker processes
(plus ``spare`` ones at nice 19), ``RUNS_PER_WORKER`` each, so the workers end close together.
Track ids are then assigned over the whole video in one pass (:mod:`steps.tracking.tracks`), and
tracking.json is streamed out, so memory stays flat with video length. Model files are checked
before any frame is read.
"""

import contextlib
import itertools
import json
import logging
import multiprocessing
import os
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass, field
from multiprocessing import resource_tracker
from pathlib import Path

from steps.frames import read_frames
from steps.tracking.engines import engine_family, load_engine
from steps.tracking.output import face_line, read_scenes, round_box, write_tracking
from steps.tracking.tracks import assign_track_ids, iou
from vidflow import interrupt
from vidflow.errors import UserError
from vidflow.io import dumps_json, remove_stale_temporaries
from vidflow.job import settings_from
from vidflow.media import ffprobe, summarize

log = logging.getLogger("tracking")

TRACKER_KEYS = ("max_gap", "min_iou", "max_center_dist", "min_track_frames")
# Runs per worker process: more balance the workers' ends, each costs one FFmpeg start and seek (~0.1 CPU s).
RUNS_PER_WORKER = 8


@dataclass(frozen=True)
class TrackingSettings:
    """The ``tracking`` config section (keys and defaults: config/schema.yaml); ``threads`` comes as the job's."""

    engine: str  # a key of steps.tracking.engines.ENGINES
    detect_every: int
    min_score: float
    max_faces: int
    max_gap: int  # TRACKER_KEYS: how faces are joined into tracks (steps.tracking.tracks)
    min_iou: float
    max_center_dist: float
    min_track_frames: int
    chunk_frames: int
    # each engine's own section (tracking.<engine>), read by that engine; refine_landmarks by both MediaPipe ones.
    # A job carries the chosen engine's section only (rules/tracking.smk): the others are empty.
    mediapipe: dict = field(default_factory=dict)
    mediapipe_tasks: dict = field(default_factory=dict)
    yunet: dict = field(default_factory=dict)
    openseeface: dict = field(default_factory=dict)
    eos: dict = field(default_factory=dict)


def plan_chunks(cuts, frame_count, chunk_frames, detect_every):
    """``[(start, count)]`` covering all frames: split at scene cuts and every ~chunk_frames inside a scene.

    Chunk lengths inside a scene are multiples of ``detect_every``, so every chunk starts on a
    detection frame and needs nothing from the chunk before it.
    """
    step = max(chunk_frames // detect_every, 1) * detect_every
    chunks = []
    bounds = list(cuts) + [frame_count]
    for start, end in zip(bounds, bounds[1:]):
        chunks += [(s, min(step, end - s)) for s in range(start, end, step)]
    return chunks


def plan_runs(chunks, workers):
    """``chunks`` grouped into runs of consecutive chunks, ``[[(start, count), ...], ...]``, each read by one FFmpeg.

    One run with one worker; else about ``workers * RUNS_PER_WORKER`` runs of similar frame counts. Which run a
    chunk falls in changes no face (every chunk starts afresh), only how often FFmpeg starts and seeks.
    """
    if workers <= 1:
        return [chunks] if chunks else []
    target = sum(count for _, count in chunks) / (workers * RUNS_PER_WORKER)
    runs, run, frames = [], [], 0
    for chunk in chunks:
        run.append(chunk)
        frames += chunk[1]
        if frames >= target:
            runs.append(run)
            run, frames = [], 0
    return runs + [run] if run else runs


_ENGINE = None


def _engine(settings, device):
    global _ENGINE
    if _ENGINE is None:
        with interrupt.held():  # a Ctrl-C cannot cut the engine's imports and model loading short
            _ENGINE = load_engine(settings.engine)(settings, device)
    return _ENGINE


def process_run(task):
    """Faces of a run's chunks, decoded in one pass -> a JSON-lines file per chunk (one line per frame).

    Returns ``[(path, frames, seconds)]`` per chunk."""
    video, width, height, chunks, settings, device, out_paths = task
    engine = _engine(settings, device)
    total = sum(count for _, count in chunks)
    with contextlib.closing(read_frames(video, width, height, chunks[0][0], total)) as frames:
        return [_process_chunk(engine, frames, start, count, settings, video, out_path)
                for (start, count), out_path in zip(chunks, out_paths)]


def _process_chunk(engine, frames, start, count, settings, video, out_path):
    """The faces of the next ``count`` items of ``frames`` (frames ``start ..``), starting afresh with a detection."""
    follow = engine.can_follow
    every = settings.detect_every if follow else 1
    previous, done = [], 0
    started = time.monotonic()
    with open(out_path, "w", encoding="utf-8") as out:  # per frame: [frame, boxes], then one line per face
        for index, frame in itertools.islice(frames, count):
            if (index - start) % every == 0 or not previous:  # nothing to follow: look for faces now
                hints = engine.detect(frame)
                if follow:  # faces the detector missed this time are still followed by their landmarks
                    hints += [{"bbox": f["bbox"]} for f in previous
                              if all(iou(f["bbox"], d["bbox"]) < 0.3 for d in hints)]
            else:
                hints = [{"bbox": f["bbox"]} for f in previous]
            faces = engine.describe(frame, hints) if hints else []
            previous = faces
            out.write(dumps_json([index, [round_box(f["bbox"]) for f in faces]], compact=True))
            out.writelines(face_line(f) for f in faces)
            done += 1
    if done != count:
        raise UserError(video, f"decoded {done} frames from frame {start}, expected {count} (truncated video?)")
    return out_path, done, time.monotonic() - started


def _process_run_in_worker(task):
    """``process_run`` for a pool worker: a UserError comes back as data (it does not pickle)."""
    try:
        return process_run(task)
    except UserError as err:
        return UserError, err.subject, err.reason


def _close_engine():
    global _ENGINE
    if _ENGINE is not None:
        _ENGINE.close()
        _ENGINE = None


def _run_chunks(tasks, workers, full_priority):
    """Yield the chunks' results in order, the runs ``tasks`` done by ``workers`` worker processes, those after the
    first ``full_priority`` at nice 19 (spare ones: they take only the CPU nothing else wants)."""
    if workers <= 1:
        try:
            for task in tasks:
                yield from process_run(task)
        finally:
            _close_engine()
        return
    with contextlib.ExitStack() as stack:
        with interrupt.held():  # a Ctrl-C in the middle of a worker's start: that worker prints a traceback
            pool = stack.enter_context(_pool(workers, full_priority))
        for result in pool.imap(_process_run_in_worker, tasks):
            if result[0] is UserError:
                raise UserError(result[1], result[2])
            yield from result


def _pool(processes, full_priority):
    """A pool of fresh interpreters (spawn: no forked model state) that leave Ctrl-C to this process, which
    stops them (``Pool.terminate``): a worker hit by Ctrl-C would print a traceback of its own, each of them.
    Workers after the first ``full_priority`` run at nice 19 (spare threads, vidflow.job).

    The workers start with SIGINT blocked (a new interpreter inherits the mask) and ignore it from their
    initializer on. Here it is blocked only in this thread, so a Ctrl-C meanwhile still reaches this process.
    """
    context = multiprocessing.get_context("spawn")
    started = context.Value("i", 0)
    resource_tracker.ensure_running()  # starting it unblocks SIGINT again: before blocking
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        return context.Pool(processes, initializer=_start_worker, initargs=(started, full_priority))
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _start_worker(started, full_priority):
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # its decoders get the usual mask
    with started.get_lock():
        number = started.value
        started.value += 1
    if number >= full_priority:  # a spare worker (and its decoders) takes only idle CPU
        os.nice(19)


def track_faces(video: str, scenes_path: str, output: str, settings: TrackingSettings, threads: int = 1,
                gpus: int = 0, spare: int = 0) -> dict:
    """Write ``output`` (tracking.json) for ``video`` (25 fps, from step 2) cut by ``scenes_path``, with ``threads``
    worker processes and ``spare`` more at nice 19 (vidflow.job's spare threads).

    ``gpus`` is what the rule was given: an engine with a GPU path uses it when it can, else the CPU (the
    reason is logged); the device used goes into the output's ``device``.
    """
    engine_family(settings.engine)
    with interrupt.held():
        engine_cls = load_engine(settings.engine)
        model = engine_cls.check_models(settings)  # before any frame is read
        device, why = engine_cls.choose_device(settings, gpus)
    log.info("device: %s (%s)", device, why)
    summary = summarize(ffprobe(video))
    if summary["video"] is None:
        raise UserError(video, "no video stream")
    width, height = summary["video"]["width"], summary["video"]["height"]
    frame_count = summary["video"]["nb_frames"]
    if frame_count is None:
        raise UserError(video, "frame count unknown (not an MP4 from the convert step?)")
    cuts = read_scenes(scenes_path, frame_count)
    chunks = plan_chunks(cuts, frame_count, settings.chunk_frames, settings.detect_every)
    runs = plan_runs(chunks, threads + spare)
    workers = min(threads + spare, len(runs))
    log.info("engine %s on %s (%dx%d, %d frames, %d scenes): %d chunks in %d runs, %d worker process(es) (%d at "
             "nice 19), device %s", settings.engine, video, width, height, frame_count, len(cuts), len(chunks),
             len(runs), workers, max(0, workers - threads), device)
    remove_stale_temporaries(Path(output).parent / "tracking")  # a killed run's .tracking.XXXXXXXX work folder
    workdir = Path(tempfile.mkdtemp(prefix=".tracking.", dir=Path(output).parent))
    try:
        tasks = [(str(video), width, height, run, settings, device, [str(workdir / f"{start:09d}.jsonl")
                                                                     for start, _ in run])
                 for run in runs]
        started, done, parts = time.monotonic(), 0, []
        for path, frames, _seconds in _run_chunks(tasks, workers, min(threads, workers)):
            parts.append(path)
            done += frames
            elapsed = time.monotonic() - started
            log.info("progress: %d / %d frames (%.1f fps)", done, frame_count, done / max(elapsed, 1e-6))
        ids = assign_track_ids(_boxes(parts), cuts, frame_count=frame_count,
                               **{k: getattr(settings, k) for k in TRACKER_KEYS})
        header = {"fps": 25, "width": width, "height": height, "frame_count": frame_count,
                  "engine": settings.engine, "device": device, "model": model,
                  "scene_count": len(cuts), "track_count": max((t for i in ids for t in i if t), default=0),
                  "settings": {k: getattr(settings, k)
                               for k in ("detect_every", "min_score", "max_faces", *TRACKER_KEYS)},
                  **engine_cls.describe_output(settings)}
        write_tracking(output, header, _frames_with_ids(parts, ids))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.monotonic() - started
    log.info("done: %d frames, %d tracks in %.1f s (%.1f fps)", frame_count, header["track_count"], elapsed,
             frame_count / max(elapsed, 1e-6))
    return header


def _frame_records(parts):
    """``(frame, boxes, face lines)`` per frame from the chunk files, in frame order (faces not parsed)."""
    for path in parts:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                frame, boxes = json.loads(line)
                yield frame, boxes, [next(handle) for _ in boxes]


def _boxes(parts):
    for frame, boxes, _faces in _frame_records(parts):
        yield frame, boxes


def _frames_with_ids(parts, ids):
    """Each frame's compact JSON with ``track_id`` in every kept face, built without re-parsing the faces.

    A face line is the face's compact JSON with sorted keys, all of which sort before ``track_id``
    (checked), so appending ``"track_id"`` keeps the bytes equal to dumping the face with its id.
    """
    for (frame, _boxes, faces), frame_ids in zip(_frame_records(parts), ids):
        kept = []
        for line, track_id in zip(faces, frame_ids):
            if track_id is not None:
                face = line.rstrip("\n")
                assert face.endswith("}") and face != "{}"
                kept.append(f'{face[:-1]},"track_id":{track_id}}}')
        yield f'{{"faces":[{",".join(kept)}],"frame":{frame}}}'


def run(job):
    settings = settings_from(TrackingSettings, job.settings)
    track_faces(job.input["video"], job.input["scenes"], job.output["tracking"], settings, threads=job.threads,
                gpus=job.gpus, spare=job.spare_threads)
