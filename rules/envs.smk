# Environments: conda (--sdm conda) or, without it, per-env virtualenvs built from the same envs/<name>.yaml pins.
# Each step takes its env's marker as input ``env`` (env_ready), names the env file (env_file) for conda and
# runs its script with ``params.python`` (env_python).
from snakemake_interface_executor_plugins.settings import DeploymentMethod

from vidflow.envfiles import pins_digest, read_env

USE_CONDA = DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method
VENV_DIR = Path(config["venv_dir"]).resolve()


def env_python(env):
    """The interpreter that runs the scripts of env ``env`` (conda's ``python`` under --sdm conda)."""
    return "python" if USE_CONDA else _from_workdir(VENV_DIR / env / "bin" / "python")


def env_ready(env):
    """Input that makes Snakemake build the virtualenv first (nothing under conda).

    The marker is named after a digest of the env file's pins, so only a real change of
    pins rebuilds the venv and reruns that env's jobs (touching the file does nothing).
    """
    if USE_CONDA:
        return []
    return str(
        VENV_DIR / env / f"ready-{pins_digest(read_env(ENVS_DIR / f'{env}.yaml'))[:12]}"
    )


def env_file(env):
    """The env file for conda, relative to rules/."""
    return f"../envs/{env}.yaml"
