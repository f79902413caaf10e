"""Which device a model step runs on: CUDA only when its rule was given a GPU and one is visible.

Standard library only: the steps hand in what they have (``torch``, or a probe of their own), so every env can
import this and the choice and its reasons read the same in every step's log.
"""

import os


def cuda_status(torch):
    """``(visible, why)`` for a CUDA device that ``torch`` (the module) can use, honouring CUDA_VISIBLE_DEVICES."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False, "CUDA_VISIBLE_DEVICES hides all GPUs"
    if not torch.cuda.is_available():
        return False, f"torch {torch.__version__} sees no CUDA device"
    return True, torch.cuda.get_device_name(0)


def choose_device(gpus, setting, probe):
    """``("cuda" | "cpu", reason)``: CUDA only when the rule was given a GPU and ``probe()`` sees one.

    ``gpus`` is what the rule was given, ``setting`` the config key that asks for it (``scenes.gpu``), named in
    the reason when it is 0; ``probe`` returns ``(visible, why)`` (e.g. ``lambda: cuda_status(torch)``) and is
    only called when the rule was given a GPU.
    """
    if gpus <= 0:
        return "cpu", f"the rule was given no GPU ({setting} is 0)"
    visible, why = probe()
    if not visible:
        return "cpu", f"no GPU visible ({why})"
    return "cuda", f"GPU visible ({why})"


ONNX_CUDA = "CUDAExecutionProvider"
ONNX_CPU = "CPUExecutionProvider"


def onnx_cuda_status(available: list, version: str) -> tuple:
    """``(visible, why)`` for onnxruntime's CUDA provider, from ``onnxruntime.get_available_providers()``
    (``available``) and its ``version``, honouring CUDA_VISIBLE_DEVICES.

    The CPU build (PyPI ``onnxruntime``) has no CUDA provider; the GPU build (``onnxruntime-gpu``) lists it
    even where CUDA cannot start, so a step still checks the provider of the session it gets
    (:func:`onnx_device`).
    """
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False, "CUDA_VISIBLE_DEVICES hides all GPUs"
    if ONNX_CUDA not in available:
        return False, (f"onnxruntime {version} has no {ONNX_CUDA} (providers: {', '.join(available) or 'none'};"
                       " the GPU build is the env variant with onnxruntime-gpu)")
    return True, f"onnxruntime {version} has {ONNX_CUDA}"


def onnx_providers(device: str) -> list:
    """The execution providers to ask onnxruntime for on ``device`` ("cuda" | "cpu"), in order of preference."""
    return [ONNX_CUDA, ONNX_CPU] if device == "cuda" else [ONNX_CPU]


def onnx_device(session_providers: list) -> str:
    """The device a session runs on, from its ``get_providers()`` (onnxruntime falls back to the CPU quietly)."""
    return "cuda" if session_providers and session_providers[0] == ONNX_CUDA else "cpu"
