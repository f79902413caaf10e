"""Experiment for issue 23: TransNetV2 quantized to int8 against f32 and the CPU's own precision, in OpenVINO (NNCF
post-training quantization; f32, the CPU's own precision, i.e. bf16 where it has BF16) and in ONNX Runtime (f32, and
int8 QDQ from ``onnxruntime.quantization.quantize_static``: per-channel int8 weights, uint8 activations, convolutions
and matrix products only). Not part of the workflow.

Calibration windows come from the ``--calibrate`` videos only; every ``--evaluate`` video is run by each variant
and compared with OpenVINO f32: its scenes (the step's own windowing and threshold), the largest per-frame
probability difference, and the variant's peak probability around each f32 cut (frames -3..+1). Speed: inference
frames per second of each variant on the first evaluated video, 2 threads, median of ``--repeats``. Needs a Python
with openvino, nncf and onnxruntime (not in envs/scenes.yaml):

    python3 -m venv /tmp/nncf && /tmp/nncf/bin/pip install openvino==2026.4.1 numpy==2.4.6 nncf==3.4.0 \\
        onnxruntime==1.32.0 onnx==1.23.2
    /tmp/nncf/bin/python benchmarks/scenes_int8.py --export .venvs/scenes/cache/transnetv2/<export>.onnx \\
        --calibrate CLIP.mp4 ... --evaluate CLIP.mp4 ... [--out results/benchmarks/scenes_int8.json]
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from steps.scenes.pipeline import decode_small_frames, iter_windows, predict_video, scenes_from_predictions  # noqa: E402
from steps.scenes.runtime import OpenVinoShotModel, openvino_config  # noqa: E402


def calibration_windows(videos):
    """Every window of ``videos`` as the model's input ``[1, 100, 27, 48, 3]`` (uint8)."""
    return [window[None] for video in videos for window in iter_windows(decode_small_frames(video, threads=2))]


def openvino_variants(export, calibration, subset_size):
    """``{name: (model, seconds to make it, precision)}``: f32, the CPU's own precision, int8 (+ its own precision)."""
    import nncf
    import openvino

    core = openvino.Core()
    model = core.read_model(export)

    def compiled(network, precision):
        made = core.compile_model(network, "CPU", openvino_config(precision, 2))
        return (OpenVinoShotModel(made, made.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")),
                made.get_property("INFERENCE_PRECISION_HINT").to_string())

    made = {}
    for name, precision in (("f32", "f32"), ("auto", "auto")):
        started = time.perf_counter()
        shot_model, used = compiled(model, precision)
        made[name] = (shot_model, time.perf_counter() - started, used)
    started = time.perf_counter()
    quantized = nncf.quantize(model, nncf.Dataset(calibration), subset_size=min(subset_size, len(calibration)))
    seconds = time.perf_counter() - started
    for name, precision in (("int8", "auto"), ("int8_f32", "f32")):
        shot_model, used = compiled(quantized, precision)
        made[name] = (shot_model, seconds, used)
    return made


class OnnxRuntimeShotModel:
    """Callable uint8 ``[b, 100, 27, 48, 3]`` windows -> ``[b, 100]``, one window per run (the export's batch is 1)."""

    def __init__(self, path, threads=2):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def __call__(self, windows):
        return np.concatenate([self.session.run(None, {"windows": window[None]})[0] for window in windows])


class CalibrationWindows:
    """ONNX Runtime's calibration reader over a list of ``[1, 100, 27, 48, 3]`` windows."""

    def __init__(self, windows):
        self.windows = iter(windows)

    def get_next(self):
        window = next(self.windows, None)
        return None if window is None else {"windows": window}


def onnxruntime_variants(export, calibration, folder):
    """``{name: (model, seconds to make it, precision)}``: ONNX Runtime f32 and static int8 QDQ."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    started = time.perf_counter()
    made = {"ort_f32": (OnnxRuntimeShotModel(export), time.perf_counter() - started, "f32")}
    started = time.perf_counter()
    prepared, quantized = Path(folder) / "prepared.onnx", Path(folder) / "int8.onnx"
    quant_pre_process(str(export), str(prepared))
    quantize_static(str(prepared), str(quantized), CalibrationWindows(calibration), quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    op_types_to_quantize=["Conv", "MatMul", "Gemm"])
    made["ort_int8"] = (OnnxRuntimeShotModel(quantized), time.perf_counter() - started, "int8 QDQ")
    return made


def run(model, video):
    timings = {}
    probabilities = predict_video(video, model, threads=2, timings=timings)
    return probabilities, timings["inference"]


def compare(made, videos, threshold):
    rows = {}
    for video in videos:
        reference, _ = run(made["f32"][0], video)
        cuts = [start for start, _ in scenes_from_predictions(reference, threshold)[0]][1:]
        rows[Path(video).name] = row = {"frames": len(reference), "f32_scene_starts": cuts}
        for name, (model, _, _) in made.items():
            probabilities, _ = run(model, video)
            scenes, _ = scenes_from_predictions(probabilities, threshold)
            starts = [start for start, _ in scenes][1:]
            row[name] = {"same_scenes": starts == cuts, "scene_starts": starts,
                         "max_diff": round(float(np.abs(probabilities - reference).max()), 4),
                         "peak_at_cuts": [round(float(probabilities[max(0, c - 3):c + 2].max()), 3) for c in cuts]}
    return rows


def speed(made, video, repeats):
    result = {}
    for name, (model, seconds, precision) in made.items():
        times, frames = [], 0
        for _ in range(repeats):
            probabilities, inference = run(model, video)
            times.append(inference)
            frames = len(probabilities)
        result[name] = {"inference_s": round(statistics.median(times), 2),
                        "inference_fps": round(frames / statistics.median(times), 1),
                        "precision": precision,
                        "prepare_s": round(seconds, 1)}
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--export", required=True, help="the scenes step's cached ONNX export")
    parser.add_argument("--calibrate", nargs="+", required=True)
    parser.add_argument("--evaluate", nargs="+", required=True)
    parser.add_argument("--subset-size", type=int, default=300, help="calibration windows NNCF uses")
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="results/benchmarks/scenes_int8.json")
    args = parser.parse_args(argv)
    calibration = calibration_windows(args.calibrate)
    with tempfile.TemporaryDirectory() as folder:
        made = {**openvino_variants(args.export, calibration, args.subset_size),
                **onnxruntime_variants(args.export, calibration, folder)}
    result = {"calibration_windows": len(calibration), "clips": compare(made, args.evaluate, args.threshold),
              "speed": {"video": Path(args.evaluate[0]).name, **speed(made, args.evaluate[0], args.repeats)}}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    print(json.dumps(result, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
