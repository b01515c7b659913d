#!/usr/bin/env bash
# Session 18's device runs. Logs go to $OUT/s18-<part>.tgz.
#   STEPS="b1prof runtime" bash scripts/gpu/session18.sh   (S_S=590)
#     b1prof:  EfficientNet-B0 exported at batch 1 and 128 (fixtures/export_runtime.py), then `torchc bench --profile`
#              at batch 1 (every step alone between CUDA events; the whole table kept), once per variant in
#              B1PROF_ENV (';'-separated ENV=VALUE sets; default: the defaults, the SE pooling folded into the
#              depthwise kernel, the fold with the old serial tile reader, the excite kernel's scalar loops), then
#              the quick end-to-end figures
#              (GPU only, plain, plain with pageable DMA, pinned in; bench e2e with E2E_QUICK=1);
#     runtime, int8, serve, profile: as in session17.sh.
TAG=s18; S_DEFAULT=590; source "$(dirname "${BASH_SOURCE[0]}")/session-lib.sh"

step_b1prof() {
  echo "== export EfficientNet-B0 b1/b128 ($(el))"
  [ -s /tmp/rt/efficientnet_b0_b1.pt2 ] || PYTHONUNBUFFERED=1 timeout 120 python3 "$ROOT/fixtures/export_runtime.py" /tmp/rt \
    >"$LOGS/export-rt.log" 2>&1
  echo "export rc=$? ($(el))"
  local i=0
  IFS=';' read -ra variants <<< "${B1PROF_ENV:-TORCHC_PDL=1;TORCHC_FOLD_SPATIAL_MEAN=1;TORCHC_FOLD_SPATIAL_MEAN=1 TORCHC_SE_POOL_SPLIT=0;TORCHC_EXCITE_VECTOR=0}"
  for v in "${variants[@]}"; do
    i=$((i + 1)); [ "$(left)" -gt 40 ] || break
    env $v timeout "$(( $(left) - 10 ))" bash "$ROOT/scripts/gpu.sh" torchc bench /tmp/rt/efficientnet_b0_b1.pt2 \
      --backend cuda --precision fp16 --profile --reps 200 >"$LOGS/profile-b1-$i.log" 2>&1
    echo "profile b1 [$v] rc=$? ($(el))"
    grep -vE "^ *[0-9]+  " "$LOGS/profile-b1-$i.log" | grep -E "median|^kind|^[a-z0-9× -]+ +[0-9]+ |^total|steps" | head -16
    echo "slowest steps:"; grep -E "^ *[0-9]+  " "$LOGS/profile-b1-$i.log" | sort -k3 -g -r | head -10 | cut -c1-160
  done
  if [ "$(left)" -gt 60 ]; then
    echo "== e2e quick ($(el))"
    OUT="$LOGS/e2e" E2E_QUICK=1 TORCHC_RUNTIME_DIR=/tmp/rt TORCHC_GPU_TIMEOUT=$(( $(left) - 10 > 120 ? 120 : $(left) - 10 )) \
      bash "$ROOT/scripts/gpu.sh" bench e2e >"$LOGS/e2e.log" 2>&1
    echo "e2e rc=$? ($(el))"; grep -E "^\||gpu|plain" "$LOGS/e2e.log" | head -8
  fi
  pack
}

for n in ${STEPS:-b1prof runtime}; do "step_$n"; done
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
echo "== done ($(el))"
