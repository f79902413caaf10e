"""Experiment for issue 23: TransNetV2 in PyTorch on the CPU with oneDNN settings, against the step's PyTorch
path (:func:`steps.scenes.model.torch_model`: fused dilated blocks, f32, contiguous tensors). Not part of the
workflow: it tells whether PyTorch itself could come near OpenVINO before OpenVINO became the CPU default.

Variants, each on the same windows of ``--video`` (the step's own decoding and windowing), 2 threads:
``fast`` (the step's path), ``stock`` (TransNetV2's own blocks), ``channels_last`` (the weights in channels-last
layouts, :func:`channels_last`), ``frozen`` (``torch.jit.trace`` + ``torch.jit.freeze``: oneDNN folds batch norms
and fuses convolutions with their activations), ``bf16`` (``torch.autocast("cpu", torch.bfloat16)``: oneDNN's bf16
kernels, AMX where the CPU has it). Reported: inference frames per second (new frames per window: 50), median of
``--repeats``, and the largest probability difference from ``fast``. Run in the scenes venv:

    .venvs/scenes/bin/python benchmarks/scenes_torch_cpu.py --video CLIP.mp4 [--repeats 3]
"""

import argparse
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from steps.scenes import model as scenes_model  # noqa: E402
from steps.scenes.pipeline import decode_small_frames, iter_windows  # noqa: E402

NEW_FRAMES = 50  # frames each 100-frame window adds (25 of context on each side)


def probabilities(model, windows, bf16=False):
    """``[n, 100]`` probabilities of ``windows`` (``[1, 100, 27, 48, 3]`` each) from ``model``
    (:class:`steps.scenes.model.Probabilities`). The network's first step permutes them to ``[1, 3, 100, 27, 48]``,
    whose strides are already those of ``channels_last_3d``."""
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        return np.concatenate([model(torch.from_numpy(window)).float().numpy() for window in windows])


def channels_last(network):
    """``network`` with its 5-D weights in ``channels_last_3d`` and its 4-D ones (the fused blocks' temporal
    convolutions) in ``channels_last``, in place (``Module.to(memory_format=...)`` refuses mixed ranks)."""
    formats = {5: torch.channels_last_3d, 4: torch.channels_last}
    for tensor in [*network.parameters(), *network.buffers()]:
        if tensor.dim() in formats:
            tensor.data = tensor.data.contiguous(memory_format=formats[tensor.dim()])
    return network


def variants(windows):
    """``{name: callable windows -> probabilities}``; every network is built before timing starts."""
    def network(fast=True):
        return scenes_model.Probabilities(scenes_model.load_network(fast)).eval()

    fast, stock, last = network(), network(fast=False), channels_last(network())
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about the network's asserts and its histogram layer
        frozen = torch.jit.freeze(torch.jit.trace(network(), torch.from_numpy(windows[0])))
    return {"fast": lambda w: probabilities(fast, w), "stock": lambda w: probabilities(stock, w),
            "channels_last": lambda w: probabilities(last, w),
            "frozen": lambda w: probabilities(frozen, w), "bf16": lambda w: probabilities(fast, w, bf16=True)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", required=True)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="results/benchmarks/scenes_torch_cpu.json")
    args = parser.parse_args(argv)
    scenes_model.set_threads(2)
    windows = [np.ascontiguousarray(w[None]) for w in iter_windows(decode_small_frames(args.video, threads=2))]
    runs = variants(windows)
    result, reference = {}, None
    for name, run in runs.items():  # fast first: the reference
        run(windows[:2])  # warm-up (oneDNN primitive caches)
        times, outputs = [], None
        for _ in range(args.repeats):
            started = time.perf_counter()
            outputs = run(windows)
            times.append(time.perf_counter() - started)
        if name == "fast":
            reference = outputs
        result[name] = {"inference_s": round(statistics.median(times), 2),
                        "inference_fps": round(len(windows) * NEW_FRAMES / statistics.median(times), 1),
                        "max_diff_vs_fast": round(float(np.abs(outputs - reference).max()), 6)}
    result = {"video": Path(args.video).name, "windows": len(windows), "torch": torch.__version__, **result}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    print(json.dumps(result, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
