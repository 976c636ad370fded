#!/usr/bin/env bash
# TPU VM (all workers of a pod slice run the same command). Edit: TPU, ZONE,
# PROJECT_DIR (this repo, cloned on every worker), DATA and WORKDIR (a
# shared path or a gs:// bucket), CONFIG.
set -euo pipefail
TPU=${TPU:-my-tpu}
ZONE=${ZONE:-us-central2-b}
PROJECT_DIR=${PROJECT_DIR:-~/mstsm-jax}
CONFIG=${CONFIG:-configs/ucf101.py:mstsm_tfdem}
DATA=${DATA:-gs://my-bucket/tfds}
WORKDIR=${WORKDIR:-gs://my-bucket/runs/ucf101_split1}
gcloud compute tpus tpu-vm ssh "$TPU" --zone="$ZONE" --worker=all --command="
  cd $PROJECT_DIR && python3 -m venv .venv && .venv/bin/pip install -q -e . 'jax[tpu]' &&
  .venv/bin/python -m mstsm_jax.train --distributed --config=$CONFIG \
    --workdir=$WORKDIR --config.data.data_dir=$DATA \
    --config.model.dtype=bfloat16 --config.train.batch_size=128"
