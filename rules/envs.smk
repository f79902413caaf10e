# Without --sdm conda: build a rule's virtualenv on first use from its envs/<name>.yaml pins.
# No input file on purpose: the output name carries the pins' digest (see env_ready in common.smk).


rule venv:
    output:
        str(VENV_DIR / "{env}" / "ready-{digest}"),
    log:
        "logs/venv/{env}-{digest}.log",
    params:
        env_file=lambda wc: ENVS_DIR / f"{wc.env}.yaml",
    localrule: True
    shell:
        "{sys.executable} {TOOLS}/build_env.py {params.env_file} {VENV_DIR}/{wildcards.env} --ready {output}"
        " > {log} 2>&1"
