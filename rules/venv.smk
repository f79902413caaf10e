# Without --sdm conda: build a venv on first use. No input file on purpose: the output name carries the pins'
# digest (see env_ready).
rule venv:
    output:
        str(VENV_DIR / "{env}" / "ready-{digest}"),
    log:
        "logs/venv/{env}-{digest}.log",
    localrule: True
    conda:
        "../envs/workflow.yaml"
    params:
        python=sys.executable,
        builder=TOOLS / "build_env.py",
        env_file=lambda wc: ENVS_DIR / f"{wc.env}.yaml",
        venv=lambda wc: VENV_DIR / wc.env,
    shell:
        "{params.python} {params.builder} {params.env_file} {params.venv} --ready {output}"
        " > {log} 2>&1"
