# Step 1: one checkpoint per project (archive or loose videos); the videos are unknown upfront.


checkpoint extract:
    input:
        source=extract_source,
        env=env_ready("extract"),
    output:
        directory("results/{project}/extracted"),
    log:
        "logs/extract/{project}.log",
    benchmark:
        "results/benchmarks/extract/{project}.tsv"
    conda:
        "../envs/extract.yaml"
    threads: 1
    resources:
        mem_mb=256,  # measured peak RSS: 3 MB (streams members in 1 MiB blocks)
        runtime=60,
    params:
        python=env_python("extract"),
        script=script_path("extract.py"),
        source=extract_source_args,
        limits=lambda wc: "--max-total-bytes {max_total_bytes} --max-members {max_members} --max-ratio {max_ratio}".format(
            **config["extract"]
        ),
        extensions=" ".join(config["extract"]["video_extensions"]),
    shell:
        "{params.python} {params.script} --project {wildcards.project} --out {output} --log {log}"
        " {params.source} {params.limits} --extensions {params.extensions}"
