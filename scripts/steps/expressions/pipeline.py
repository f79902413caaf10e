"""Optional step: py-feat action units and emotions of every tracked face -> expressions.json.

The face boxes come from tracking.json, so py-feat's own face detector never runs (nor needs its
weights). Per face, as py-feat's ``Detectorv1`` does after detection: its landmark model places the 68
OpenFace points in the box crop, its AU model scores 20 action units from HOG features of the aligned
face plus those points, and its emotion model gives the probabilities of 7 emotions from a wider crop.

py-feat fetches its weights from the HuggingFace hub into a cache folder; here that folder is
``expressions.model_dir`` (pre-staged, see config), read with ``HF_HUB_OFFLINE=1``: nothing is ever
downloaded. The parts here are plain Python (the driver imports them); py-feat and torch are only
imported by :mod:`steps.expressions.model`, in the expressions env.
"""

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vidflow import interrupt
from vidflow.errors import UserError
from vidflow.io import sha256_file, write_json
from vidflow.job import settings_from
from vidflow.tracking_json import read_tracking

log = logging.getLogger("expressions")

MODEL_KEY = "expressions.model_dir"
DECIMALS = 4  # fixed rounding of AU values and emotion probabilities (byte-identical reruns)
# The py-feat models this step runs, as py-feat 2.1.5 names them, and the hub files each one loads:
# (repo, file names in py-feat's order of preference: it falls back to the second when the first is absent).
MODEL_FILES = {
    ("landmark_model", "mobilefacenet"): [("py-feat/mobilefacenet", ("mobilefacenet_model_best.pth.tar",))],
    ("au_model", "xgb"): [("py-feat/xgb_au", ("xgb_au_classifier_v2.skops", "xgb_au_classifier.skops"))],
    ("emotion_model", "resmasknet"): [("py-feat/resmasknet", ("config.json",)),
                                      ("py-feat/resmasknet", ("ResMaskNet_Z_resmasking_dropout1_rot30.pth",))],
}


@dataclass(frozen=True)
class ExpressionsSettings:
    """The ``expressions`` config section (keys and defaults: config/schema.yaml)."""

    model_dir: str  # HuggingFace cache folder holding the models' files (read offline)
    landmark_model: str
    au_model: str
    emotion_model: str
    batch_frames: int  # frames with faces per forward pass (memory vs. speed; no effect on results)

    @property
    def models(self):
        """``{"landmark_model": name, "au_model": ..., "emotion_model": ...}``: the py-feat models to run."""
        return {"landmark_model": self.landmark_model, "au_model": self.au_model, "emotion_model": self.emotion_model}


STAGE_HINT = ("pre-stage them on a machine with internet: `hf download REPO --cache-dir MODEL_DIR` for each repo "
              "(or copy py-feat's feat/resources folder after one online run)")


def required_files(models):
    """``[(repo, alternatives)]`` for ``models`` = ``{"landmark_model": name, "au_model": ..., ...}``."""
    files = []
    for kind, name in sorted(models.items()):
        if (kind, name) not in MODEL_FILES:
            choices = sorted(n for k, n in MODEL_FILES if k == kind)
            raise UserError(f"expressions.{kind}", f"{name!r} is not supported (choose from {choices})")
        files += MODEL_FILES[(kind, name)]
    return files


def cached_file(model_dir, repo, filename):
    """Where huggingface_hub, offline, finds ``repo``'s ``filename`` in the cache folder ``model_dir``, or None.

    The cache layout: ``models--<owner>--<name>/refs/main`` holds the commit that
    ``snapshots/<commit>/<filename>`` belongs to (usually a link into ``blobs/``).
    """
    repo_dir = Path(model_dir) / f"models--{repo.replace('/', '--')}"
    try:
        commit = (repo_dir / "refs" / "main").read_text().strip()
    except OSError:
        return None
    path = repo_dir / "snapshots" / commit / filename
    return path if commit and path.is_file() else None


def resolve_model_files(model_dir, models):
    """``{"repo/file": path}`` of every file ``models`` load; one UserError naming all that are missing."""
    if not model_dir:
        raise UserError(MODEL_KEY, "is empty: set it to a folder holding py-feat's model files; " + STAGE_HINT)
    if not Path(model_dir).is_dir():
        raise UserError(MODEL_KEY, f"{model_dir} is not a folder; " + STAGE_HINT)
    found, missing = {}, []
    for repo, alternatives in required_files(models):
        path = next((p for p in (cached_file(model_dir, repo, f) for f in alternatives) if p), None)
        if path is None:
            missing.append(f"{repo}/{' or '.join(alternatives)}")
        else:
            found[f"{repo}/{path.name}"] = path
    if missing:
        raise UserError(MODEL_KEY, f"{model_dir} lacks {', '.join(missing)} (HuggingFace cache layout "
                                   f"models--OWNER--NAME/refs/main + snapshots/); " + STAGE_HINT)
    return found


