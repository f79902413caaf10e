# Per-project aggregate: waits for the project's checkpoint, then for every video's outputs.


rule project_summary:
    input:
        manifest=lambda wc: Path(checkpoints.extract.get(project=wc.project).output[0]) / "manifest.json",
        videos=project_outputs,
        env=env_ready("summary"),
    output:
        "results/{project}/videos.tsv",
    log:
        "logs/project_summary/{project}.log",
    benchmark:
        "results/benchmarks/project_summary/{project}.tsv"
    threads: 1
    resources:
        mem_mb=256,
        runtime=10,
    conda:
        "../envs/summary.yaml"
    shell:
        "{PY[summary]} {SCRIPTS}/summarize_project.py --manifest {input.manifest} --output {output} --log {log}"
