# Optional inputs from URLs (config `sources`): one checkpoint per link, then a table of all links.


checkpoint download:
    input:
        env=env_ready("download"),
    output:
        directory(f"{DOWNLOAD_DIR}/{{link}}"),
    log:
        "logs/download/{link}.log",
    benchmark:
        "results/benchmarks/download/{link}.tsv"
    params:
        link=lambda wc: link_args(LINKS[wc.link]),
        timeout=config["download"]["timeout"],
        retries=config["download"]["retries"],
    threads: 1
    resources:
        mem_mb=256,
        runtime=120,
    conda:
        "../envs/download.yaml"
    shell:
        "{PY[download]} {SCRIPTS}/download.py {params.link} --out {output} --history-dir {DOWNLOAD_DIR}"
        " --timeout {params.timeout} --retries {params.retries} --log {log}"


rule downloads_table:
    input:
        status=[f"{DOWNLOAD_DIR}/{link}" for link in sorted(LINKS)],
        env=env_ready("download"),
    output:
        "results/downloads.tsv",
    log:
        "logs/downloads_table.log",
    benchmark:
        "results/benchmarks/downloads_table.tsv"
    params:
        status=lambda wc, input: " ".join(f"{d}/status.json" for d in input.status),
        manual=" ".join(shlex.quote(url) for url in MANUAL_LINKS),
    threads: 1
    resources:
        mem_mb=256,
        runtime=5,
    conda:
        "../envs/download.yaml"
    shell:
        "{PY[download]} {SCRIPTS}/downloads_table.py --status {params.status} --manual {params.manual}"
        " --output {output} --log {log}"