def corner_boxes(faces):
    """``[N, 4]`` float32 ``[x1, y1, x2, y2]`` of faces with ``bbox`` ``[x, y, w, h]`` (py-feat's box format)."""
    boxes = np.array([face["bbox"] for face in faces], dtype=np.float32).reshape(-1, 4)
    boxes[:, 2:] += boxes[:, :2]
    return boxes


def batches(tracking, frames, batch_frames):
    """Group decoded frames that hold faces: yield ``(images [B, H, W, 3], boxes [N, 4], frame_idx [N], keys)``.

    ``frames`` yields ``(index, rgb array)`` in order; ``keys`` are ``(frame, track_id)`` per box.
    Frames without faces are skipped (still decoded: the video is read once, in order).
    """
    images, boxes, owners, keys = [], [], [], []
    for index, image in frames:
        faces = tracking["frames"][index]["faces"] if index < len(tracking["frames"]) else []
        if not faces:
            continue
        boxes.append(corner_boxes(faces))
        owners += [len(images)] * len(faces)
        keys += [(index, int(face["track_id"])) for face in faces]
        images.append(image)
        if len(images) == batch_frames:
            yield np.stack(images), np.concatenate(boxes), np.array(owners, dtype=np.int64), keys
            images, boxes, owners, keys = [], [], [], []
    if images:
        yield np.stack(images), np.concatenate(boxes), np.array(owners, dtype=np.int64), keys


def rounded(values):
    """Values with the fixed rounding; None where py-feat gave no number (NaN: a face it could not align)."""
    values = np.rint(np.asarray(values, dtype=np.float64) * 10 ** DECIMALS) / 10 ** DECIMALS
    return [float(v) if np.isfinite(v) else None for v in values]


def expressions_document(tracking, results, au_names, emotion_names, model):
    """The expressions.json document: every frame of ``tracking``, each face as ``{track_id, action_units, emotions}``.

    ``results`` maps ``(frame, track_id)`` to ``(au values, emotion probabilities)`` in the order of the names.
    """
    frames = []
    for frame in tracking["frames"]:
        faces = []
        for face in sorted(frame["faces"], key=lambda f: int(f["track_id"])):
            aus, emotions = results[(frame["frame"], int(face["track_id"]))]
            faces.append({"track_id": int(face["track_id"]), "action_units": dict(zip(au_names, rounded(aus))),
                          "emotions": dict(zip(emotion_names, rounded(emotions)))})
        frames.append({"frame": frame["frame"], "faces": faces})
    return {"fps": tracking.get("fps", 25), "frame_count": len(frames), "width": tracking["width"],
            "height": tracking["height"], "action_unit_names": list(au_names), "emotion_names": list(emotion_names),
            "model": model, "frames": frames}


def offline_hub():
    """huggingface_hub reads these at import: never reach the hub. Must run before py-feat is imported.

    The thread counts (``import feat`` sets ``OMP_NUM_THREADS=1`` when it is unset) are the job's already:
    scripts/run_step.py sets them before any step is imported, as Snakemake does for a rule.
    """
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"


def analyse_expressions(video: str, tracking_path: str, output: str, settings: ExpressionsSettings, threads: int = 1,
                        gpus: int = 0) -> None:
    """Write ``output`` (expressions.json) for the faces of ``tracking_path`` in ``video``."""
    model_dir, models = settings.model_dir, settings.models
    tracking = read_tracking(tracking_path)
    files = resolve_model_files(model_dir, models)
    offline_hub()
    with interrupt.held():  # a Ctrl-C cannot cut py-feat's and torch's imports short
        from steps.expressions.model import ExpressionModel  # py-feat + torch: the expressions env only
        from steps.frames import read_frames

        started = time.monotonic()
        model = ExpressionModel(model_dir, models, threads=threads, gpus=gpus)
    log.info("loaded py-feat %s models %s on %s in %.1f s", model.version, models, model.device,
             time.monotonic() - started)
    started, results = time.monotonic(), {}
    frames = read_frames(video, tracking["width"], tracking["height"], threads=1)
    for images, boxes, owners, keys in batches(tracking, frames, settings.batch_frames):
        aus, emotions = model.predict(images, boxes, owners)
        results.update(zip(keys, zip(aus, emotions)))
    expected = sum(len(f["faces"]) for f in tracking["frames"])
    if len(results) != expected:
        raise UserError(video, f"has fewer frames than {tracking_path} ({len(results)} of {expected} faces seen)")
    seconds = time.monotonic() - started
    log.info("%d faces in %.1f s (%.2f faces/s)", expected, seconds, expected / seconds if seconds else 0.0)
    provenance = {"package": "py-feat", "version": model.version, "device": model.device, **models,
                  "files": {name: sha256_file(path) for name, path in sorted(files.items())}}
    write_json(output, expressions_document(tracking, results, model.au_names, model.emotion_names, provenance),
               compact=True)


def run(job):
    settings = settings_from(ExpressionsSettings, job.settings)
    analyse_expressions(job.input["video"], job.input["tracking"], job.output["json"], settings, job.threads,
                        job.gpus)
