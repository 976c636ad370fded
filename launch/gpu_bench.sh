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
#   TRTEXEC  TensorRT's trtexec [trtexec, if on PATH]
# Results: $OUT/env.txt, ours.txt, torch.txt (+ torch_tsm.json), ours_tsm.txt,
# trace.tgz, and, where trtexec and the .[onnx] extra are there, trt.txt
# (the ONNX export of the same model built and timed by TensorRT, fp16, batch
# 1 and 16) beside ours_latency.txt (our XLA GPU path, batch 1).
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

# TensorRT beside our XLA GPU path: the model exported to ONNX (random
# weights, same shapes), built by trtexec for batch 1 and 16.
TRTEXEC=${TRTEXEC:-trtexec}
if command -v "$TRTEXEC" >/dev/null && "$PY" -c 'import jax2onnx' 2>/dev/null; then
  "$PY" -c 'import sys; sys.path.insert(0, "tests"); import model_dirs
from mstsm_jax.configs import load_config
model_dirs.model_dir(sys.argv[1], load_config("configs/ucf101.py:mstsm_tfdem"))' "$OUT/r50"
  stage export_onnx "$PY" -m mstsm_jax.export --checkpoint="$OUT/r50" \
    --output="$OUT/r50.onnx" --format=onnx
  for b in 1 16; do
    stage "trt_b$b" "$TRTEXEC" --onnx="$OUT/r50.onnx" --fp16 \
      --shapes=clips:${b}x8x224x224x3 --iterations=50
  done
  stage ours_latency "$PY" -m mstsm_jax.bench \
    --config=configs/ucf101.py:mstsm_tfdem --config.model.dtype=bfloat16 \
    --batch=16 --what=infer,latency --steps="$STEPS" --json
  rm -rf "$OUT/r50" "$OUT/r50.onnx"
else
  echo "== trt: trtexec or jax2onnx not installed here: skipped"
fi
