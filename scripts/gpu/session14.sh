#!/usr/bin/env bash
# Session 14's device runs (chain calls on one warm machine; it idles out 30 s after a call). Logs go to
# $OUT/s14-<part>.tgz.
#   PART=1 bash scripts/gpu/session14.sh   (S_S=560)
#     1. PyTorch's peers for MODELS (PEERS_ARGS, e.g. --skip-reduce-overhead), torchc on every model with peers;
#     2. up to four A/Bs, AB1…AB4, each "model,model:NAME=VALUE NAME=VALUE" (the models it runs, then the
#        environment), e.g. AB1="efficientnet_b0:TORCHC_DW_ROWS=1";
#     3. SWEEPS="lt-splitk-sweep …": those benchmarks last, each at most 90 s.
TAG=s14; S_DEFAULT=560; source "$(dirname "${BASH_SOURCE[0]}")/session-lib.sh"

if [ "$PART" = 1 ]; then
  peers_then_all "${RESERVE_S:-230}"
  for n in 1 2 3 4; do
    var="AB$n"; ab="${!var:-}"
    [ -n "$ab" ] && [ "$(left)" -gt 60 ] || continue
    only="${ab%%:*}"; envs="${ab#*:}"
    echo "== A/B $n on $only: $envs ($(el))"
    # shellcheck disable=SC2086
    BENCH_CAP_S=${AB_CAP_S:-110} torchc "ab$n" $envs TRANSFORMERS_ONLY="$only"
    pack
  done
  for s in ${SWEEPS:-}; do
    [ "$(left)" -gt 40 ] || break
    c=$(( $(left) - 10 )); [ "$c" -gt 90 ] && c=90
    OUT="$LOGS/$s" TORCHC_GPU_TIMEOUT=$c bash "$ROOT/scripts/gpu.sh" bench "$s" >"$LOGS/$s.log" 2>&1
    echo "bench $s rc=$? ($(el))"
    if ls "$LOGS/$s"/*.md >/dev/null 2>&1; then grep -hE "^\||^#" "$LOGS/$s"/*.md | head -80
    else grep -E "^\||Error|error" "$LOGS/$s.log" | head -40; fi
    pack
  done
fi
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
echo "== done ($(el))"
