#!/usr/bin/env bash
# The whole GPU comparison in one call (issue 8): ours (MSTSM-TFDEM and TSM,
# bf16) and the PyTorch TSM reference (eager and torch.compile, bf16
# autocast) on the same card, plus a jax.profiler trace of three training
# steps. Stages run in order of importance; one that fails (or outlives
# STAGE_TIMEOUT seconds) is reported and the next one still runs.
#
# Environment (defaults in brackets):
#   REF      path of torch_tsm_reference.py inside the repo: it must travel
#            with the working tree [shared/bench/torch_tsm_reference.py]
#   OUT      results folder [bench_out]; keep it flat, the device tool
#            returns files at most two folders down
#   PYTHON   [python3]; BATCH [16,64]; STEPS [20]; REPEATS [5] (ours)
#   REF_BATCHES, REF_MODES  passed on; honoured by a reference copy that
#            reads them (the upstream script runs 16,64 x eager,compile)
#   STAGE_TIMEOUT  seconds per stage [0 = none]
# Results: $OUT/env.txt, ours.txt, torch.txt (+ torch_tsm.json), ours_tsm.txt,
# trace.tgz.
set -uo pipefail
PY=${PYTHON:-python3}
REF=${REF:-shared/bench/torch_tsm_reference.py}
OUT=${OUT:-bench_out}
BATCH=${BATCH:-16,64}
STEPS=${STEPS:-20}
REPEATS=${REPEATS:-5}
STAGE_TIMEOUT=${STAGE_TIMEOUT:-0}
export PYTHONUNBUFFERED=1 OUT
mkdir -p "$OUT"
TRACE=$(mktemp -d)  # the trace's own tree is too deep to come back as is

stage() {  # stage NAME CMD...: CMD's output to $OUT/NAME.txt, rc and seconds
  local name=$1 t0=$SECONDS rc
  shift
  echo "== $name: $*"
  timeout "$STAGE_TIMEOUT" "$@" 2>&1 | tee "$OUT/$name.txt"
  rc=${PIPESTATUS[0]}
  echo "== $name: rc=$rc, $((SECONDS - t0)) s"
}

{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  "$PY" -c 'import jax, sys; print("python", sys.version.split()[0], "jax", jax.__version__, jax.devices())'
  "$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())'
} 2>&1 | tee "$OUT/env.txt"

stage ours "$PY" -m mstsm_jax.bench --config=configs/ucf101.py:mstsm_tfdem \
  --config.model.dtype=bfloat16 --batch="$BATCH" --what=train,infer,latency \
  --steps="$STEPS" --repeats="$REPEATS" --profile="$TRACE" --json
tar -czf "$OUT/trace.tgz" -C "$TRACE" . && ls -l "$OUT/trace.tgz"

if [ -f "$REF" ]; then
  stage torch "$PY" "$REF"
else
  echo "== torch: REF=$REF not found (it must travel with the repo): skipped"
fi

stage ours_tsm "$PY" -m mstsm_jax.bench --config=configs/ucf101.py:tsm \
  --config.model.dtype=bfloat16 --batch="${BATCH##*,}" --what=train,infer \
  --steps="$STEPS" --repeats="$REPEATS" --json
