# Step 2: every video to constant 25 fps H.264 (yuv420p) + AAC, in one FFmpeg pass.


rule convert:
    input:
        video=source_video,
        env=env_ready("convert"),
    output:
        video="results/{project}/{video}/video.mp4",
        info="results/{project}/{video}/video.json",
    log:
        "logs/convert/{project}/{video}.log",
    benchmark:
        "results/benchmarks/convert/{project}/{video}.tsv"
    conda:
        env_file("convert")
    threads: config["convert"]["threads"]
    resources:
        mem_mb=2048,  # measured peak RSS: 89 MB at 320x180; x264 grows with resolution
        runtime=120,
        gpu=config["convert"]["gpu"],
    params:
        **step_job(config["convert"]),
        # what the step writes, by revision: a new one reruns the step for existing results (Snakemake's params
        # trigger); 2 = audio and video start at frame 0, damaged sources re-encoded, video.json's audio_sync/damage
        python=env_python("convert"),
        step=step_command("convert"),
        revision=2,
    shell:
        "{params.python} {params.step} {params.job} --threads {threads} --gpus {resources.gpu} --log {log}"
