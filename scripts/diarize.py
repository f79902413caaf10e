"""Step 4 entry point: who speaks when in one video (diarization.json + diarization.rttm)."""

import argparse
import os

from vidflow.logs import run_main, setup_logging

BACKENDS = ("vad_embed", "pyannote")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--input", required=True, help="the 25 fps video (results/{project}/{video}/video.mp4)")
    parser.add_argument("--json", required=True)
    parser.add_argument("--rttm", required=True)
    parser.add_argument("--log")
    parser.add_argument("--backend", choices=BACKENDS, required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--gpus", type=int, default=0, help="GPUs the rule was given")
    parser.add_argument("--num-speakers", type=int, default=0, help="0 = estimate the number of speakers")
    parser.add_argument("--min-speakers", type=int, default=1)
    parser.add_argument("--max-speakers", type=int, default=8)
    parser.add_argument("--vad-threshold", type=float, default=0.5)
    parser.add_argument("--min-speech", type=float, default=0.25, help="seconds")
    parser.add_argument("--min-silence", type=float, default=0.3, help="seconds")
    parser.add_argument("--embed-rate", type=float, default=8.0, help="embeddings per second of speech")
    parser.add_argument("--merge-similarity", type=float, default=0.8,
                        help="merge estimated speakers whose voice centroids are at least this alike (cosine)")
    parser.add_argument("--pipeline", default="", help="pyannote: local pipeline folder or hub name")
    parser.add_argument("--token-env", default="HF_TOKEN", help="pyannote: env var holding the hub token")
    args = parser.parse_args(argv)
    setup_logging(args.log)
    os.environ["PYANNOTE_METRICS_ENABLED"] = "0"
    # BLAS threads are fixed before numpy loads: vad_embed is fastest on one core (more threads thrash)
    blas = "1" if args.backend == "vad_embed" else str(max(1, args.threads))
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = blas
    from steps.diarization import diarize_video
    settings = {"backend": args.backend, "num_speakers": args.num_speakers, "min_speakers": args.min_speakers,
                "max_speakers": args.max_speakers}
    if args.backend == "vad_embed":
        settings.update(vad_threshold=args.vad_threshold, min_speech=args.min_speech, min_silence=args.min_silence,
                        embed_rate=args.embed_rate, merge_similarity=args.merge_similarity, merge_gap=args.min_silence)
    else:
        settings.update(pipeline=args.pipeline, token_env=args.token_env)
    diarize_video(args.input, args.json, args.rttm, settings, threads=args.threads, gpus=args.gpus)


if __name__ == "__main__":
    run_main(main)
