# Video analysis workflow: archives of videos in, per-video results out.
# The rules live in rules/ (one file per step; shared helpers in rules/common.smk), step logic in scripts/.
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config/config.yaml"


for _old, _new in {
    "audio": "diarization",
    "link": "link_speakers",
}.items():  # renamed in 2026-12
    if _old in config:
        raise WorkflowError(
            f"config: section '{_old}' is now called '{_new}': rename it in your config file"
        )

validate(config, "config/schema.yaml")


report: "reports/workflow.rst"


include: "rules/common.smk"
include: "rules/envs.smk"
include: "rules/inputs.smk"
include: "rules/run_end.smk"
include: "rules/report_items.smk"
include: "rules/venv.smk"
include: "rules/download.smk"
include: "rules/extract.smk"
include: "rules/convert.smk"
include: "rules/scenes.smk"
include: "rules/diarization.smk"
include: "rules/tracking.smk"
include: "rules/expressions.smk"
include: "rules/link_speakers.smk"
include: "rules/identity.smk"
include: "rules/transcribe.smk"
include: "rules/reduce.smk"
include: "rules/export.smk"
include: "rules/provenance.smk"
include: "rules/finalize.smk"
include: "rules/summary.smk"
include: "rules/report.smk"
include: "rules/diagnostics.smk"


rule all:
    default_target: True
    input:
        all_outputs,
        RUN_OUTPUTS,
        PERSONS_OUTPUTS,
    localrule: True


onsuccess:
    notify_run("success")


onerror:
    write_run_tables()
    notify_run("error", log)
