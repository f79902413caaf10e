"""Face tracking engines: one interface, one module per engine, one env per engine family.

Adding an engine = one module here (a subclass of :class:`Engine`), one line in :data:`ENGINES`, its
section ``tracking.<engine>`` in config/schema.yaml (a field of ``TrackingSettings``) and, for a new
family, one env file ``envs/tracking_<family>.yaml``. The ``tracking`` rule (rules/tracking.smk) reads
:data:`ENGINES` for the env and the memory of the configured engine.

This module is standard library only: the Snakefile and the driver-venv tests import it. Engine
modules import their heavy stack at import time and are imported only inside their own env.
"""

import importlib
from dataclasses import dataclass
from pathlib import Path

from vidflow.errors import UserError
from vidflow.io import sha256_file


@dataclass(frozen=True)
class EngineSpec:
    module: str  # module under steps.tracking.engines holding ``ENGINE`` (the Engine subclass)
    family: str  # env family: envs/tracking_<family>.yaml
    description: str
    base_mb: int  # memory of a tracking job: base_mb + thread_mb per worker process (resources.mem_mb)
    thread_mb: int
    gpu: str = ""  # how the engine uses a GPU when tracking.gpu > 0 ("": it has no GPU path, runs on the CPU)
    gpu_family: str = ""  # env family it then runs in (a variant with GPU builds; "": the same env as on the CPU)

    def mem_mb(self, threads):
        return self.base_mb + self.thread_mb * threads


ENGINES = {
    "mediapipe": EngineSpec("mediapipe_legacy", "mediapipe",
                            "MediaPipe full-range face detection + FaceMesh on each face crop (models in the wheel)",
                            1024, 768),
    "mediapipe_tasks": EngineSpec("mediapipe_tasks", "mediapipe",
                                  "MediaPipe full-range face detection + Tasks FaceLandmarker (.task bundle): "
                                  "478 landmarks, 52 blendshapes, head pose", 1024, 768,
                                  gpu="the FaceLandmarker on MediaPipe's GPU delegate (OpenGL ES through EGL)"),
    "yunet": EngineSpec("yunet", "yunet",
                        "OpenCV YuNet face detection + FaceMesh landmarks and blendshapes in ONNX"
                        " (user-supplied models)",
                        1024, 512, gpu="the landmark and blendshape models on onnxruntime's CUDA provider",
                        gpu_family="yunet_gpu"),
    "openseeface": EngineSpec("openseeface", "openseeface",
                              "OpenSeeFace ONNX face detection + 66 landmarks (user-supplied models)", 1024, 512,
                              gpu="both models on onnxruntime's CUDA provider", gpu_family="openseeface_gpu"),
    "eos": EngineSpec("eos", "eos",
                      "dlib HOG detection + 68 landmarks, eos 3D morphable model fit: head pose, shape, expression",
                      1536, 768),
}

# The 52 blendshapes of MediaPipe's FaceLandmarker (ARKit names plus "_neutral"), in the model's order;
# every engine that reports blendshapes uses these names (index 25 is jawOpen). The order is also alphabetical,
# so a face's ``blendshapes`` object ({name: score}) written with sorted keys lists them in this order.
BLENDSHAPE_NAMES = (
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft", "eyeBlinkRight", "eyeLookDownLeft",
    "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft",
    "eyeLookUpRight", "eyeSquintLeft", "eyeSquintRight", "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft",
    "jawOpen", "jawRight", "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft",
    "mouthFrownRight", "mouthFunnel", "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft",
    "mouthPressRight", "mouthPucker", "mouthRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower",
    "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthUpperUpLeft", "mouthUpperUpRight", "noseSneerLeft", "noseSneerRight",
)


def engine_family(name):
    """Env family of engine ``name`` (UserError naming ``tracking.engine`` if unknown)."""
    if name not in ENGINES:
        raise UserError("tracking.engine", f"unknown engine {name!r}; choose from {', '.join(sorted(ENGINES))}")
    return ENGINES[name].family


