# Per-project aggregate: waits for the project's checkpoint, then for every video's outputs. When some job failed,
# the workflow's onerror handler writes the same table from what finished (write_run_tables in rules/run_end.smk).


rule project_summary:
    input:
        project_outputs,  # waited for, not read (the step finds each video's outputs from the manifest)
        manifest=project_manifest,
        env=env_ready("summary"),
    output:
        table="results/{project}/videos.tsv",
    log:
        "logs/project_summary/{project}.log",
    benchmark:
        "results/benchmarks/project_summary/{project}.tsv"
    conda:
        env_file("summary")
    threads: 1
    resources:
        mem_mb=256,
        runtime=10,
    params:
        **step_job(project_summary_settings),
        python=env_python("summary"),
        step=step_command("summary"),
    shell:
        "{params.python} {params.step} {params.job} --threads {threads} --log {log}"
