"""Step 3: shot boundary detection with TransNetV2.

The video is decoded once, straight to 48x27 RGB24 by FFmpeg (streamed through a pipe,
read in chunks), and cut into TransNetV2's windows as upstream does: 100 frames per
window, 25 copies of the first frame before the video and copies of the last frame after
it, a step of 50, and only the middle 50 predictions of each window kept. Frames above the
threshold form runs; each run is ONE transition, and the scene boundary sits after its
most probable frame, so scenes tile the video without gaps.

Everything here needs numpy only (tests import it in the driver venv); the runtime is chosen in
:mod:`steps.scenes.runtime` (OpenVINO without torch on CPU), imported lazily.
"""

import csv
import ctypes
import functools
import io
import logging
import sys
import time
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from steps.frames import read_small_frames
from vidflow import interrupt
from vidflow.devices import choose_device
from vidflow.errors import UserError
from vidflow.io import write_json, write_text
from vidflow.job import settings_from
from vidflow.media import FPS, ffprobe, frame_to_time, summarize

log = logging.getLogger("scenes")

HEIGHT, WIDTH = 27, 48
WINDOW, CONTEXT, STEP = 100, 25, 50  # window length, padding/context each side, frames kept per window
CHUNK_FRAMES = 250
CSV_HEADER = ["No", "Timecode In", "Timecode Out", "Frame In", "Frame Out"]
PROGRESS_SECONDS = 10.0


@dataclass(frozen=True)
class ScenesSettings:
    """The ``scenes`` config section (keys and defaults: config/schema.yaml)."""

    threshold: float  # a run of frames above this transition probability is one transition
    min_scene_frames: int  # shorter scenes join the next one
    batch_size: int  # windows per forward pass; 0: the device's default
    runtime: str  # auto (OpenVINO on CPU, PyTorch on CUDA), openvino or torch (steps.scenes.runtime)
    precision: str  # OpenVINO's: auto (the CPU's best, bf16 where it has BF16 instructions) or f32


# --------------------------------------------------------------------------- decoding


def decode_small_frames(path, threads=1, chunk_frames=CHUNK_FRAMES):
    """Yield uint8 arrays ``[k, 27, 48, 3]`` (k <= chunk_frames) of every frame of ``path``.

    Only 48x27 frames ever reach Python. UserError (naming the file) if FFmpeg fails or
    the video has no decodable frame.
    """
    yield from read_small_frames(path, WIDTH, HEIGHT, chunk_frames, threads)


# --------------------------------------------------------------------------- windowing


def padding(frame_count):
    """(frames added before, frames added after) so that the windows cover every frame exactly."""
    rest = frame_count % STEP
    return CONTEXT, CONTEXT + STEP - (rest or STEP)


