#!/usr/bin/env bash
# Trains and evaluates the three official splits and prints the per-split
# table with mean +- std. Edit: CONFIG, DATA, INIT, WORKDIR.
set -euo pipefail
CONFIG=${CONFIG:-configs/ucf101.py:mstsm_tfdem}
DATA=${DATA:-$HOME/tfds}
INIT=${INIT:-}
WORKDIR=${WORKDIR:-runs/ucf101}
python -m mstsm_jax.splits --config="$CONFIG" --workdir="$WORKDIR" \
  --splits=1,2,3 --config.data.data_dir="$DATA" --config.init_from="$INIT" \
  --config.model.dtype=bfloat16 "$@"
