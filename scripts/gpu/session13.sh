#!/usr/bin/env bash
# Session 13's device runs (chain calls on one warm machine; it idles out 30 s after a call). Logs go to
# $OUT/s13-<part>.tgz.
#   PART=1 bash scripts/gpu/session13.sh   (S_S=420)
#     1. the small-M GEMM against cuBLASLt on batch-1 Linear shapes (bench gemm-sweep);
#     2. the generated GEMM in the engine: forced / timed / off on DeiT-tiny b1 and a small ViT, against PyTorch
#        (test small-gemm);
#     3. the event loop during batch-128 runs (test runtime), if time is left.
#   Issue 8's batch-128 bar with peers and issue 13's table: PART=4 / PART=3 of scripts/gpu/session12.sh.
TAG=s13; S_DEFAULT=420; source "$(dirname "${BASH_SOURCE[0]}")/session-lib.sh"

if [ "$PART" = 1 ]; then
  echo "== 1. gemm-sweep ($(el))"
  OUT="$LOGS/gemm-sweep" TORCHC_GPU_TIMEOUT=100 bash "$ROOT/scripts/gpu.sh" bench gemm-sweep >"$LOGS/gemm-sweep.log" 2>&1
  echo "gemm-sweep rc=$? ($(el))"
  if [ -s "$LOGS/gemm-sweep/gemm-sweep.md" ]; then grep -E "^\|" "$LOGS/gemm-sweep/gemm-sweep.md" | head -70
  else grep -E "^\||Error|error" "$LOGS/gemm-sweep.log" | head -40; fi
  pack
  for t in small-gemm runtime; do
    [ "$(left)" -gt 60 ] || break
    c=$(( $(left) - 10 )); [ "$t" = small-gemm ] && [ "$c" -gt 240 ] && c=240
    OUT="$LOGS/$t" TORCHC_GPU_TIMEOUT=$c bash "$ROOT/scripts/gpu.sh" test "$t" >"$LOGS/$t.log" 2>&1
    echo "test $t rc=$? $(grep -E "^ℹ (pass|fail) " "$LOGS/$t.log" | tr '\n' ' ')($(el))"
    grep -E "✖ .*ms\)$|AssertionError|median ms forced|small matmuls|gap" "$LOGS/$t.log" | head -14
    pack
  done
fi
if [ "$PART" = 3 ]; then
  # PART=3 (S_S=580): issue 13's benchmark in one run (PyTorch peers for every benchmark model, MODELS to pick;
  # torchc on all with today's defaults), then up to two A/Bs on the transformers (AB_ONLY): AB_ENV and AB_ENV2,
  # each "NAME=VALUE ...". TESTS="a b" runs those GPU tests first.
  for t in ${TESTS:-}; do
    OUT="$LOGS/$t" TORCHC_GPU_TIMEOUT=150 bash "$ROOT/scripts/gpu.sh" test "$t" >"$LOGS/$t.log" 2>&1
    echo "test $t rc=$? $(grep -E "^ℹ (pass|fail) " "$LOGS/$t.log" | tr '\n' ' ')($(el))"
    grep -E "✖ .*ms\)$|AssertionError|median ms forced" "$LOGS/$t.log" | head -6
  done
  peers_then_all "${RESERVE_S:-230}"
  n=0
  for ab in "${AB_ENV:-}" "${AB_ENV2:-}"; do
    n=$((n + 1))
    [ -n "$ab" ] && [ "$(left)" -gt 60 ] || continue
    echo "== A/B $n: $ab ($(el))"
    # shellcheck disable=SC2086
    BENCH_CAP_S=${AB_CAP_S:-110} torchc "ab$n" $ab TRANSFORMERS_ONLY="${AB_ONLY:-vit_base_patch16_224,deit_tiny_patch16_224}"
    pack
  done
fi
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
echo "== done ($(el))"
