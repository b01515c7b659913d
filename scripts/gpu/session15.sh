#!/usr/bin/env bash
# Session 15's device runs (chain calls on one warm machine; it idles out 30 s after a call). Logs go to
# $OUT/s15-<part>.tgz.
#   bash scripts/gpu/session15.sh   (S_S=590; STEPS="1 2 3" picks the steps and their order)
#     1. session 14's PART=1 (peers for MODELS, torchc on them, the A/Bs AB1…AB3), at most S14_S seconds;
#     2. the per-phase times of `torchc compile --precision fp16` of EfficientNet-B0 at b128 (issue 13's
#        cold-compile bar), from step 1's export: cold, warm, and cold with TORCHC_NVRTC_PROGRAMS=8 and with
#        TORCHC_NVRTC_SPLIT_COMPILE=0;
#     3. int8 ResNet-50 batch 128 with its per-kind profile (issue 14: where the int8 engine's time goes);
#     4. bench conv-precision-sweep: cuDNN fp16 against int8 and fp8 on every ResNet-50 / EfficientNet-B0 layer.
TAG=s15; S_DEFAULT=590; source "$(dirname "${BASH_SOURCE[0]}")/session-lib.sh"

step1() {
  echo "== 1. session 14 part 1 ($(el))"
  PART=1 S_S="${S14_S:-250}" OUT="$LOGS/s14" bash "$ROOT/scripts/gpu/session14.sh" 2>&1 | grep -vE "^\s*$" | tail -100
  cp "$LOGS"/s14/*.md "$OUT/" 2>/dev/null
  pack
}

step2() {
  echo "== 2. compile EfficientNet-B0 b128: cold, warm, cold with NVRTC split 8 ways, cold with NVRTC's split-compile ($(el))"
  E="$DIR/efficientnet_b0_b128.pt2"
  CACHE=$(mktemp -d)
  for c in cold warm programs8 split0; do
    L=$(( $(left) - ${COMPILE_RESERVE_S:-10} )); [ "$L" -gt 40 ] && L=40
    [ -s "$E" ] && [ "$L" -gt 15 ] || { echo "compile $c skipped"; continue; }
    envs=(); dir="$CACHE"
    case $c in
      programs8) envs=(TORCHC_NVRTC_PROGRAMS=8); dir=$(mktemp -d) ;;
      split0) envs=(TORCHC_NVRTC_SPLIT_COMPILE=0); dir=$(mktemp -d) ;;
    esac
    T=$(date +%s%N)
    env "${envs[@]}" TORCHC_CACHE_DIR="$dir" timeout "$L" bash "$ROOT/scripts/gpu.sh" torchc compile "$E" \
      --backend cuda --precision fp16 -o /tmp/e.torchc >"$LOGS/compile-$c.log" 2>&1
    echo "compile $c rc=$? $(( ($(date +%s%N) - T) / 1000000 )) ms wall"
    grep -iE "engine build|nvrtc|^load|error" "$LOGS/compile-$c.log" | tail -4
  done
  pack
}

step3() {
  echo "== 3. int8 ResNet-50 b128 with its profile ($(el))"
  c=$(( $(left) - 10 )); [ "$c" -gt "${INT8_S:-260}" ] && c=${INT8_S:-260}
  if [ "$c" -gt 60 ]; then
    int8_resnet50 "$c"
  else echo "int8 skipped: ${c}s left"; fi
  pack
}

step4() {
  echo "== 4. cuDNN fp16 against int8 and fp8, layer by layer at batch 128 ($(el))"
  c=$(( $(left) - 10 )); [ "$c" -gt "${SWEEP_S:-120}" ] && c=${SWEEP_S:-120}
  if [ "$c" -gt 30 ]; then
    OUT="$LOGS/cps" TORCHC_GPU_TIMEOUT=$c bash "$ROOT/scripts/gpu.sh" bench conv-precision-sweep >"$LOGS/cps.log" 2>&1
    echo "sweep rc=$? ($(el))"
    if [ -s "$LOGS/cps/conv-precision-sweep.md" ]; then grep -E "^\||FAIL" "$LOGS/cps/conv-precision-sweep.md" | head -60
    else grep -E "Error|error|FAIL" "$LOGS/cps.log" | head -20; fi
  else echo "sweep skipped: ${c}s left"; fi
  pack
}

for n in ${STEPS:-1 2 3}; do "step$n"; done
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
echo "== done ($(el))"
