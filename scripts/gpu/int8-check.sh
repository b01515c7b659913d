#!/usr/bin/env bash
# Issue 14's int8 convolutions in one device command (~300 s): the device-level cuDNN int8 graph (correctness on
# small shapes, the int8 output's rounding, ResNet-50 batch-128 layer timing against cuDNN fp16), then the engine
# (two quantized convolutions against the int8 reference; ResNet-50 batch 128 fp16 / int8 simulated / int8
# convolutions). Logs in $OUT/int8-check.tgz; tables printed last.
#   bash scripts/gpu/int8-check.sh        (on the GPU machine, carry .gpu-carry)
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="${OUT:-$ROOT/.device-out}"
LOGS=/tmp/int8-check; mkdir -p "$LOGS"
S=$(date +%s)
el() { echo "$(( $(date +%s) - S ))s"; }
pack() { tar czf "$OUT/int8-check.tgz" -C /tmp int8-check 2>/dev/null; }

echo "== 1. device int8 convolutions ($(el))"
OUT="$LOGS" TORCHC_QUANT_PART=convs TORCHC_GPU_TIMEOUT="${INT8_DEVICE_S:-150}" \
  bash "$ROOT/scripts/gpu.sh" test quant >"$LOGS/device.log" 2>&1
echo "rc=$? ($(el))"
grep -E "REFUSED|^\||engine|ℹ (pass|fail)|✖" "$LOGS/device.log" | cut -c1-300 | head -40
pack

# the two parts in their own processes, so a slow ResNet-50 build cannot hide the small part's result
for part in small resnet50; do
  echo "== 2. engine int8 convolutions: $part ($(el))"
  OUT="$LOGS" INT8_ENGINE_PART=$part TORCHC_GPU_TIMEOUT="$([ $part = small ] && echo 60 || echo "${INT8_ENGINE_S:-270}")" \
    bash "$ROOT/scripts/gpu.sh" test int8-engine >"$LOGS/engine-$part.log" 2>&1
  echo "rc=$? ($(el))"
  grep -E "^\||\[int8-engine\] \{\"check\":\"two convs .*(error|int8\")|ℹ (pass|fail)|✖|refus" "$LOGS/engine-$part.log" | cut -c1-600 | head -30
  pack
done
echo "== done ($(el))"
