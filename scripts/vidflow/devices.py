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
