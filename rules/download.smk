# Optional inputs from URLs (config `sources`): one checkpoint per link, then a table of all links (written by the
# workflow's onerror handler from the same function when some link failed).


checkpoint download:
    input:
        env=env_ready("download"),
    output:
        directory(f"{DOWNLOAD_DIR}/{{link}}"),
    log:
        "logs/download/{link}.log",
    benchmark:
        "results/benchmarks/download/{link}.tsv"
    conda:
        "../envs/download.yaml"
    threads: 1
    resources:
        mem_mb=256,
        runtime=120,
    params:
        python=env_python("download"),
        script=script_path("download.py"),
        link=lambda wc: link_args(LINKS[wc.link]),
        history_dir=lambda wc, output: Path(output[0]).parent,
        timeout=config["download"]["timeout"],
        retries=config["download"]["retries"],
    shell:
        "{params.python} {params.script} {params.link} --out {output} --history-dir {params.history_dir}"
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
    conda:
        "../envs/download.yaml"
    threads: 1
    resources:
        mem_mb=256,
        runtime=5,
    params:
        python=env_python("download"),
        script=script_path("downloads_table.py"),
        links=" ".join(shlex.quote(f"{l}={LINKS[l]['url']}") for l in sorted(LINKS)),
        download_dir=DOWNLOAD_DIR,
        manual=" ".join(shlex.quote(url) for url in MANUAL_LINKS),
    shell:
        "{params.python} {params.script} --links {params.links} --download-dir {params.download_dir}"
        " --manual {params.manual} --output {output} --log {log}"
