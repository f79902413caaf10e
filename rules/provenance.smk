# The inputs and provenance of finalize (rules/finalize.smk): optional steps' outputs, the effective config and
# the envs of the steps that produce each archived video.
from snakemake import __version__ as snakemake_version

# --- optional steps: extra inputs of finalize (validated and archived when the step is on) ---
OPTIONAL_STEPS = [
    step
    for step in ("expressions", "identity", "transcribe", "export")
    if config[step]["enabled"]
]
VIDEO_DIR = "results/{project}/{video}"
OPTIONAL_INPUTS = {
    "expressions": {"expressions": f"{VIDEO_DIR}/expressions.json"},
    "identity": {"identity": f"{VIDEO_DIR}/identity.json"},
    "transcribe": {
        "transcript": f"{VIDEO_DIR}/transcript.json",
        "transcript_vtt": f"{VIDEO_DIR}/transcript.vtt",
        "transcript_srt": f"{VIDEO_DIR}/transcript.srt",
    },
    # EXPORT_FILES: rules/export.smk (review.mp4 only with export.review_video)
    "export": {f"export_{name}": path for name, path in EXPORT_FILES.items()},
}


def optional_inputs(wildcards):
    return {
        name: path.format(**wildcards)
        for step in OPTIONAL_STEPS
        for name, path in OPTIONAL_INPUTS[step].items()
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