def window_count(frame_count):
    return -(-frame_count // STEP)


def iter_windows(chunks):
    """Turn a stream of frame chunks ``[k, 27, 48, 3]`` into TransNetV2 windows ``[100, 27, 48, 3]``.

    Same windows as upstream ``predict_frames`` (25 copies of the first frame, the video,
    copies of the last frame up to a multiple of 50 plus 25; windows every 50 frames), but
    streaming: at most one window plus one chunk is held in memory.
    """
    buffer, total = None, 0
    for chunk in chunks:
        if len(chunk) == 0:
            continue
        if buffer is None:
            buffer = np.repeat(chunk[:1], CONTEXT, axis=0)
        buffer = np.concatenate([buffer, chunk])
        total += len(chunk)
        while len(buffer) >= WINDOW + STEP:  # keep one step in hand: the stream may end right after it
            yield buffer[:WINDOW]
            buffer = buffer[STEP:]
    if buffer is None:
        return
    buffer = np.concatenate([buffer, np.repeat(buffer[-1:], padding(total)[1], axis=0)])
    while len(buffer) >= WINDOW:
        yield buffer[:WINDOW]
        buffer = buffer[STEP:]


def iter_batches(windows, batch_size):
    """Stack consecutive windows into ``[b, 100, 27, 48, 3]`` batches (b <= batch_size)."""
    batch = []
    for window in windows:
        batch.append(window)
        if len(batch) == batch_size:
            yield np.stack(batch)
            batch = []
    if batch:
        yield np.stack(batch)


def kept_predictions(window_predictions):
    """The middle 50 predictions of each window (``[b, 100]`` -> ``[b * 50]``)."""
    return np.asarray(window_predictions)[:, CONTEXT:CONTEXT + STEP].reshape(-1)


# --------------------------------------------------------------------------- predictions -> scenes


def transitions(probabilities, threshold=0.5):
    """Runs of consecutive frames with probability > threshold, one transition each.

    Returns ``[{"start_frame", "end_frame", "peak_frame", "probability"}]`` (0-based,
    inclusive; the peak is the most probable frame of the run, the first one on ties).
    """
    probs = np.asarray(probabilities, dtype=np.float64)
    above = np.concatenate([[False], probs > threshold, [False]])
    edges = np.flatnonzero(above[1:] != above[:-1])
    runs = []
    for start, stop in zip(edges[::2], edges[1::2]):
        peak = int(start + np.argmax(probs[start:stop]))
        runs.append({"start_frame": int(start), "end_frame": int(stop - 1), "peak_frame": peak,
                     "probability": round(float(probs[peak]), 3)})
    return runs


def scene_starts(runs, frame_count, min_scene_frames=1):
    """First frames of the scenes after the first: one per transition, right after its peak.

    A transition peaking on the last frame, or spanning the whole video, starts no scene
    (upstream likewise returns one scene when every frame is a transition). With ``min_scene_frames`` > 1,
    a boundary that would end a shorter scene is dropped (the short scene joins the next
    one), and a too-short last scene joins the previous one.
    """
    starts, previous = [], 0
    for run in runs:
        start = run["peak_frame"] + 1
        whole = run["start_frame"] == 0 and run["end_frame"] == frame_count - 1
        if whole or start >= frame_count or start - previous < min_scene_frames:
            continue
        starts.append(start)
        previous = start
    if starts and frame_count - starts[-1] < min_scene_frames:
        starts.pop()
    return starts


def scenes_from_predictions(probabilities, threshold=0.5, min_scene_frames=1):
    """``(scenes, transitions)``: scenes as (start, end) inclusive 0-based frames tiling the video."""
    frame_count = len(probabilities)
    runs = transitions(probabilities, threshold)
    bounds = [0, *scene_starts(runs, frame_count, min_scene_frames), frame_count]
    scenes = [(a, b - 1) for a, b in zip(bounds, bounds[1:]) if b > a]
    return scenes, runs


# --------------------------------------------------------------------------- formats


def timecode(frame, fps=FPS):
    """``HH:MM:SS.mmm`` of the start of 0-based ``frame`` (exact integer milliseconds)."""
    ms = round(Fraction(frame) * 1000 / Fraction(fps))
    seconds, ms = divmod(ms, 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{ms:03d}"


def scenes_csv(scenes, fps=FPS):
    """The seed's ``scenes.csv``: 1-based inclusive frames, timecodes of ``(frame - 1) / fps``, CRLF lines."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for number, (start, end) in enumerate(scenes, 1):
        writer.writerow([number, timecode(start, fps), timecode(end, fps), start + 1, end + 1])
    return buffer.getvalue()


def scenes_document(scenes, runs, frame_count, model, fps=FPS):
    """``scenes.json``: 0-based inclusive frames, times ``frame / fps`` in seconds (ms precision)."""
    return {
        "fps": fps,
        "frame_count": frame_count,
        "scenes": [{"start_frame": a, "end_frame": b, "start_time": frame_to_time(a, fps),
                    "end_time": frame_to_time(b, fps)} for a, b in scenes],
        "transitions": runs,
        "model": model,
    }


def probabilities_document(probabilities, threshold, fps=FPS):
    """Per-frame transition probabilities (3 decimals) for plots."""
    return {"fps": fps, "frame_count": len(probabilities), "threshold": threshold,
            "probabilities": [round(float(p), 3) for p in probabilities]}


# --------------------------------------------------------------------------- the step


def release_free_memory():
    """Give the free pages of the C heap back to the system (glibc's ``malloc_trim``); False where there is none.

    The model's per-window tensors (1-33 MB) come from glibc's heap once its dynamic mmap threshold has grown,
    and the heap fragments: without this, peak RSS grew with every window (660 MiB after 5 windows, 740 MiB
    after 100, 1271 MiB for a 600 s video). Called after each batch it keeps the peak flat (~640 MiB at 60 s
    and at 600 s) and was no slower in an A/B run; a fixed mmap threshold (mallopt) kept it flat too, but made
    inference ~1.5x slower (every large tensor then faults in fresh pages).
    """
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


@functools.cache
def _malloc_trim():
    """glibc's ``malloc_trim``, or None."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


class Progress:
    """Logs frames done and speed every ~10 s."""

    def __init__(self, expected=None, every=PROGRESS_SECONDS):
        self.start = self.last = time.monotonic()
        self.expected, self.every = expected, every

    def update(self, done):
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            of = f" / {self.expected}" if self.expected else ""
            log.info("progress: %d%s frames (%.1f fps)", done, of, done / max(now - self.start, 1e-9))


def run_model(model, batches):
    """The model's ``[b, 100]`` outputs for ``batches``, in order. A model with a ``map`` method (OpenVINO's) keeps
    windows in flight while the next ones are decoded; any other callable runs one batch at a time."""
    return model.map(batches) if hasattr(model, "map") else map(model, batches)


def predict_video(path, model, threads=1, batch_size=1, expected_frames=None, timings=None):
    """Per-frame transition probabilities of ``path`` (float32 array, one per frame).

    ``model`` is a callable ``uint8 [b, 100, 27, 48, 3] -> float [b, 100]`` (see :func:`run_model`). ``timings``
    (a dict) receives seconds spent waiting for decoded frames and waiting for the model.
    """
    timings = {"decode": 0.0, "inference": 0.0} if timings is None else timings
    timings.setdefault("decode", 0.0)
    timings.setdefault("inference", 0.0)
    frames_seen = [0]

    def timed_chunks():
        chunks = decode_small_frames(path, threads)
        while True:
            t0 = time.perf_counter()
            chunk = next(chunks, None)
            timings["decode"] += time.perf_counter() - t0
            if chunk is None:
                return
            frames_seen[0] += len(chunk)
            yield chunk

    progress = Progress(expected_frames)
    outputs, predicted = [], 0
    results = run_model(model, iter_batches(iter_windows(timed_chunks()), batch_size))
    while True:
        t0, decoding = time.perf_counter(), timings["decode"]
        output = next(results, None)  # may decode the next frames while the model runs
        if output is None:
            break
        outputs.append(kept_predictions(output))
        release_free_memory()  # else the heap fragments and peak memory grows with the video's length
        timings["inference"] += time.perf_counter() - t0 - (timings["decode"] - decoding)
        predicted += len(outputs[-1])
        progress.update(min(predicted, frames_seen[0]))
    return np.concatenate(outputs)[:frames_seen[0]]


def detect_scenes(video: str, scenes_json: str, scenes_csv_path: str, probs_path: str, settings: ScenesSettings,
                  threads: int = 1, gpus: int = 0) -> dict:
    """Detect the shots of ``video`` and write scenes.json, the seed's scenes.csv and the probabilities.

    ``settings.batch_size`` 0 picks the device's default; ``runtime`` and ``precision`` as in
    :func:`steps.scenes.runtime.load_model`. Returns the scenes.json document.
    """
    threshold, min_scene_frames = settings.threshold, settings.min_scene_frames
    source = summarize(ffprobe(video))
    if source["video"] is None:
        raise UserError(video, "no video stream")
    with interrupt.held():  # a Ctrl-C cannot cut the runtimes' imports short; it stops the step right after them
        import steps.scenes.runtime as runtime  # noqa: PLC0415 - scenes env only (torch only where it runs or exports)

        start = time.perf_counter()
        device, why = choose_device(gpus, "scenes.gpu", runtime.cuda_probe)
        log.info("device: %s (%s)", device, why)
        model, info = runtime.load_model(device, runtime=settings.runtime, precision=settings.precision,
                                         threads=threads)
        log.info("model ready in %.2f s (torch %s)", time.perf_counter() - start,
                 "imported" if "torch" in sys.modules else "not imported")
    if info["device"] != device:
        log.info("device: %s (OpenVINO runs on the CPU)", info["device"])
    batch_size = settings.batch_size or runtime.default_batch_size(info["device"])
    log.info("model %s %s (weights sha256 %s) on %s %s, %s precision, threshold %s, min scene %d frames, "
             "%d threads, %d window(s) per batch", info["name"], info["version"], info["weights_sha256"],
             info["runtime"], info["runtime_version"], info["precision"], threshold, min_scene_frames, threads,
             batch_size)
    timings = {"decode": 0.0, "inference": 0.0}
    probs = predict_video(video, model, threads=threads, batch_size=batch_size,
                          expected_frames=source["video"]["nb_frames"], timings=timings)
    t0 = time.perf_counter()
    scenes, runs = scenes_from_predictions(probs, threshold, min_scene_frames)
    model_block = {**info, "threshold": threshold, "min_scene_frames": min_scene_frames}
    document = scenes_document(scenes, runs, len(probs), model_block)
    write_json(probs_path, probabilities_document(probs, threshold), compact=True)
    write_text(scenes_csv_path, scenes_csv(scenes))
    write_json(scenes_json, document)
    timings["postprocess"] = time.perf_counter() - t0
    wall = time.perf_counter() - start
    log.info("done: %d frames, %d scene(s), %d transition(s) in %.1f s (%.1f fps; decode wait %.1f s, "
             "model wait %.1f s, post-processing %.2f s)", len(probs), len(scenes), len(runs), wall,
             len(probs) / max(wall, 1e-9), timings["decode"], timings["inference"], timings["postprocess"])
    return document


def run(job):
    settings = settings_from(ScenesSettings, job.settings)
    detect_scenes(job.input["video"], job.output["json"], job.output["csv"], job.output["probs"], settings,
                  job.threads, job.gpus)
