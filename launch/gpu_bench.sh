#!/usr/bin/env bash
# The whole GPU comparison in one call (issue 8): ours (bf16, batch 16 and
# 64) and the PyTorch TSM reference (eager and torch.compile, same batches,
# bf16 autocast) on the same card, plus a profiler trace. Edit: REF (path of
# torch_tsm_reference.py), OUT (results folder).
set -euo pipefail
REF=${REF:-shared/bench/torch_tsm_reference.py}
OUT=${OUT:-bench_out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python -m mstsm_jax.bench --config=configs/ucf101.py:mstsm_tfdem \
  --config.model.dtype=bfloat16 --batch=16,64 --what=train,infer,latency \
  --steps=20 --repeats=5 --profile="$OUT/trace" --json | tee "$OUT/ours.txt"
python -m mstsm_jax.bench --config=configs/ucf101.py:tsm \
  --config.model.dtype=bfloat16 --batch=64 --what=train,infer \
  --steps=20 --repeats=5 --json | tee "$OUT/ours_tsm.txt"
OUT="$OUT" python "$REF" | tee "$OUT/torch.txt"
