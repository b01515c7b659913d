#!/usr/bin/env bash
# Session 19's device runs (the generated int8 implicit-GEMM convolution, issue 14). Logs go to $OUT/s19-<part>.tgz.
#   STEPS="igemm sweep" bash scripts/gpu/session19.sh          (S_S=590)
#     igemm: test igemm-conv: the kernel's CPU-test cases on the device, each output equal to the reference (the
#            check of the mma.sync s8 fragment layout on real tensor cores), then two int8 convolutions in the
#            engine forced onto it (TORCHC_INT8_IGEMM=force) against cuDNN's int8 graph and the int8 reference;
#     sweep: bench igemm-sweep: ResNet-50's layers at batch 128, generated (every candidate, fp16 and int8 out,
#            each checked against cuDNN int8) against cuDNN int8 and fp16 (IGEMM_SWEEP_MODELS to add EfficientNet);
#     int8:  the int8-engine ResNet-50 part with TORCHC_INT8_IGEMM=1 (the speed probe and the build time the
#            generated kernel against cuDNN int8 per problem), at most INT8_S (default 300) seconds;
#     runtime, serve, profile: as in session17.sh.
TAG=s19; S_DEFAULT=590; source "$(dirname "${BASH_SOURCE[0]}")/session-lib.sh"

step_igemm() {
  echo "== igemm-conv GPU test ($(el))"
  c=$(( $(left) - 10 )); [ "$c" -gt "${IGEMM_S:-150}" ] && c=${IGEMM_S:-150}
  OUT="$LOGS/igemm" TORCHC_GPU_TIMEOUT=$c bash "$ROOT/scripts/gpu.sh" test igemm-conv >"$LOGS/igemm.log" 2>&1
  echo "igemm-conv rc=$? ($(el))"
  grep -E "✔|✖|# (pass|fail|skip)|not ok" "$LOGS/igemm.log" | head -20
  grep -E '^\[igemm-conv\]' "$LOGS/igemm.log" | cut -c1-300 | head -16
  grep -E "AssertionError|Error:" "$LOGS/igemm.log" | head -6
  pack
}

step_sweep() {
  echo "== igemm-sweep ($(el))"
  c=$(( $(left) - 10 )); [ "$c" -gt "${SWEEP_S:-240}" ] && c=${SWEEP_S:-240}
  OUT="$LOGS/sweep" TORCHC_GPU_TIMEOUT=$c bash "$ROOT/scripts/gpu.sh" bench igemm-sweep >"$LOGS/sweep.log" 2>&1
  echo "sweep rc=$? ($(el))"
  if [ -s "$LOGS/sweep/igemm-sweep.md" ]; then grep -E "^\||FAIL" "$LOGS/sweep/igemm-sweep.md" | head -40
  else tail -20 "$LOGS/sweep.log"; fi
  pack
}

step_int8() {
  echo "== int8 ResNet-50 b128 with TORCHC_INT8_IGEMM=1 ($(el))"
  c=$(( $(left) - 10 )); [ "$c" -gt "${INT8_S:-300}" ] && c=${INT8_S:-300}
  if [ "$c" -gt 60 ]; then TORCHC_INT8_IGEMM=1 int8_resnet50 "$c"; else echo "int8 skipped: ${c}s left"; fi
  grep -E "implicit GEMM" "$LOGS/int8.log" | head -4
  pack
}

for n in ${STEPS:-igemm sweep}; do "step_$n"; done
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
echo "== done ($(el))"
