#!/usr/bin/env bash
# Run by `snakemake --sdm conda` after creating envs/transcribe.yaml: pins whose declared dependencies are not
# needed go in without them (see the `#   - ` lines of the env file).
set -euo pipefail
python -m pip install --no-deps openai-whisper==20250625
