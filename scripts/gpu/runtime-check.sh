#!/usr/bin/env bash
# One device command for the runtime work (issue 8) and a regression pass, within the 600 s a command may run:
# exports the runtime fixtures and PyTorch's end-to-end peers, runs the e2e benchmark (RESULTS table in
# $OUT/E2E.md), the runtime GPU tests, the given extra GPU test filters, and the 100k-run soak if time is left.
#   bash scripts/gpu/runtime-check.sh [extra test filters ...]      (on the GPU machine, carry .gpu-carry)
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="${OUT:-$ROOT/.device-out}"; mkdir -p "$OUT"
export TORCHC_RUNTIME_DIR=/tmp/rt UV_THREADPOOL_SIZE=8
S=$(date +%s); el() { echo "$(( $(date +%s) - S ))s"; }
# TORCHC_CHECK_S: the seconds this script may take in all (default 575, inside one 600 s device command).
left() { echo $(( ${TORCHC_CHECK_S:-575} - ($(date +%s) - S) )); }
PEERS=--peers; [ "${TORCHC_PEERS:-1}" = 0 ] && PEERS=""
echo "== export ${PEERS:++ PyTorch e2e peers}"; PYTHONUNBUFFERED=1 timeout 220 python3 "$ROOT/fixtures/export_runtime.py" /tmp/rt $PEERS 2>&1 | tail -4
cp /tmp/rt/peers_e2e.json "$OUT/" 2>/dev/null
echo "== e2e bench ($(el))"; TORCHC_GPU_TIMEOUT=150 bash "$ROOT/scripts/gpu.sh" bench e2e > "$OUT/e2e.log" 2>&1; echo "e2e rc=$?"
grep -E "^\||memory:" "$OUT/e2e.log" | head -12
[ -s "$OUT/e2e.json" ] && python3 "$ROOT/bench/e2e_report.py" "$OUT/peers_e2e.json" "$OUT/e2e.json" > "$OUT/E2E.md"
for t in runtime "$@"; do
  L=$(left); [ "$L" -lt 40 ] && { echo "== skip $t (no time left)"; continue; }
  echo "== test $t ($(el), ${L}s left)"
  TORCHC_GPU_TIMEOUT=$L bash "$ROOT/scripts/gpu.sh" test "$t" > "$OUT/test-$t.log" 2>&1; echo "$t rc=$?"
  grep -E "^\[runtime\]|^ℹ (pass|fail)|✖ .*ms\)$|AssertionError" "$OUT/test-$t.log" | cut -c1-300 | head -12
done
L=$(left); if [ "$L" -gt 90 ] && [ "${TORCHC_SOAK:-1}" = 1 ]; then echo "== soak ($(el))"; TORCHC_GPU_TIMEOUT=$L bash "$ROOT/scripts/gpu.sh" test soak > "$OUT/test-soak.log" 2>&1; echo "soak rc=$?"; grep -E "^\[soak\]|✖|AssertionError" "$OUT/test-soak.log" | head -4; fi
# At most 8 files come back from $OUT: the tables and JSON as they are, every log in one archive.
(cd "$OUT" && tar czf logs.tgz ./*.log ./*.xml ./*.jsonl 2>/dev/null && rm -f ./*.log ./*.xml ./*.jsonl)
echo "== done ($(el))"
