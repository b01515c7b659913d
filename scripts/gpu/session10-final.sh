#!/usr/bin/env bash
# Session 10's check of its own changes, in two device commands on one warm machine (chain them: a machine idles out
# 30 s after a call). Everything worth reading is printed; logs go to $OUT/s10-<part>.tgz.
#   PART=1 bash scripts/gpu/session10-final.sh   (S10_S=460) correctness and the A/Bs:
#     1. the runtime fixtures (no peers) and the runtime test (the event-loop check: poll now hands long waits to a
#        worker thread);
#     2. two lanes: transformer-fusion + swin-ops, models (the vectorized warp-per-row kernels, TORCHC_ROWS_VECTOR);
#     3. ViT-B/16 and DeiT-tiny: PyTorch peers, then torchc with the vector rows path and without (A/B);
#     4. the plan-cache diagnosis: the sparsity test's ResNet-50 pair (dense compiled first, "sparse" second from the
#        plan cache the first wrote) restoring cuDNN's JSON plans (default; PLAN_MODES="json knobs" adds
#        engine+knobs only, the old restore, as the control).
#   PART=2 bash scripts/gpu/session10-final.sh   (S10_S=330) the rest:
#     1. int8 ResNet-50 batch 128 (fp16 / simulated / int8 convolutions with the timed int8-or-fp16 choice);
#     2. serving with 4 server processes at concurrency 1 and 128, batching off and on;
#     3. EfficientNet-B0 batch 1 compile, cold then warm.
# S10_S bounds a part (default 560).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="${OUT:-$ROOT/.device-out}"; mkdir -p "$OUT"
PART="${PART:-1}"
LOGS=/tmp/s10-$PART; mkdir -p "$LOGS"
export TORCHC_RUNTIME_DIR=/tmp/rt UV_THREADPOOL_SIZE=8
# The rows kernels' register path is opt-in until this run has checked it: on for every test here.
export TORCHC_ROWS_VECTOR=1
S=$(date +%s)
el() { echo "$(( $(date +%s) - S ))s"; }
left() { echo $(( ${S10_S:-560} - ($(date +%s) - S) )); }
pack() { tar czf "$OUT/s10-$PART.tgz" -C /tmp "s10-$PART" 2>/dev/null; }
cap() { local L=$(( $(left) - ${2:-5} )); echo $(( $1 < L ? $1 : L )); }

# t NAME CAP KEEP [ENV=VALUE ...]: one GPU test file (at most CAP s, leaving KEEP s of the part) into
# $LOGS/<TAG or NAME>.log, its report lines printed.
t() {
  local name=$1 c tag="${TAG:-$1}"; c=$(cap "$2" "$3"); shift 3
  if [ "$c" -lt 25 ]; then echo "== skip $tag (no time left)"; return; fi
  env "$@" OUT="$LOGS/$tag" TORCHC_GPU_TIMEOUT="$c" bash "$ROOT/scripts/gpu.sh" test "$name" >"$LOGS/$tag.log" 2>&1
  echo "== $tag rc=$? $(grep -E "^ℹ (pass|fail) " "$LOGS/$tag.log" | tr '\n' ' ')($(el))"
  grep -E "^\[[a-z0-9-]+\]|✖ .*ms\)$|AssertionError|TIMED OUT" "$LOGS/$tag.log" | cut -c1-400 | head -${LINES_SHOWN:-10}
}

# Unpack the carried Node once, before parallel lanes race to write the same file.
OUT="$LOGS/env" bash "$ROOT/scripts/gpu.sh" env >"$LOGS/env.log" 2>&1

