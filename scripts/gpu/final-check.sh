#!/usr/bin/env bash
# The whole GPU check in one device command (≤ 600 s), most important first, for a session whose device time allows
# one run:
#   1. alone on the GPU: the runtime fixtures with PyTorch's end-to-end peers, then the e2e benchmark ($OUT/E2E.md);
#   2. two lanes at once (correctness only, no timing asserted): the runtime, engine, device-plan and LibTorch tests
#      in one, the model, quantization and catalogue tests in the other;
#   3. alone again (their assertions involve time): serialized packages, refit, dynamic shapes.
# A test that no longer fits the time left is skipped and says so. Logs go to $OUT/logs.tgz (at most 8 files come
# back from $OUT), the summary to stdout and $OUT/SUMMARY.md.
#   bash scripts/gpu/final-check.sh        (on the GPU machine, carry .gpu-carry; TORCHC_CHECK_S, default 575)
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="${OUT:-$ROOT/.device-out}"; mkdir -p "$OUT/logs"
export TORCHC_RUNTIME_DIR=/tmp/rt UV_THREADPOOL_SIZE=8
S=$(date +%s)
el() { echo "$(( $(date +%s) - S ))s"; }
left() { echo $(( ${TORCHC_CHECK_S:-575} - ($(date +%s) - S) )); }
SUMMARY="$OUT/SUMMARY.md"; : >"$SUMMARY"

# gpu_test NAME CAP_S [DEADLINE_LEFT_S]: one GPU test file, bounded by CAP_S and by the time left minus DEADLINE_LEFT_S.
gpu_test() {
  local name=$1 cap=$2 keep=${3:-0} L to rc
  L=$(( $(left) - keep ))
  if [ "$L" -lt 25 ]; then echo "| $name | skipped: no time left |" >>"$SUMMARY"; echo "== skip $name"; return; fi
  to=$(( cap < L ? cap : L ))
  OUT="$OUT/logs/$name" TORCHC_GPU_TIMEOUT=$to bash "$ROOT/scripts/gpu.sh" test "$name" >"$OUT/logs/$name.log" 2>&1
  rc=$?
  local counts; counts=$(grep -E "^ℹ (pass|fail) " "$OUT/logs/$name.log" | tr '\n' ' ')
  echo "| $name | rc=$rc ${counts}| $(el) |" >>"$SUMMARY"
  echo "== $name rc=$rc ${counts}($(el))"
  grep -E "^\[[a-z0-9-]+\]|✖ .*ms\)$|AssertionError|TIMED OUT" "$OUT/logs/$name.log" | cut -c1-260 | head -14
}

echo "== 1. export + PyTorch e2e peers"
# NO_E2E=1: only the runtime fixtures (no peers, no e2e benchmark), for a short device budget.
PEERS=--peers; [ "${NO_E2E:-0}" = 1 ] && PEERS=""
PYTHONUNBUFFERED=1 timeout 200 python3 "$ROOT/fixtures/export_runtime.py" /tmp/rt $PEERS >"$OUT/logs/export.log" 2>&1
echo "export rc=$? ($(el))"; tail -2 "$OUT/logs/export.log"
cp /tmp/rt/peers_e2e.json "$OUT/" 2>/dev/null
[ "${NO_E2E:-0}" = 1 ] || { OUT="$OUT" TORCHC_GPU_TIMEOUT=170 bash "$ROOT/scripts/gpu.sh" bench e2e >"$OUT/logs/e2e.log" 2>&1; echo "e2e rc=$? ($(el))"; }
[ -s "$OUT/e2e.json" ] && python3 "$ROOT/bench/e2e_report.py" "$OUT/peers_e2e.json" "$OUT/e2e.json" >"$OUT/E2E.md"
grep -E "^\|" "$OUT/logs/e2e.log" 2>/dev/null | head -4

echo "== 2. correctness, two lanes"
# Unpack the carried Node once, before two lanes race to write the same file ("Text file busy").
OUT="$OUT/logs/env" bash "$ROOT/scripts/gpu.sh" env >"$OUT/logs/env.log" 2>&1
# Lane deadlines leave time for phase 3.
KEEP3=${TORCHC_PHASE3_S:-230}
# LANE_A, LANE_B and PHASE3 (space-separated test names) override the lists (set but empty: none); "mnist-quant" is the MNIST export
# followed by the quantization test's MNIST half, "quant-kernels" the quantization test's int8/fp8 GEMM part,
# "sparsity-linears" the cuSPARSELt plan and single-Linear part of the sparsity test.
lane() {
  for t in $1; do
    if [ "$t" = quant-kernels ]; then
      TORCHC_QUANT_PART=kernels gpu_test quant 150 "$KEEP3"
    elif [ "$t" = sparsity-linears ]; then
      TORCHC_SPARSE_PART=linears gpu_test sparsity 120 "$KEEP3"
    elif [ "$t" = mnist-quant ]; then
      PYTHONUNBUFFERED=1 timeout 120 python3 "$ROOT/fixtures/mnist_quant.py" /tmp/mq "$ROOT/.gpu-carry/mnist" >"$OUT/logs/mnist-export.log" 2>&1
      echo "mnist export rc=$? ($(el))"; tail -3 "$OUT/logs/mnist-export.log"
      TORCHC_MNIST_DIR=/tmp/mq TORCHC_QUANT_PART=mnist gpu_test quant 200 "$KEEP3"
    else
      gpu_test "$t" 200 "$KEEP3"
    fi
  done
}
lane "${LANE_A-runtime cuda-engine device-plans torch-fallback fallback-trace progress fallback-catalogue attention quant-kernels fp16-overflow}" >"$OUT/logs/laneA.txt" 2>&1 &
A=$!
lane "${LANE_B-models mnist-quant swin-ops transformer-fusion sparsity-linears control-flow}" >"$OUT/logs/laneB.txt" 2>&1 &
B=$!
wait $A $B
cat "$OUT/logs/laneA.txt" "$OUT/logs/laneB.txt"

echo "== 3. timed tests, alone"
for t in ${PHASE3-package refit dynamic}; do gpu_test "$t" 200; done

echo; echo "| test | result | at |"; echo "| --- | --- | --- |"; cat "$SUMMARY"
(cd "$OUT" && tar czf logs.tgz logs && rm -rf logs)
echo "== done ($(el))"
