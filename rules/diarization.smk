# Step 4: speaker diarization of each normalised video -> diarization.json + diarization.rttm.
# Two backends, each in its own env, both writing the same files; diarization.backend picks the env
# (segment_embed, the default: envs/diarization.yaml; the pyannote env, ~6 GB, is only built when selected).
VIDEO_OUTPUTS += [
    "results/{project}/{video}/diarization.json",
    "results/{project}/{video}/diarization.rttm",
]

DIARIZATION = config["diarization"]
DIARIZATION_ENV = (
    "diarization_pyannote" if DIARIZATION["backend"] == "pyannote" else "diarization"
)
# What a job of each backend asks for; both use CUDA when given a GPU. segment_embed: measured peak RSS in
# benchmarks/README.md (diarization_speed.py).
DIARIZATION_RESOURCES = {
    "segment_embed": {"mem_mb": 2048, "runtime": 120, "gpu": DIARIZATION["gpu"]},
    "pyannote": {"mem_mb": 8192, "runtime": 240, "gpu": DIARIZATION["gpu"]},
}[DIARIZATION["backend"]]


rule diarization:
    input:
        video="results/{project}/{video}/video.mp4",
        env=env_ready(DIARIZATION_ENV),
    output:
        json="results/{project}/{video}/diarization.json",
        rttm="results/{project}/{video}/diarization.rttm",
    log:
        "logs/diarization/{project}/{video}.log",
    benchmark:
        "results/benchmarks/diarization/{project}/{video}.tsv"
    conda:
        env_file(DIARIZATION_ENV)
    threads: branch_threads(DIARIZATION["threads"])
    resources:
        mem_mb=DIARIZATION_RESOURCES["mem_mb"],
        runtime=DIARIZATION_RESOURCES["runtime"],
        gpu=DIARIZATION_RESOURCES["gpu"],
    params:
        **step_job(DIARIZATION),
        python=env_python(DIARIZATION_ENV),
        step=step_command("diarization"),
    shell:
        "{params.python} {params.step} {params.job} --threads {threads} --gpus {resources.gpu} --log {log}"