if [ "$PART" = 1 ]; then
  echo "== 1. runtime fixtures ($(el))"
  PYTHONUNBUFFERED=1 timeout 150 python3 "$ROOT/fixtures/export_runtime.py" /tmp/rt >"$LOGS/export.log" 2>&1
  echo "export rc=$? ($(el))"; tail -2 "$LOGS/export.log"
  LINES_SHOWN=6 t runtime 90 380
  pack

  echo "== 2. correctness, two lanes ($(el))"
  ( t transformer-fusion 130 280; t swin-ops 90 280 ) >"$LOGS/laneA.txt" 2>&1 &
  A=$!
  ( t models 130 280 ) >"$LOGS/laneB.txt" 2>&1 &
  B=$!
  wait $A $B
  cat "$LOGS/laneA.txt" "$LOGS/laneB.txt"
  pack

  echo "== 3. transformers: peers, torchc, torchc without vector rows ($(el))"
  DIR=/tmp/torchc-transformers
  PYTHONUNBUFFERED=1 timeout "$(cap 90 210)" python3 "$ROOT/bench/transformers.py" --out "$DIR" \
    --models vit_base_patch16_224,deit_tiny_patch16_224 --budget-s 90 --no-warm-compile >"$LOGS/peers.log" 2>&1
  echo "peers rc=$? ($(el))"; cp "$DIR/transformers.peers.json" "$OUT/" 2>/dev/null
  for v in on off; do
    c=$(cap 50 "$([ $v = on ] && echo 170 || echo 130)")
    [ "$c" -gt 30 ] || { echo "torchc ($v) skipped"; continue; }
    mkdir -p "$LOGS/tr-$v"
    [ $v = off ] && export TORCHC_ROWS_VECTOR=0
    OUT="$LOGS/tr-$v" TRANSFORMERS_DIR="$DIR" TORCHC_GPU_TIMEOUT=$c bash "$ROOT/scripts/gpu.sh" bench transformers \
      >"$LOGS/tr-$v.log" 2>&1
    echo "torchc rows vector $v rc=$? ($(el))"
    export TORCHC_ROWS_VECTOR=1
    [ -s "$OUT/transformers.peers.json" ] && [ -s "$LOGS/tr-$v/transformers.json" ] &&
      python3 "$ROOT/bench/transformers_report.py" "$OUT/transformers.peers.json" "$LOGS/tr-$v/transformers.json" \
        >"$LOGS/TRANSFORMERS-$v.md" && grep -E "^\||Geometric" "$LOGS/TRANSFORMERS-$v.md"
    python3 - "$LOGS/tr-$v/transformers.json" <<'EOF' 2>/dev/null
import json, sys
for r in json.load(open(sys.argv[1]))["rows"]:
    p = r.get("profile") or {}
    print(r["key"], [(k["kind"], k["steps"], round(k["ms"], 3)) for k in p.get("byKind", [])])
EOF
  done
  cp "$LOGS/TRANSFORMERS-on.md" "$OUT/" 2>/dev/null
  pack

  echo "== 4. plan cache: ResNet-50 b32 compiled twice in one process ($(el))"
  PYTHONUNBUFFERED=1 timeout "$(cap 45 120)" python3 "$ROOT/fixtures/prune_2_4.py" /tmp/sp resnet50 >"$LOGS/prune.log" 2>&1
  echo "prune export rc=$? ($(el))"
  # PLAN_MODES="json knobs" adds the old restore (engine+knobs: 0.61x measured this morning) as the control.
  for mode in ${PLAN_MODES:-json}; do
    case $mode in
      json) extra=(TORCHC_PLAN_CACHE_JSON=1) ;;
      knobs) extra=(TORCHC_PLAN_CACHE_JSON=0) ;;
    esac
    TAG="plan-cache-$mode" LINES_SHOWN=4 t sparsity 50 "$([ "${WITH_INT8:-0}" = 1 ] && echo 90 || echo 5)" "${extra[@]}" TORCHC_CACHE_DIR="$(mktemp -d)" \
      TORCHC_SPARSE_PART=resnet50 TORCHC_SPARSE_DIR=/tmp/sp
  done
  pack
fi

