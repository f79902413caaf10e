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


# Each video's record, out of the project's manifest. Its content is a param, so a job reruns only when that
# video's entry changes: adding or removing another video of the project reruns none of this video's jobs.
rule video_source:
    input:
        extracted=extracted_project,
        env=env_ready("summary"),
    output:
        "results/{project}/{video}/source.json",
    log:
        "logs/video_source/{project}/{video}.log",
    benchmark:
        "results/benchmarks/video_source/{project}/{video}.tsv"
    localrule: True
    conda:
        "../envs/summary.yaml"
    threads: 1
    resources:
        mem_mb=128,
        runtime=5,
    params:
        python=env_python("summary"),
        script=script_path("video_source.py"),
        record=video_record_arg,
    shell:
        "{params.python} {params.script} --record {params.record} --output {output} --log {log}"
