# The inputs and provenance of finalize (rules/finalize.smk): optional steps' outputs, the effective config and
# the envs of the steps that produce each archived video.
from snakemake import __version__ as snakemake_version

from steps.tracking.engines import engine_family


# --- optional steps: extra inputs of finalize ---
def expressions_inputs(wildcards):
    """finalize validates and archives expressions.json when the step is on."""
    if not config["expressions"]["enabled"]:
        return {}
    return {
        "expressions": f"results/{wildcards.project}/{wildcards.video}/expressions.json"
    }


def expressions_finalize_args(wildcards, input):
    if "expressions" not in input.keys():
        return ""
    path = shlex.quote(input.expressions)
    return (
        f" --validate expressions={path}"
        f" --archive-as {wildcards.video}_expressions.json={path}"
    )


# --- provenance: the effective config and the envs of the steps that produce each archived video ---
STEP_CONFIG = {
    step: config[step]
    for step in ("extract", "convert", "scenes", "audio", "tracking", "link_speakers")
    + (("expressions",) if config["expressions"]["enabled"] else ())
}
STEP_ENVS = [
    "extract",
    "convert",
    "scenes",
    "pyannote" if config["audio"]["backend"] == "pyannote" else "diarization",
    f"tracking_{engine_family(config['tracking']['engine'])}",
    *(["expressions"] if config["expressions"]["enabled"] else []),
    "finalize",
]
