#!/usr/bin/env bash
# Session 9's second machine: (1) which generated convolution kernel made tiny_resnet wrong in fp16
# (test conv-switches), (2) the e2e benchmark with the new defaults (1×1 convs on cuDNN, pooling not folded) and
# A/B columns (stem on cuDNN; pooling folded), (3) ResNet-50 batch 128 fp16 / int8 simulated / int8 convolutions
# (fp16 weights recovered on the int8 grid, int8 engines timed). Logs in $OUT/s9.tgz; tables printed.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="${OUT:-$ROOT/.device-out}"
LOGS=/tmp/s9; mkdir -p "$LOGS"
S=$(date +%s)
el() { echo "$(( $(date +%s) - S ))s"; }
pack() { tar czf "$OUT/s9.tgz" -C /tmp s9 2>/dev/null; }

echo "== 1. conv switches ($(el))"
OUT="$LOGS/sw" TORCHC_GPU_TIMEOUT=80 bash "$ROOT/scripts/gpu.sh" test conv-switches >"$LOGS/switches.log" 2>&1
echo "rc=$? ($(el))"
grep -E "\[conv-switches\]" "$LOGS/switches.log" | sed -E 's/,"runners".*//' | head -24
grep -E "ℹ (pass|fail)" "$LOGS/switches.log"
pack

if [ "${S9_INT8_S:-230}" = 0 ]; then echo "== 2. int8 skipped (S9_INT8_S=0)"; else
echo "== 2. int8 ResNet-50 b128 ($(el))"
OUT="$LOGS/int8" INT8_ENGINE_PART=resnet50 TORCHC_GPU_TIMEOUT="${S9_INT8_S:-230}" \
  bash "$ROOT/scripts/gpu.sh" test int8-engine >"$LOGS/int8.log" 2>&1
echo "rc=$? ($(el))"
grep -E "^\||ℹ (pass|fail)|✖" "$LOGS/int8.log" | head -12
grep -oE "int8 convs\",\"gpuMs[^]]*" "$LOGS/int8.log" | cut -c1-700 | head -2
pack
fi
if [ "${S9_E2E:-1}" = 0 ]; then echo "== 3. e2e skipped (S9_E2E=0)"; else
echo "== 3. e2e ($(el))"
OUT="$LOGS/e2e" TORCHC_RUNTIME_DIR=/tmp/rt TORCHC_GPU_TIMEOUT=110 bash "$ROOT/scripts/gpu.sh" bench e2e >"$LOGS/e2e.log" 2>&1
echo "rc=$? ($(el))"
grep -E "^\|" "$LOGS/e2e.log" | head -6 | tee "$OUT/E2E-torchc.md"
pack
fi

nvidia-smi --query-gpu=name --format=csv,noheader
echo "== done ($(el))"
