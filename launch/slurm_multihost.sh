#!/usr/bin/env bash
# Multi-host GPU under SLURM: one process per node, each seeing its GPUs.
# jax.distributed.initialize() (--distributed) reads SLURM's environment;
# every host reads its own 1/num_hosts of each batch from DATA (a shared
# filesystem) and WORKDIR must be shared too (orbax writes from all hosts).
# Edit the #SBATCH lines, CONFIG, DATA, INIT, WORKDIR, BATCH.
#SBATCH --job-name=mstsm
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=32
#SBATCH --time=12:00:00
set -euo pipefail
CONFIG=${CONFIG:-configs/ucf101.py:mstsm_tfdem}
DATA=${DATA:-/shared/tfds}
INIT=${INIT:-}
WORKDIR=${WORKDIR:-/shared/runs/ucf101_split1}
BATCH=${BATCH:-128}
srun python -m mstsm_jax.train --distributed --config="$CONFIG" \
  --workdir="$WORKDIR" --config.data.data_dir="$DATA" \
  --config.init_from="$INIT" --config.train.batch_size="$BATCH" \
  --config.data.workers=16 --config.model.dtype=bfloat16 "$@"
