"""Diarization backend ``pyannote``: a pyannote.audio 4 pipeline (env envs/diarization_pyannote.yaml).

The pipeline comes from a local folder (``config.yaml`` + model subfolders; works offline, the
normal case on HPC compute nodes) or from a hub name, with the token read from the environment
variable named in ``diarization.pyannote.token_env`` (never from the config, never logged). The
waveform is fed in memory; the pipeline runs in fp32, on CUDA only when the rule was given a
GPU and one is visible. Telemetry is switched off (``PYANNOTE_METRICS_ENABLED=0``).

:func:`build_random_pipeline` writes a pipeline folder made of pyannote's own model classes
with random weights (for tests and benchmarks: it exercises the real loading and inference code
without any download).
"""

import logging
import os
import time
from pathlib import Path

from vidflow import interrupt
from vidflow.devices import choose_device, cuda_status
from vidflow.errors import UserError
from vidflow.io import sha256_file

os.environ["PYANNOTE_METRICS_ENABLED"] = "0"  # before pyannote is imported
log = logging.getLogger("diarization.pyannote")
WEIGHT_SUFFIXES = (".bin", ".ckpt", ".pt", ".safetensors", ".npz", ".onnx", ".yaml")


def pipeline_source(pipeline, token_env):
    """``("folder", Path)`` or ``("hub", name, token)`` for ``diarization.pyannote.pipeline``; UserError when it
    cannot work (the token is read from the environment variable ``token_env``)."""
    name = pipeline.strip()
    if not name:
        raise UserError("diarization.pyannote.pipeline", "is empty: set a local pipeline folder or a hub name "
                        "(e.g. pyannote/speaker-diarization-community-1)")
    path = Path(name).expanduser()
    if path.exists():
        if path.is_dir() and not (path / "config.yaml").exists():
            raise UserError(path, "not a pyannote pipeline folder (no config.yaml)")
        return ("folder", path)
    if name.startswith(("/", ".", "~")) or name.count("/") != 1:
        raise UserError(name, "pipeline folder not found (diarization.pyannote.pipeline)")
    token = os.environ.get(token_env)
    if not token:
        raise UserError("diarization.pyannote.pipeline", f"{name!r} is a hub name: set the environment variable "
                        f"{token_env} to your Hugging Face token (or use a local pipeline folder)")
    return ("hub", name, token)


def model_info(settings):
    """Pipeline identity: folder name + SHA-256 of its files, or the hub name."""
    source = pipeline_source(settings.pipeline, settings.token_env)
    if source[0] == "hub":
        return {"name": source[1], "source": "hub"}
    folder = source[1] if source[1].is_dir() else source[1].parent
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
    return {"name": folder.name, "source": "folder",
            "files": {str(p.relative_to(folder)): sha256_file(p) for p in files}}


def parameters(settings):
    """The settings (PyannoteSettings) diarization.json records: the speaker counts asked for."""
    return {"num_speakers": settings.num_speakers, "min_speakers": settings.min_speakers,
            "max_speakers": settings.max_speakers}


def diarize(samples, sample_rate, settings, threads=1, gpus=0):
    """``{"segments": [(start, end, label)], "device": ...}`` for mono float32 ``samples``."""
    source = pipeline_source(settings.pipeline, settings.token_env)
    with interrupt.held():  # a Ctrl-C cannot cut torch's and pyannote's imports short
        import torch
        from pyannote.audio import Pipeline

    torch.set_num_threads(max(1, threads))
    chosen, why = choose_device(gpus, "diarization.gpu", lambda: cuda_status(torch))
    device = torch.device(chosen)
    log.info("device %s: %s; %d CPU threads", device, why, threads)
    if device.type == "cuda":  # fp32 as trained, not TF32
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    t0 = time.monotonic()
    if source[0] == "folder":
        log.info("loading the pipeline from the folder %s", source[1])
        pipeline = Pipeline.from_pretrained(source[1])
    else:
        log.info("loading the pipeline %s from the hub (token from the environment)", source[1])
        pipeline = Pipeline.from_pretrained(source[1], token=source[2])
    if pipeline is None:
        raise UserError(settings.pipeline, "pyannote could not load this pipeline")
    pipeline.to(device)
    log.info("pipeline loaded in %.1f s", time.monotonic() - t0)
    kwargs = {}
    if settings.num_speakers:
        kwargs["num_speakers"] = settings.num_speakers
    else:
        kwargs.update(min_speakers=settings.min_speakers, max_speakers=settings.max_speakers)
    waveform = torch.from_numpy(samples).float()[None]
    t1 = time.monotonic()
    with torch.inference_mode():
        output = pipeline({"waveform": waveform, "sample_rate": sample_rate}, **kwargs)
    annotation = getattr(output, "speaker_diarization", output)
    segments = [(turn.start, turn.end, label) for turn, _, label in annotation.itertracks(yield_label=True)]
    log.info("pipeline ran in %.1f s: %d turns", time.monotonic() - t1, len(segments))
    name = "cpu" if device.type == "cpu" else f"cuda ({torch.cuda.get_device_name(0)})"
    return {"segments": segments, "device": name}


