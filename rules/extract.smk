# Step 1: one checkpoint per project (archive or loose videos); the videos are unknown upfront.


checkpoint extract:
    input:
        unpack(extract_source),
        env=env_ready("extract"),
    output:
        extracted=directory("results/{project}/extracted"),
    log:
        "logs/extract/{project}.log",
    benchmark:
        "results/benchmarks/extract/{project}.tsv"
    conda:
        env_file("extract")
    threads: 1
    resources:
        mem_mb=256,  # measured peak RSS: 3 MB (streams members in 1 MiB blocks)
        runtime=60,
    params:
        **step_job(config["extract"]),
        python=env_python("extract"),
        step=step_command("extract"),
    shell:
        "{params.python} {params.step} {params.job} --threads {threads} --log {log}"


# Each video's record, out of the project's manifest. The record is in the job, so a job reruns only when that
# video's entry changes: adding or removing another video of the project reruns none of this video's jobs.
rule video_source:
    input:
        extracted=extracted_project,
        env=env_ready("summary"),
    output:
        record="results/{project}/{video}/source.json",
    log:
        "logs/video_source/{project}/{video}.log",
    benchmark:
        "results/benchmarks/video_source/{project}/{video}.tsv"
    localrule: True
    conda:
        env_file("summary")
    threads: 1
    resources:
        mem_mb=128,
        runtime=5,
    params:
        **step_job(video_source_settings),
        python=env_python("summary"),
        step=step_command("video_source"),
    shell:
        "{params.python} {params.step} {params.job} --threads {threads} --log {log}"
