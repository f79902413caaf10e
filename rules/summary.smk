# Per-project aggregate: waits for the project's checkpoint, then for every video's outputs. When some job failed,
# the workflow's onerror handler writes the same table from what finished (write_run_tables in rules/common.smk).


rule project_summary:
    input:
        manifest=project_manifest,
        videos=project_outputs,
        env=env_ready("summary"),
    output:
        "results/{project}/videos.tsv",
    log:
        "logs/project_summary/{project}.log",
    benchmark:
        "results/benchmarks/project_summary/{project}.tsv"
    conda:
        "../envs/summary.yaml"
    threads: 1
    resources:
        mem_mb=256,
        runtime=10,
    params:
        python=env_python("summary"),
        script=script_path("summarize_project.py"),
        expect=video_outputs_arg,
    shell:
        "{params.python} {params.script} --manifest {input.manifest} --output {output} --expect {params.expect}"
        " --log {log}"
