# The inputs and provenance of finalize (rules/finalize.smk): optional steps' outputs, the effective config and
# the envs of the steps that produce each archived video.
from snakemake import __version__ as snakemake_version

# --- optional steps: extra inputs of finalize (validated and archived when the step is on) ---
OPTIONAL_STEPS = [
    step for step in ("expressions", "transcribe") if config[step]["enabled"]
]
OPTIONAL_INPUTS = {
    "expressions": {"expressions": "expressions.json"},
    "transcribe": {
        "transcript": "transcript.json",
        "transcript_vtt": "transcript.vtt",
        "transcript_srt": "transcript.srt",
    },
}


def optional_inputs(wildcards):
    folder = f"results/{wildcards.project}/{wildcards.video}"
    return {
        name: f"{folder}/{file}"
        for step in OPTIONAL_STEPS
        for name, file in OPTIONAL_INPUTS[step].items()
    }


# --- provenance: the effective config and the envs of the steps that produce each archived video ---
STEP_CONFIG = {
    step: config[step]
    for step in (
        "extract",
        "convert",
        "scenes",
        "diarization",
        "tracking",
        "link_speakers",
        *OPTIONAL_STEPS,
    )
}
STEP_ENVS = [
    "extract",
    "convert",
    "scenes",
    DIARIZATION_ENV,
    TRACKING_ENV,
    *OPTIONAL_STEPS,
    "finalize",
]


def env_pins(env):
    """An env's pins as metadata.json records them: conda packages and every pip pin (--no-deps ones too)."""
    pins = read_env(ENVS_DIR / f"{env}.yaml")
    return {"conda": pins["conda"], "pip": pins["pip"] + pins["nodeps"]}


# finalize's settings: its config section and the provenance it records in each archive's metadata.json.
FINALIZE_SETTINGS = {
    **config["finalize"],
    "schemas": _from_workdir(SCHEMAS_DIR),
    "config": STEP_CONFIG,
    "environments": {env: env_pins(env) for env in STEP_ENVS},
    "snakemake_version": snakemake_version,
}
