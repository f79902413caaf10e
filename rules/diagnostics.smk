# Run diagnostics: interpreter, FFmpeg, every env's pins, GPU visibility and requests, the devices and backends the
# steps chose -> results/diagnostics.json and its page in the report.


rule diagnostics:
    input:
        expand("results/{project}/videos.tsv", project=sorted(PROJECTS)),
        video_summaries,  # read through the manifests (a job's inputs stay short however many videos)
        manifests=project_manifests,
        env=env_ready("report"),
    output:
        json="results/diagnostics.json",
        html=run_report_item(
            "results/report/diagnostics.html", "diagnostics", "diagnostics"
        ),
    log:
        "logs/diagnostics/all.log",
    benchmark:
        "results/benchmarks/diagnostics/all.tsv"
    conda:
        env_file("report")
    threads: 1
    resources:
        mem_mb=256,
        runtime=10,
    params:
        **step_job(
            {
                "env_files": [
                    _from_workdir(p) for p in sorted(ENVS_DIR.glob("*.yaml"))
                ],
                "snakemake_version": snakemake_version,
                "gpu_requests": {
                    "convert": config["convert"]["gpu"],
                    "scenes": config["scenes"]["gpu"],
                    "diarization": config["diarization"]["gpu"],
                },
                "results": "results",
            }
        ),
        python=env_python("report"),
        step=step_command("diagnostics"),
    shell:
        "{params.python} {params.step} {params.job} --threads {threads} --log {log}"
