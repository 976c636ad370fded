#!/usr/bin/env bash
# Every GPU of one host: the same program; jit over a Mesh of all visible
# devices shards the batch (train.batch_size is global: 16 clips as in the
# paper, or scale it and train.lr together). Edit: CONFIG, DATA, INIT,
# WORKDIR, BATCH.
set -euo pipefail
CONFIG=${CONFIG:-configs/ucf101.py:mstsm_tfdem}
DATA=${DATA:-$HOME/tfds}
INIT=${INIT:-}
WORKDIR=${WORKDIR:-runs/ucf101_split1}
BATCH=${BATCH:-64}
python -m mstsm_jax.train --config="$CONFIG" --workdir="$WORKDIR" \
  --config.data.data_dir="$DATA" --config.init_from="$INIT" \
  --config.train.batch_size="$BATCH" --config.data.workers=${WORKERS:-12} \
  --config.model.dtype=bfloat16 "$@"