# PART=3: the short form for a small device budget (S10_S≈300): three lanes at once (transformer-fusion; models;
# the runtime fixtures and test), then the plan-cache pair with JSON plans, then int8 if time is left.
if [ "$PART" = 3 ]; then
  echo "== 1. three lanes ($(el))"
  ( t transformer-fusion 150 110 ) >"$LOGS/laneA.txt" 2>&1 &
  A=$!
  ( t models 150 110 ) >"$LOGS/laneB.txt" 2>&1 &
  B=$!
  ( PYTHONUNBUFFERED=1 timeout 90 python3 "$ROOT/fixtures/export_runtime.py" /tmp/rt >"$LOGS/export.log" 2>&1
    echo "export rc=$? ($(el))"; LINES_SHOWN=6 t runtime 110 110 ) >"$LOGS/laneC.txt" 2>&1 &
  C=$!
  wait $A $B $C
  cat "$LOGS/laneA.txt" "$LOGS/laneB.txt" "$LOGS/laneC.txt"
  pack
  echo "== 2. plan cache, JSON plans ($(el))"
  PYTHONUNBUFFERED=1 timeout "$(cap 45 40)" python3 "$ROOT/fixtures/prune_2_4.py" /tmp/sp resnet50 >"$LOGS/prune.log" 2>&1
  echo "prune export rc=$? ($(el))"
  TAG=plan-cache-json LINES_SHOWN=4 t sparsity 50 3 TORCHC_PLAN_CACHE_JSON=1 TORCHC_CACHE_DIR="$(mktemp -d)" \
    TORCHC_SPARSE_PART=resnet50 TORCHC_SPARSE_DIR=/tmp/sp
  pack
fi

# WITH_INT8=1 runs part 2's int8 section at the end of part 1 (one machine, one call).
if [ "$PART" = 2 ] || [ "${WITH_INT8:-0}" = 1 ] || { [ "$PART" = 3 ] && [ "$(left)" -gt 100 ]; }; then
  echo "== int8 ResNet-50 b128 ($(el))"
  TAG=int8 LINES_SHOWN=30 t int8-engine 170 "$([ "$PART" = 2 ] && echo 150 || echo 3)" INT8_ENGINE_PART=resnet50
  grep -E "^\|" "$LOGS/int8.log" | head -6
  pack
fi

if [ "$PART" = 2 ]; then

  echo "== 2. serving, 4 processes ($(el))"
  c=$(cap 160 40)
  if [ "$c" -gt 60 ]; then
    SERVE_PROCESSES=4 SERVE_CONCURRENCY=1,128 SERVE_POINT_S=8 OUT="$LOGS/serve" TORCHC_GPU_TIMEOUT=$c \
      bash "$ROOT/scripts/gpu.sh" bench serve-load >"$LOGS/serve.log" 2>&1
    echo "serve rc=$? ($(el))"
    grep -E "^\||bar|MISSED|met" "$LOGS/serve.log" | head -12
  else echo "serve skipped: ${c}s left"; fi
  pack

  echo "== 3. compile EfficientNet-B0 b1, cold then warm ($(el))"
  E=/tmp/rt/efficientnet_b0_b1.pt2
  [ -s "$E" ] || PYTHONUNBUFFERED=1 timeout 60 python3 "$ROOT/fixtures/export_runtime.py" /tmp/rt >"$LOGS/export.log" 2>&1
  CACHE=$(mktemp -d)
  for c in cold warm; do
    L=$(cap 60)
    [ "$L" -gt 20 ] || { echo "compile $c skipped"; continue; }
    T=$(date +%s%N)
    TORCHC_CACHE_DIR="$CACHE" timeout "$L" bash "$ROOT/scripts/gpu.sh" torchc compile "$E" \
      --backend cuda --precision fp16 -o /tmp/e.torchc >"$LOGS/compile-$c.log" 2>&1
    echo "compile $c rc=$? $(( ($(date +%s%N) - T) / 1000000 )) ms wall (process start and library loading included)"
    grep -iE "^(load|build|compile|total)|phase" "$LOGS/compile-$c.log" | tail -6
  done
  pack
fi
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
echo "== done ($(el))"
