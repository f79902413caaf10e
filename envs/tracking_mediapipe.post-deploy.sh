#!/usr/bin/env bash
# Under --sdm conda: install the pins of envs/tracking_mediapipe.yaml that must skip their declared
# dependencies (mediapipe would pull jax and GUI OpenCV); build_env.py does the same for the virtualenvs.
set -euo pipefail
python -m pip install --no-deps mediapipe==0.10.21
