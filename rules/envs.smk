# Without --sdm conda: build a rule's virtualenv on first use from its envs/<name>.yaml pins.


rule venv:
    input:
        Path(workflow.basedir) / "envs" / "{env}.yaml",
    output:
        str(VENV_DIR / "{env}" / "ready"),
    log:
        "logs/venv/{env}.log",
    localrule: True
    shell:
        "{sys.executable} {TOOLS}/build_env.py {input} {VENV_DIR}/{wildcards.env} --ready {output} > {log} 2>&1"