def tracking_gpus(name: str, gpu: int) -> int:
    """GPUs the tracking rule asks for: ``tracking.gpu`` (``gpu``) for an engine with a GPU path, else none."""
    engine_family(name)
    return gpu if ENGINES[name].gpu else 0


def tracking_env(name: str, gpu: int) -> str:
    """The env of engine ``name`` given ``gpu`` GPUs: ``tracking_<family>``, or its GPU variant
    ``tracking_<gpu_family>`` when the engine has one and a GPU is asked for (CPU users never build it)."""
    family = engine_family(name)
    spec = ENGINES[name]
    return f"tracking_{spec.gpu_family if tracking_gpus(name, gpu) > 0 and spec.gpu_family else family}"


def load_engine(name):
    """The :class:`Engine` subclass of engine ``name`` (imports its module: call in its env)."""
    engine_family(name)
    module = importlib.import_module(f"{__name__}.{ENGINES[name].module}")
    return module.ENGINE


class Engine:
    """What the runner needs from an engine. Faces are dicts in frame pixels.

    ``settings`` is the step's ``TrackingSettings`` (steps.tracking.pipeline): the shared keys of the ``tracking``
    config section (``min_score``, ``max_faces``, ...) and each engine's own section as a dict (``settings.yunet``).

    The runner calls, per frame: ``detect(frame)`` on detection frames (every
    ``tracking.detect_every``-th frame of a scene), then ``describe(frame, detections)`` with
    those detections or, between detection frames, with the previous frame's faces as hints
    (``{"bbox"}`` only, no ``score``). ``describe`` returns the faces it confirms, each with
    ``bbox`` and the optional fields the engine produces (``score``, ``landmarks``,
    ``blendshapes``, ``head_pose``); fields an engine cannot produce are left out, never zero.
    An engine that cannot confirm a hint (no landmark stage) sets ``can_follow = False`` and is
    then given detections on every frame.

    ``check_models(settings)`` runs in the parent process BEFORE any frame is read: it verifies
    model files (see :func:`check_model_file`) and returns provenance for the output's ``model``.
    ``choose_device(settings, gpus)`` runs there next (``gpus``: what the rule was given): ``(device, reason)``;
    every worker's engine is built on that device (``Engine(settings, device)``), which goes into the output.
    Engines without a GPU path keep the default (the CPU); one with a GPU path names it in
    :attr:`EngineSpec.gpu` and falls back to the CPU, with the reason, when the GPU cannot be used.
    ``describe_output(settings)`` returns extra top-level output fields (e.g. blendshape names).
    """

    name = None
    can_follow = True

    def __init__(self, settings, device="cpu"):
        self.settings = settings
        self.device = device

    @classmethod
    def check_models(cls, settings):
        return {}

    @classmethod
    def choose_device(cls, settings, gpus):
        """``("cpu", reason)``: this engine has no GPU path (engines that have one override this)."""
        if gpus <= 0:
            return "cpu", "the rule was given no GPU (tracking.gpu is 0)"
        return "cpu", f"engine {settings.engine} has no GPU path"

    @classmethod
    def describe_output(cls, settings):
        return {}

    def detect(self, frame):
        """Detections ``[{"bbox": [x, y, w, h], "score": s}]`` in frame pixels."""
        raise NotImplementedError

    def describe(self, frame, hints):
        raise NotImplementedError

    def close(self):
        pass


def check_model_file(path, sha256, key, download):
    """Verify a user-supplied model file; return its SHA-256.

    ``key`` is the config key that holds the path (named in the error), ``download`` says where to
    get the file. ``sha256`` may be empty (then only existence is checked).
    """
    if not path:
        raise UserError(key, f"no model file configured; download it from {download} and set {key}")
    file = Path(path)
    if not file.is_file():
        raise UserError(key, f"model file {path} not found; download it from {download} and set {key} to its path")
    actual = sha256_file(file)
    if sha256 and actual != sha256.lower():
        raise UserError(key, f"model file {path} has SHA-256 {actual}, expected {sha256} "
                             f"(corrupt or another version; download it from {download})")
    return actual
