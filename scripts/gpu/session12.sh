#!/usr/bin/env bash
# Session 12's device runs (chain parts on one warm machine; a machine idles out 30 s after a call). Everything
# worth reading is printed; logs go to $OUT/s12-<part>.tgz.
#   PART=1 bash scripts/gpu/session12.sh   (S_S=300)
#     1. pipelined host batches (dynamic.pipelineRows 16/32/64) against the static module, EfficientNet-B0 fp16
#        batch 128, host fp32 in and out, same process (bench/host-pipeline.bench.ts), checked against PyTorch;
#     2. EfficientNet-B0 fp16 batch 1 and 128: per-step profile (torchc bench --profile), where batch 1's
#        0.39 ms goes (PROFILES=0 skips it).
#   PART=3, PART=4, PART=5: see their blocks below (issue 13's benchmark; issue 8's batch-128 bar with peers; the
#   rows, small-GEMM and flash kernel sweeps).
#   PART=2 bash scripts/gpu/session12.sh   (S_S=330)
#     1. the flash-attention variants on ViT-B/16 and DeiT-tiny shapes, PyTorch SDPA beside (flash-sweep bench);
#     2. part 1's pipelined host batches again, with one call's timeline per variant.
TAG=s12; S_DEFAULT=300; source "$(dirname "${BASH_SOURCE[0]}")/session-lib.sh"

if [ "$PART" = 1 ]; then
  echo "== 1. pipelined host batches ($(el))"
  PYTHONUNBUFFERED=1 timeout 90 python3 "$ROOT/fixtures/export_dynamic.py" /tmp/dyn 128 128 >"$LOGS/export-dyn.log" 2>&1
  echo "export rc=$? ($(el))"
  OUT="$LOGS/pipe" TORCHC_DYNAMIC_DIR=/tmp/dyn TORCHC_GPU_TIMEOUT=150 bash "$ROOT/scripts/gpu.sh" bench host-pipeline \
    >"$LOGS/pipe.log" 2>&1
  echo "pipeline rc=$? ($(el))"
  grep -E "^\||^  (static|pipe)|Error" "$LOGS/pipe.log" | head -16
  pack
  [ "${PROFILES:-1}" = 1 ] || { echo "== done ($(el))"; exit 0; }
  echo "== 2. EfficientNet-B0 profiles ($(el))"
  PYTHONUNBUFFERED=1 timeout 90 python3 "$ROOT/fixtures/export_runtime.py" /tmp/rt >"$LOGS/export-rt.log" 2>&1
  echo "export rc=$? ($(el))"
  for b in 1 128; do
    [ "$(left)" -gt 30 ] || break
    timeout "$(( $(left) - 10 ))" bash "$ROOT/scripts/gpu.sh" torchc bench "/tmp/rt/efficientnet_b0_b$b.pt2" \
      --backend cuda --precision fp16 --profile >"$LOGS/profile-b$b.log" 2>&1
    echo "profile b$b rc=$? ($(el))"
    grep -vE "^ *[0-9]+  " "$LOGS/profile-b$b.log" | grep -E "median|ms|^kind|^[a-z-]+ +[0-9]+ |^total" | head -24
    echo "slowest steps:"; grep -E "^ *[0-9]+  " "$LOGS/profile-b$b.log" | sort -k3 -g -r | head -12
  done
  pack
fi
if [ "$PART" = 2 ]; then
  echo "== 1. flash-attention variants ($(el))"
  OUT="$LOGS/flash" TORCHC_GPU_TIMEOUT=200 bash "$ROOT/scripts/gpu.sh" bench flash-sweep >"$LOGS/flash.log" 2>&1
  echo "flash-sweep rc=$? ($(el))"
  cat "$LOGS/flash/flash-sweep.md" 2>/dev/null || grep -E "^\||Error|error" "$LOGS/flash.log" | head -60
  pack
  echo "== 2. pipelined host batches ($(el))"
  [ -s /tmp/dyn/efficientnet_b0.dyn.pt2 ] || PYTHONUNBUFFERED=1 timeout 90 python3 "$ROOT/fixtures/export_dynamic.py" \
    /tmp/dyn 128 128 >"$LOGS/export-dyn.log" 2>&1
  c=$(( $(left) - 10 )); [ "$c" -gt 150 ] && c=150
  OUT="$LOGS/pipe" TORCHC_DYNAMIC_DIR=/tmp/dyn TORCHC_GPU_TIMEOUT=$c bash "$ROOT/scripts/gpu.sh" bench host-pipeline \
    >"$LOGS/pipe.log" 2>&1
  echo "pipeline rc=$? ($(el))"
  grep -E "^\||timeline|Error" "$LOGS/pipe.log" | head -24
  pack
