#!/usr/bin/env bash
# Session 16's device runs. Logs go to $OUT/s16-<part>.tgz.
#   bash scripts/gpu/session16.sh   (S_S=590; STEPS="sparse int8" picks the steps and their order)
#     sparse: the sparsity GPU test's device-plan checks (relu(x·Wᵀ + b + r) with the residual as cuSPARSELt's C)
#             and SPARSE_PART (default resnet50: 2:4-pruned ResNet-50 at batch 32, its stride-1 1×1 convolutions
#             timed cuSPARSELt against cuDNN), at most SPARSE_S seconds (default 240);
#     int8:   session 15's step 3 (int8 ResNet-50 b128 with its profile), at most INT8_S seconds;
#     serve:  serve-load (EfficientNet-B0 fp16 batch-1 requests, batching on and off) with --ingest-threads INGEST
#             (default 8) at concurrency SERVE_CONCURRENCY (default 1,16,128), SERVE_POINT_S (default 8) per
#             point, at most SERVE_S seconds (default 300); issue 16's bars are printed by the bench.
TAG=s16; S_DEFAULT=590; source "$(dirname "${BASH_SOURCE[0]}")/session-lib.sh"

step_sparse() {
  echo "== sparse: device plans and ${SPARSE_PART:-resnet50} ($(el))"
  c=$(( $(left) - 10 )); [ "$c" -gt "${SPARSE_S:-240}" ] && c=${SPARSE_S:-240}
  OUT="$LOGS/sparse" TORCHC_SPARSE_PART="${SPARSE_PART:-resnet50}" TORCHC_GPU_TIMEOUT=$c \
    bash "$ROOT/scripts/gpu.sh" test sparsity >"$LOGS/sparse.log" 2>&1
  echo "sparse rc=$? ($(el))"
  grep -E "✓|✖|×|# (pass|fail|skip)|not ok|^ok" "$LOGS/sparse.log" | head -30
  grep -E '\[sparsity\] (plan|resnet50 1x1|resnet50 |encoder )' "$LOGS/sparse.log" | cut -c1-600 | head -12
  grep -E "AssertionError|Error:" "$LOGS/sparse.log" | head -8
  pack
}

step_serve() {
  echo "== serve-load with --ingest-threads ${INGEST:-8} ($(el))"
  c=$(( $(left) - 10 )); [ "$c" -gt "${SERVE_S:-300}" ] && c=${SERVE_S:-300}
  if [ "$c" -gt 90 ]; then
    OUT="$LOGS/serve" SERVE_INGEST_THREADS="${INGEST:-8}" SERVE_CONCURRENCY="${SERVE_CONCURRENCY:-1,16,128}" \
      SERVE_POINT_S="${SERVE_POINT_S:-8}" TORCHC_GPU_TIMEOUT=$c bash "$ROOT/scripts/gpu.sh" bench serve-load \
      >"$LOGS/serve.log" 2>&1
    echo "serve-load rc=$? ($(el))"
    grep -E "^\||bar|MISSED|met|matched|Error" "$LOGS/serve.log" | head -20
  else echo "serve-load skipped: ${c}s left"; fi
  pack
}

for n in ${STEPS:-sparse int8}; do "step_$n"; done
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
echo "== done ($(el))"
