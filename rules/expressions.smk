# Optional step (expressions.enabled): py-feat action units and emotions of every tracked face
# -> expressions.json. A rule of its own, so changing its settings never reruns tracking; its env is
# built only when it is enabled. The models are read offline from expressions.model_dir.
EXPRESSIONS = config["expressions"]
if EXPRESSIONS["enabled"]:
    VIDEO_OUTPUTS.append("results/{project}/{video}/expressions.json")


rule face_expressions:
    input:
        video="results/{project}/{video}/video.mp4",
        tracking="results/{project}/{video}/tracking.json",
        env=env_ready("expressions"),
    output:
        "results/{project}/{video}/expressions.json",
    log:
        "logs/face_expressions/{project}/{video}.log",
    benchmark:
        "results/benchmarks/face_expressions/{project}/{video}.tsv"
    conda:
        "../envs/expressions.yaml"
    threads: EXPRESSIONS["threads"]
    resources:
        mem_mb=lambda wildcards, threads: 3072 + 256 * threads,
        runtime=480,
        gpu=EXPRESSIONS["gpu"],
    params:
        python=env_python("expressions"),
        script=script_path("face_expressions.py"),
        model_dir=shlex.quote(EXPRESSIONS["model_dir"]),
        models=(
            f"--landmark-model {EXPRESSIONS['landmark_model']} --au-model {EXPRESSIONS['au_model']}"
            f" --emotion-model {EXPRESSIONS['emotion_model']}"
            f" --batch-frames {EXPRESSIONS['batch_frames']}"
        ),
    shell:
        "{params.python} {params.script} --video {input.video} --tracking {input.tracking}"
        " --output {output} --model-dir {params.model_dir} {params.models} --threads {threads}"
        " --gpus {resources.gpu} --log {log}"
