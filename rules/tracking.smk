# Step 5: every face in every frame with a track id stable within a scene -> tracking.json.
# tracking.engine picks the engine, and its family the env (envs/tracking_<family>.yaml; the engines, their
# families and memory are listed in scripts/steps/tracking/engines/__init__.py), so only that env is built.
from steps.tracking.engines import ENGINES, tracking_env, tracking_gpus

VIDEO_OUTPUTS.append("results/{project}/{video}/tracking.json")

# Given a GPU (tracking.gpu > 0), an engine with a GPU path asks for it and the ONNX engines run in their env's GPU
# variant (envs/tracking_<family>_gpu.yaml, onnxruntime-gpu), so CPU users never build that one.
TRACKING_GPUS = tracking_gpus(config["tracking"]["engine"], config["tracking"]["gpu"])
TRACKING_ENV = tracking_env(config["tracking"]["engine"], config["tracking"]["gpu"])
TRACKING_ENGINE = ENGINES[config["tracking"]["engine"]]
TRACKING_THREADS = config["tracking"]["threads"]
# The job carries the chosen engine's own section only (and mediapipe's, whose refine_landmarks both MediaPipe
# engines read), so changing another engine's settings never reruns tracking.
TRACKING_SETTINGS = {
    key: value
    for key, value in config["tracking"].items()
    if key not in ENGINES or key in (config["tracking"]["engine"], "mediapipe")
}


rule tracking:
    input:
        video="results/{project}/{video}/video.mp4",
        scenes="results/{project}/{video}/scenes.json",
        env=env_ready(TRACKING_ENV),
    output:
        tracking="results/{project}/{video}/tracking.json",
    log:
        "logs/tracking/{project}/{video}.log",
    benchmark:
        "results/benchmarks/tracking/{project}/{video}.tsv"
    conda:
        env_file(TRACKING_ENV)
    # On a local run with few cores it asks for half of them and adds the rest of its config threads as spare workers
    # at nice 19 (vidflow.job): it starts beside the recogniser and takes its core when the recogniser ends.
    threads: branch_threads(TRACKING_THREADS)
    resources:
        mem_mb=TRACKING_ENGINE.mem_mb(TRACKING_THREADS),  # the spare workers too
        spare_threads=lambda wildcards, threads: TRACKING_THREADS - threads,  # a resource: not a rerun trigger
        runtime=240,
        gpu=TRACKING_GPUS,
    params:
        **step_job(TRACKING_SETTINGS),
        python=env_python(TRACKING_ENV),
        step=step_command("tracking"),
    shell:
        "{params.python} {params.step} {params.job} --threads {threads} --spare-threads {resources.spare_threads}"
        " --gpus {resources.gpu} --log {log}"