fi

if [ "$PART" = 3 ]; then
  # PART=3 (S_S=560): issue 13's benchmark in one run: PyTorch peers for every benchmark model (MODELS to pick),
  # torchc on all of them with today's defaults, then ViT-B/16 and DeiT-tiny (AB_ONLY) with AB_ENV (an A/B). TESTS="a b"
  # runs those GPU tests first.
  for t in ${TESTS:-}; do
    OUT="$LOGS/$t" TORCHC_GPU_TIMEOUT=120 bash "$ROOT/scripts/gpu.sh" test "$t" >"$LOGS/$t.log" 2>&1
    echo "test $t rc=$? $(grep -E "^ℹ (pass|fail) " "$LOGS/$t.log" | tr '\n' ' ')($(el))"
    grep -E "✖ .*ms\)$|AssertionError" "$LOGS/$t.log" | head -6
  done
  peers_then_all 200
  if [ -n "${AB_ENV:-}" ] && [ "$(left)" -gt 60 ]; then
    echo "== 3. A/B: $AB_ENV ($(el))"
    # shellcheck disable=SC2086
    torchc ab $AB_ENV TRANSFORMERS_ONLY="${AB_ONLY:-vit_base_patch16_224,deit_tiny_patch16_224}"
  fi
  pack
fi
if [ "$PART" = 4 ]; then
  # PART=4 (S_S=420): issue 8's batch-128 bar with PyTorch's end-to-end peers in the same command: the peers
  # (fixtures/export_runtime.py --peers), torchc's static module end to end (bench e2e, E2E_QUICK), and the
  # pipelined module (bench host-pipeline, PIPE_ROWS default 32).
  echo "== 1. exports and PyTorch e2e peers ($(el))"
  PYTHONUNBUFFERED=1 timeout 220 python3 "$ROOT/fixtures/export_runtime.py" /tmp/rt --peers >"$LOGS/export-rt.log" 2>&1
  echo "export rc=$? ($(el))"; cp /tmp/rt/peers_e2e.json "$LOGS/" 2>/dev/null
  grep -E '^\{' "$LOGS/export-rt.log" | cut -c1-400 | head -4
  echo "== 2. torchc static e2e ($(el))"
  OUT="$LOGS/e2e" TORCHC_RUNTIME_DIR=/tmp/rt E2E_QUICK=1 TORCHC_GPU_TIMEOUT=90 bash "$ROOT/scripts/gpu.sh" bench e2e \
    >"$LOGS/e2e.log" 2>&1
  echo "e2e rc=$? ($(el))"; grep -E "^quick" "$LOGS/e2e.log"
  echo "== 3. pipelined ($(el))"
  PYTHONUNBUFFERED=1 timeout 90 python3 "$ROOT/fixtures/export_dynamic.py" /tmp/dyn 128 128 >"$LOGS/export-dyn.log" 2>&1
  c=$(( $(left) - 10 )); [ "$c" -gt 150 ] && c=150
  OUT="$LOGS/pipe" PIPE_ROWS="${PIPE_ROWS:-32}" TORCHC_DYNAMIC_DIR=/tmp/dyn TORCHC_GPU_TIMEOUT=$c \
    bash "$ROOT/scripts/gpu.sh" bench host-pipeline >"$LOGS/pipe.log" 2>&1
  echo "pipeline rc=$? ($(el))"; grep -E "^\|" "$LOGS/pipe.log" | head -12
  pack
fi
if [ "$PART" = 5 ]; then
  # PART=5 (S_S=240): the kernel sweeps built in session 12 after its last device command: rows (LayerNorm and
  # friends at ViT/DeiT/Swin shapes) and the small-M tensor-core GEMM against cuBLASLt (batch-1 Linear shapes).
  for b in rows-sweep gemm-sweep flash-sweep; do
    [ "$(left)" -gt 40 ] || break
    c=$(( $(left) - 10 )); [ "$c" -gt 100 ] && c=100
    OUT="$LOGS/$b" TORCHC_GPU_TIMEOUT=$c bash "$ROOT/scripts/gpu.sh" bench "$b" >"$LOGS/$b.log" 2>&1
    echo "$b rc=$? ($(el))"
    if [ -s "$LOGS/$b/$b.md" ]; then grep -E "^\|" "$LOGS/$b/$b.md" | head -60
    else grep -E "^\||Error" "$LOGS/$b.log" | head -40; fi
    pack
  done
fi
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
echo "== done ($(el))"
