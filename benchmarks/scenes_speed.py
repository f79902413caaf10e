#!/usr/bin/env python3
"""Benchmark step 3 (scenes): TransNetV2 scene-detection speed next to the decode floor.

Makes 60 s, 25 fps clips of real material (scikit-image photos panned and zoomed, a cut every
~7.5 s) at 1280x720 and 640x360 (the driver venv renders them), then, in the scenes venv, times:
the decode floor (``ffmpeg -i clip -f null -``), decoding straight to 48x27 alone, the step end to
end split into decode wait / inference / post-processing (model loading reported apart), and bare
inference on pre-decoded windows for several batch sizes, for the stock TransNetV2 network and the
fused one the step uses, with ``torch.inference_mode`` and ``torch.no_grad``. Every variant's
probabilities are compared with the stock network at batch size 1 (max absolute difference).
Prints a table and writes results/benchmarks/scenes_speed.json. Run with the driver venv:

    .venvs/workflow/bin/python benchmarks/scenes_speed.py [--seconds 60] [--threads 2] [--batch-sizes 1,2,4]
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "scripts"), str(ROOT / "tools")]

MEDIA = ROOT / "results" / "benchmarks" / "media"
SCENES_PYTHON = ROOT / ".venvs" / "scenes" / "bin" / "python"
IMAGES = ["astronaut", "coffee", "rocket", "chelsea", "astronaut_pair", "camera", "coffee", "rocket"]


def bench_clip(size, seconds, fps=25):
    """A cached 25 fps clip: 8 shots of real photos with a moving camera (hard cuts between them)."""
    import media_factory as mf  # noqa: PLC0415 - driver venv only

    path = MEDIA / f"shots_{size[0]}x{size[1]}_{seconds}s_{fps}fps.mp4"
    if path.exists():
        return path
    MEDIA.mkdir(parents=True, exist_ok=True)
    total = seconds * fps
    bounds = [round(i * total / len(IMAGES)) for i in range(len(IMAGES) + 1)]
    shots = [mf.Shot(image, b - a, zoom=(1.0 + 0.1 * (i % 3), 1.3 - 0.1 * (i % 2)),
                     pan=(0.4, 0.45, 0.6, 0.55) if i % 2 else (0.55, 0.5, 0.45, 0.5))
             for i, (image, a, b) in enumerate(zip(IMAGES, bounds, bounds[1:]))]
    partial = path.with_name(f".{path.name}.partial.mp4")
    mf.make_video(partial, shots, fps=fps, size=size, crf=20)
    partial.replace(path)
    return path


def decode_floor(path, threads):
    start = time.perf_counter()
    subprocess.run(["ffmpeg", "-v", "error", "-threads", str(threads), "-i", str(path), "-f", "null", "-"], check=True)
    return time.perf_counter() - start


# --------------------------------------------------------------------------- scenes venv part


def measure(path, threads, batch_sizes):
    """Runs in the scenes venv: every timing for one clip, as a dict."""
    import numpy as np  # noqa: PLC0415
    import torch  # noqa: PLC0415
    from steps import scenes as sc  # noqa: PLC0415
    from steps.scenes_model import default_batch_size, load_model, set_threads  # noqa: PLC0415

    set_threads(threads)
    row = {}
    start = time.perf_counter()
    frames = np.concatenate(list(sc.decode_small_frames(path, threads)))
    row["decode_resize_s"] = time.perf_counter() - start
    row["frames"] = len(frames)

    start = time.perf_counter()
    fast, _ = load_model("cpu")
    row["model_load_s"] = time.perf_counter() - start
    stock, _ = load_model("cpu", fast=False)

    batch = default_batch_size("cpu")
    timings = {"decode": 0.0, "inference": 0.0}
    start = time.perf_counter()
    probs = sc.predict_video(path, fast, threads=threads, batch_size=batch, timings=timings)
    t0 = time.perf_counter()
    scenes, runs = sc.scenes_from_predictions(probs)
    with tempfile.TemporaryDirectory() as tmp:
        sc.write_text(Path(tmp) / "scenes.csv", sc.scenes_csv(scenes))
        sc.write_json(Path(tmp) / "scenes.json", sc.scenes_document(scenes, runs, len(probs), {"name": "TransNetV2"}))
        sc.write_json(Path(tmp) / "probs.json", sc.probabilities_document(probs, 0.5), compact=True)
    timings["postprocess"] = time.perf_counter() - t0
    row["end_to_end_s"] = time.perf_counter() - start
    row.update({f"{k}_s": v for k, v in timings.items()})
    row["batch_size"] = batch
    row["scenes"] = len(scenes)

    windows = list(sc.iter_windows([frames]))

    def bare(model, size, grad_mode="inference_mode"):
        outputs, start = [], time.perf_counter()
        for b in sc.iter_batches(iter(windows), size):
            if grad_mode == "no_grad":
                with torch.no_grad():
                    single, _ = model.network(torch.from_numpy(b))
                    outputs.append(sc.kept_predictions(torch.sigmoid(single[..., 0]).numpy()))
            else:
                outputs.append(sc.kept_predictions(model(b)))
        return time.perf_counter() - start, np.concatenate(outputs)[:len(frames)]

    bare(fast, 1)  # warm-up (oneDNN primitive creation)
    reference_s, reference = bare(stock, 1)
    row["bare"] = [{"network": "stock", "batch": 1, "grad": "inference_mode", "fps": len(frames) / reference_s,
                    "max_diff": 0.0}]
    variants = [("fast", size, "inference_mode") for size in batch_sizes] + [("fast", 1, "no_grad")]
    for network, size, grad in variants:
        seconds, out = bare(fast, size, grad)
        row["bare"].append({"network": network, "batch": size, "grad": grad, "fps": len(frames) / seconds,
                            "max_diff": float(np.abs(out - reference).max())})
    row["end_to_end_vs_stock_max_diff"] = float(np.abs(probs - reference).max())
    return row


# --------------------------------------------------------------------------- driver part


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-sizes", default="1,2,4")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # internal: run in the scenes venv
    args = parser.parse_args()
    sizes = [int(s) for s in args.batch_sizes.split(",")]
    if args.measure:
        print(json.dumps(measure(args.measure, args.threads, sizes)))
        return
    if not SCENES_PYTHON.exists():
        sys.exit(f"build the scenes venv first: python tools/build_env.py envs/scenes.yaml {SCENES_PYTHON.parents[1]}")
    rows = []
    for size in ((1280, 720), (640, 360)):
        clip = bench_clip(size, args.seconds)
        floor = min(decode_floor(clip, args.threads) for _ in range(2))
        out = subprocess.run([str(SCENES_PYTHON), __file__, "--measure", str(clip), "--threads", str(args.threads),
                              "--batch-sizes", args.batch_sizes], capture_output=True, text=True, check=True)
        row = json.loads(out.stdout.strip().splitlines()[-1])
        row.update({"clip": clip.name, "size": f"{size[0]}x{size[1]}", "decode_floor_s": floor})
        rows.append(row)

    print(f"threads={args.threads}; fps = frames per wall second; model load not included in end-to-end")
    header = ["size", "frames", "floor fps", "48x27 decode fps", "end-to-end fps", "decode wait %", "inference %",
              "post %", "model load s", "scenes"]
    print(" | ".join(header))
    for r in rows:
        e2e = r["end_to_end_s"]
        print(" | ".join(str(v) for v in [
            r["size"], r["frames"], round(r["frames"] / r["decode_floor_s"]), round(r["frames"] / r["decode_resize_s"]),
            round(r["frames"] / e2e, 1), round(100 * r["decode_s"] / e2e, 1), round(100 * r["inference_s"] / e2e, 1),
            round(100 * r["postprocess_s"] / e2e, 2), round(r["model_load_s"], 2), r["scenes"]]))
    print("\nbare inference (pre-decoded windows): network | batch | grad mode | fps | max |prob diff| vs stock")
    for r in rows:
        for b in r["bare"]:
            print(f"{r['size']} | {b['network']} | {b['batch']} | {b['grad']} | {b['fps']:.1f} | {b['max_diff']:.1e}")
    out = ROOT / "results" / "benchmarks" / "scenes_speed.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"threads": args.threads, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
