#!/usr/bin/env bash
# One GPU. Edit: CONFIG, DATA (prepared data dir), INIT (converted
# Kinetics/ImageNet checkpoint, or empty), WORKDIR.
set -euo pipefail
CONFIG=${CONFIG:-configs/ucf101.py:mstsm_tfdem}
DATA=${DATA:-$HOME/tfds}
INIT=${INIT:-}
WORKDIR=${WORKDIR:-runs/ucf101_split1}
export CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-0}
export XLA_PYTHON_CLIENT_MEM_FRACTION=${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.9}
python -m mstsm_jax.train --config="$CONFIG" --workdir="$WORKDIR" \
  --config.data.data_dir="$DATA" --config.init_from="$INIT" \
  --config.data.workers=${WORKERS:-8} --config.model.dtype=bfloat16 "$@"
