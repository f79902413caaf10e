# Optional step (expressions.enabled): py-feat action units and emotions of every tracked face
# -> expressions.json. A rule of its own, so changing its settings never reruns tracking; its env is
# built only when it is enabled. The models are read offline from expressions.model_dir.
EXPRESSIONS = config["expressions"]
if EXPRESSIONS["enabled"]:
    VIDEO_OUTPUTS.append("results/{project}/{video}/expressions.json")


rule expressions:
    input:
        video="results/{project}/{video}/video.mp4",
        tracking="results/{project}/{video}/tracking.json",
        env=env_ready("expressions"),
    output:
        json="results/{project}/{video}/expressions.json",
    log:
        "logs/expressions/{project}/{video}.log",
    benchmark:
        "results/benchmarks/expressions/{project}/{video}.tsv"
    conda:
        env_file("expressions")
    threads: EXPRESSIONS["threads"]
    resources:
        mem_mb=lambda wildcards, threads: 3072 + 256 * threads,
        runtime=480,
        gpu=EXPRESSIONS["gpu"],
    params:
        **step_job(EXPRESSIONS),
        python=env_python("expressions"),
        step=step_command("expressions"),
    shell:
        "{params.python} {params.step} {params.job} --threads {threads} --gpus {resources.gpu} --log {log}"