def build_random_pipeline(folder, seed=0, chunk=5.0):
    """Write a pipeline folder that ``Pipeline.from_pretrained(folder)`` loads offline.

    Real pyannote classes (PyanNet powerset segmentation, WeSpeaker ResNet34 embedding, VBx
    clustering with a PLDA) with random weights, in the layout of pyannote's hub pipelines.
    Small and fast, for tests and benchmarks: its output is meaningless.
    """
    import lightning
    import numpy as np
    import pyannote.audio
    import torch
    from pyannote.audio.core.task import Problem, Resolution, Specifications
    from pyannote.audio.models.embedding import WeSpeakerResNet34
    from pyannote.audio.models.segmentation import PyanNet

    folder = Path(folder)
    torch.manual_seed(seed)

    def save(model, path):
        path.parent.mkdir(parents=True, exist_ok=True)
        checkpoint = {"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams),
                      "pytorch-lightning_version": lightning.__version__}
        model.on_save_checkpoint(checkpoint)
        torch.save(checkpoint, path)

    segmentation = PyanNet(lstm={"hidden_size": 32, "num_layers": 1, "bidirectional": True, "monolithic": True,
                                 "dropout": 0.0}, linear={"hidden_size": 32, "num_layers": 1})
    segmentation.specifications = Specifications(
        problem=Problem.MONO_LABEL_CLASSIFICATION, resolution=Resolution.FRAME, duration=chunk,
        classes=["speaker#1", "speaker#2", "speaker#3"], powerset_max_classes=2, permutation_invariant=True)
    segmentation.build()
    save(segmentation, folder / "segmentation" / "pytorch_model.bin")
    embedding = WeSpeakerResNet34()
    embedding.specifications = Specifications(problem=Problem.REPRESENTATION, resolution=Resolution.CHUNK,
                                              duration=chunk)
    save(embedding, folder / "embedding" / "pytorch_model.bin")
    rng = np.random.default_rng(seed)
    dim, lda = 256, 128
    (folder / "plda").mkdir(parents=True, exist_ok=True)
    np.savez(folder / "plda" / "xvec_transform.npz", mean1=np.zeros(dim), mean2=np.zeros(lda),
             lda=rng.normal(size=(dim, lda)))
    np.savez(folder / "plda" / "plda.npz", mu=np.zeros(lda), tr=rng.normal(size=(lda, lda)) + 3 * np.eye(lda),
             psi=np.abs(rng.normal(size=lda)) + 0.5)
    (folder / "config.yaml").write_text(
        f"version: {pyannote.audio.__version__}\n"
        "pipeline:\n  name: pyannote.audio.pipelines.SpeakerDiarization\n  params:\n"
        "    segmentation: $model/segmentation\n    embedding: $model/embedding\n    plda: $model/plda\n"
        "    clustering: VBxClustering\n    segmentation_step: 0.5\n"
        "    embedding_batch_size: 16\n    segmentation_batch_size: 16\n"
        "params:\n  segmentation:\n    min_duration_off: 0.0\n"
        "  clustering:\n    threshold: 0.6\n    Fa: 0.07\n    Fb: 0.8\n", encoding="utf-8")
    return folder
