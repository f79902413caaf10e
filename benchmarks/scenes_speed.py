#!/usr/bin/env python3
"""Benchmark step 3 (scenes): TransNetV2 scene-detection speed next to the decode floor.

Takes the 60 s benchmark clips at 25 fps (benchmarks/common.py: real astronaut faces panned and zoomed,
a cut every 5 s) at 1280x720 and 640x360 (the driver venv makes them), then, in the scenes venv, times:
the decode floor (``ffmpeg -i clip -f null -``), decoding straight to 48x27 alone, the step end to
end split into decode wait / inference / post-processing (model loading reported apart), and bare
inference on pre-decoded windows for several batch sizes, for the stock TransNetV2 network and the
fused one the step uses, with ``torch.inference_mode`` and ``torch.no_grad``. Every variant's
probabilities are compared with the stock network at batch size 1 (max absolute difference).
Prints a table and writes results/benchmarks/scenes_speed.json. Run with the driver venv:

    .venvs/workflow/bin/python benchmarks/scenes_speed.py [--seconds 60] [--threads 2] [--batch-sizes 1,2,4]
        [--sizes 1280x720,640x360]
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402 - standard library only at import: the scenes venv imports it too

ROOT = common.ROOT
SCENES_PYTHON = common.VENV_DIR / "scenes" / "bin" / "python"


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
    parser.add_argument("--seconds", type=int, default=60, help="clip length (a multiple of 10)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-sizes", default="1,2,4")
    parser.add_argument("--sizes", default="1280x720,640x360")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # internal: run in the scenes venv
    args = parser.parse_args()
    sizes = [int(s) for s in args.batch_sizes.split(",")]
    if args.measure:
        print("RESULT " + json.dumps(measure(args.measure, args.threads, sizes)))
        return
    if not SCENES_PYTHON.exists():
        sys.exit(f"build the scenes venv first: python tools/build_env.py envs/scenes.yaml {SCENES_PYTHON.parents[1]}")
    rows = []
    for size in map(common.parse_size, args.sizes.split(",")):
        clip, _ = common.clip_25fps(args.seconds, size)
        floor = common.decode_floor(clip, args.threads)
        run = common.run_measured([SCENES_PYTHON, __file__, "--measure", clip, "--threads", args.threads,
                                   "--batch-sizes", args.batch_sizes])
        lines = [line for line in run["output"].splitlines() if line.startswith("RESULT ")]
        if run["returncode"] or not lines:
            raise SystemExit(f"scenes measurement failed:\n{run['output'][-3000:]}")
        row = json.loads(lines[-1][len("RESULT "):])
        row.update({"clip": clip.name, "size": f"{size[0]}x{size[1]}", "decode_floor_s": floor,
                    "peak_rss_mib": round(run["peak_rss_mib"])})
        rows.append(row)

    table = []
    for r in rows:
        e2e = r["end_to_end_s"]
        table.append({"size": r["size"], "frames": r["frames"], "floor_fps": round(r["frames"] / r["decode_floor_s"]),
                      "decode_fps": round(r["frames"] / r["decode_resize_s"]), "fps": round(r["frames"] / e2e, 1),
                      "x_floor": round(e2e / r["decode_floor_s"], 2), "decode_pct": round(100 * r["decode_s"] / e2e, 1),
                      "inference_pct": round(100 * r["inference_s"] / e2e, 1),
                      "post_pct": round(100 * r["postprocess_s"] / e2e, 2), "load_s": round(r["model_load_s"], 2),
                      "peak_rss_mib": r["peak_rss_mib"], "scenes": r["scenes"]})
    print(common.format_table(table, [
        ("size", "size"), ("frames", "frames"), ("floor_fps", "floor fps"), ("decode_fps", "48x27 decode fps"),
        ("fps", "end-to-end fps"), ("x_floor", "x floor"), ("decode_pct", "decode wait %"),
        ("inference_pct", "inference %"), ("post_pct", "post %"), ("load_s", "model load s"),
        ("peak_rss_mib", "peak RSS MiB"), ("scenes", "scenes")],
        f"Scene detection, threads={args.threads} (model load not in end-to-end; RSS of the whole measurement)"))
    print()
    bare = [{"size": r["size"], **b, "fps": round(b["fps"], 1), "max_diff": f"{b['max_diff']:.1e}"}
            for r in rows for b in r["bare"]]
    print(common.format_table(bare, [("size", "size"), ("network", "network"), ("batch", "batch"),
                                     ("grad", "grad mode"), ("fps", "fps"), ("max_diff", "max |prob diff| vs stock")],
                              "Bare inference on pre-decoded windows"))
    path = common.write_result("scenes_speed", {"seconds": args.seconds, "threads": args.threads, "rows": rows})
    print(f"wrote {path}")

if __name__ == "__main__":
    main()
