"""onnxruntime sessions of the ONNX engines (yunet, openseeface) on the CPU or, given a GPU, on CUDA.

Only the tracking_yunet / tracking_openseeface envs (and their ``_gpu`` variants) import this module.
The CPU build of onnxruntime has no CUDA provider; the GPU build (``onnxruntime-gpu``, env variant
``envs/tracking_<family>_gpu.yaml``) lists it even where CUDA cannot start (no driver, no cuDNN), and then
quietly gives a CPU session: so the device is chosen once in the parent process by starting a real
session (:func:`choose_onnx_device`) and every worker's session is checked to run where it was asked to.
"""

import logging

import onnxruntime

from vidflow.devices import choose_device, onnx_cuda_status, onnx_device, onnx_providers

log = logging.getLogger("tracking")


def _preload_cuda_libraries():
    """Load CUDA/cuDNN from the nvidia-* wheels of the GPU env (onnxruntime-gpu >= 1.21 has preload_dlls)."""
    preload = getattr(onnxruntime, "preload_dlls", None)
    if preload is not None:
        preload()


def session(path: str, device: str = "cpu") -> onnxruntime.InferenceSession:
    """A one-thread session of the model at ``path`` on ``device``; RuntimeError if onnxruntime gives another."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1  # the pipeline runs one engine per worker process
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    if device == "cuda":
        _preload_cuda_libraries()
    result = onnxruntime.InferenceSession(str(path), sess_options=options, providers=onnx_providers(device))
    used = onnx_device(result.get_providers())
    if used != device:
        raise RuntimeError(f"onnxruntime ran {path} with {', '.join(result.get_providers())}, not on {device}")
    return result


def choose_onnx_device(gpus: int, model: str) -> tuple:
    """``("cuda" | "cpu", reason)``: CUDA when the rule was given a GPU, onnxruntime has its CUDA provider and a
    session of ``model`` (a model file of the engine) really starts on it; else the CPU, with the reason."""
    device, why = choose_device(gpus, "tracking.gpu",
                                lambda: onnx_cuda_status(onnxruntime.get_available_providers(),
                                                         onnxruntime.__version__))
    if device == "cuda":
        try:
            session(model, "cuda")
        except Exception as err:  # noqa: BLE001 - any failure to start CUDA means the CPU, with its reason
            return "cpu", f"onnxruntime could not start CUDA ({type(err).__name__}: {err})"
    return device, why
