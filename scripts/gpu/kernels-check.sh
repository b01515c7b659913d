#!/usr/bin/env bash
# Sessions 6–8's unmeasured kernels in one device command (~430 s of the 600), for a machine that may be lent once:
#   1. correctness, two lanes (scripts/gpu/final-check.sh phase 2): models (timm EfficientNet-B0 against PyTorch) and
#      the one-GPU half of multi-gpu; cuda-engine (the SE-block kernels) and transformer-fusion;
#   2. the e2e benchmark: EfficientNet-B0 GPU-only time at batch 1 and 128 with the SE-pooling fold and the generated
#      1×1 convolutions each turned off (the A/B), end to end plain and pinned ($OUT/E2E-torchc.md);
#   3. a cold (empty caches) and a warm compile of EfficientNet-B0 batch 1 (issue 13's ≤ 8 s / ≤ 2 s);
#   4. if time is left, the small part of the int8 engine test (does cuDNN run the int8 graphs at all).
# Everything worth reading is printed; logs go to $OUT/kernels-check.tgz. KERNELS_CHECK_S (default 560) bounds it.
#   bash scripts/gpu/kernels-check.sh        (on the GPU machine, carry .gpu-carry)
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="${OUT:-$ROOT/.device-out}"
LOGS=/tmp/kernels-check; mkdir -p "$LOGS"
S=$(date +%s)
el() { echo "$(( $(date +%s) - S ))s"; }
left() { echo $(( ${KERNELS_CHECK_S:-560} - ($(date +%s) - S) )); }
pack() { tar czf "$OUT/kernels-check.tgz" -C /tmp kernels-check 2>/dev/null; }

echo "== 1. correctness ($(el))"
OUT="$LOGS/check" NO_E2E=1 TORCHC_CHECK_S=$(( $(left) - 220 )) TORCHC_PHASE3_S=0 LANE_A="models multi-gpu" \
  LANE_B="cuda-engine transformer-fusion" PHASE3="" bash "$ROOT/scripts/gpu/final-check.sh" >"$LOGS/check.log" 2>&1
tail -14 "$LOGS/check.log"
pack

echo "== 2. e2e A/B ($(el))"
L=$(( $(left) - 60 ))
if [ "$L" -gt 60 ]; then
  OUT="$LOGS/e2e" TORCHC_RUNTIME_DIR=/tmp/rt TORCHC_GPU_TIMEOUT=$(( L < 180 ? L : 180 )) \
    bash "$ROOT/scripts/gpu.sh" bench e2e >"$LOGS/e2e.log" 2>&1
  echo "e2e rc=$? ($(el))"
  grep -E "^\|" "$LOGS/e2e.log" | head -6 | tee "$OUT/E2E-torchc.md"
else
  echo "e2e skipped: ${L}s left"
fi
pack

echo "== 3. compile, cold then warm ($(el))"
E=/tmp/rt/efficientnet_b0_b1.pt2
CACHE=$(mktemp -d)
for c in cold warm; do
  L=$(( $(left) - 5 ))
  [ "$L" -gt 20 ] || { echo "compile $c skipped: ${L}s left"; continue; }
  T=$(date +%s%N)
  TORCHC_CACHE_DIR="$CACHE" timeout "$(( L < 60 ? L : 60 ))" bash "$ROOT/scripts/gpu.sh" torchc compile "$E" \
    --backend cuda --precision fp16 -o /tmp/e.torchc >"$LOGS/compile-$c.log" 2>&1
  echo "compile $c rc=$? $(( ($(date +%s%N) - T) / 1000000 )) ms wall (process start and library loading included)"
  grep -iE "^(load|build|compile|total)" "$LOGS/compile-$c.log" | tail -4
done
pack

echo "== 4. int8 convolutions in the engine, small part ($(el))"
L=$(( $(left) - 5 ))
if [ "$L" -gt 45 ]; then
  OUT="$LOGS/int8" INT8_ENGINE_PART=small TORCHC_GPU_TIMEOUT=$(( L < 80 ? L : 80 )) \
    bash "$ROOT/scripts/gpu.sh" test int8-engine >"$LOGS/int8-small.log" 2>&1
  echo "int8 small rc=$? ($(el))"
  grep -E "\[int8-engine\]|ℹ (pass|fail)|✖" "$LOGS/int8-small.log" | cut -c1-500 | head -12
else
  echo "int8 small skipped: ${L}s left"
fi
pack
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
echo "== done ($(el))"
