# Optional inputs from URLs (config `sources`): one checkpoint per link, then a table of all links (written by the
# workflow's onerror handler from the same function when some link failed).


checkpoint download:
    input:
        env=env_ready("download"),
    output:
        folder=directory(f"{DOWNLOAD_DIR}/{{link}}"),
    log:
        "logs/download/{link}.log",
    benchmark:
        "results/benchmarks/download/{link}.tsv"
    conda:
        env_file("download")
    threads: 1
    resources:
        mem_mb=256,
        runtime=120,
    params:
        **step_job(lambda wc: {**config["download"], "link": LINKS[wc.link]}),
        python=env_python("download"),
        step=step_command("download"),
    shell:
        "{params.python} {params.step} {params.job} --threads {threads} --log {log}"


rule downloads_table:
    input:
        status=[f"{DOWNLOAD_DIR}/{link}" for link in sorted(LINKS)],
        env=env_ready("download"),
    output:
        table="results/downloads.tsv",
    log:
        "logs/downloads_table.log",
    benchmark:
        "results/benchmarks/downloads_table.tsv"
    conda:
        env_file("download")
    threads: 1
    resources:
        mem_mb=256,
        runtime=5,
    params:
        **step_job(DOWNLOADS_TABLE),
        python=env_python("download"),
        step=step_command("download:run_table"),
    shell:
        "{params.python} {params.step} {params.job} --threads {threads} --log {log}"
