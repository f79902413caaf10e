# Step 6: the compact per-frame JSON in the seed's contract (downstream After Effects scripts read it).
VIDEO_OUTPUTS += [
    "results/{project}/{video}/{video}_tracking.json",
    "results/{project}/{video}/{video}_audio.json",
]


rule reduce:
    input:
        tracking="results/{project}/{video}/faces.json",
        diarization="results/{project}/{video}/diarization.json",
        env=env_ready("finalize"),
    output:
        tracking="results/{project}/{video}/{video}_tracking.json",
        audio="results/{project}/{video}/{video}_audio.json",
    log:
        "logs/reduce/{project}/{video}.log",
    benchmark:
        "results/benchmarks/reduce/{project}/{video}.tsv"
    conda:
        env_file("finalize")
    threads: 1
    resources:
        mem_mb=512,  # streamed: flat in the video's length (26 MiB at 600 s)
        runtime=30,
    params:
        **step_job({}),
        python=env_python("finalize"),
        step=step_command("reduce"),
    shell:
        "{params.python} {params.step} {params.job} --threads {threads} --log {log}"
