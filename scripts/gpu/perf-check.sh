#!/usr/bin/env bash
# The transformer and sparsity performance run in one device command (≤ 600 s), for the same warm machine right
# after scripts/gpu/final-check.sh (or alone):
#   1. bench/transformers.py: exports the transformer benchmark's models and measures PyTorch's peers (eager fp16,
#      CUDA graph, reduce-overhead) into $OUT/transformers.peers.json;
#   2. bench/transformers.bench.ts: torchc on the same exports (cold and warm compile, accuracy, latency, per-step
#      profile) into $OUT/transformers.json;
#   3. the sparsity test's encoder and ResNet-50 parts (dense and 2:4-sparse in the same process).
# MODELS (bench/transformers.py names, comma-separated) and TORCHC_PERF_S (default 575) shorten it. Merge the JSON
# with `python3 bench/transformers_report.py transformers.peers.json transformers.json`.
#   bash scripts/gpu/perf-check.sh        (on the GPU machine, carry .gpu-carry)
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="${OUT:-$ROOT/.device-out}"; mkdir -p "$OUT/logs"
S=$(date +%s)
el() { echo "$(( $(date +%s) - S ))s"; }
left() { echo $(( ${TORCHC_PERF_S:-575} - ($(date +%s) - S) )); }
MODELS="${MODELS:-vit_base_patch16_224,deit_tiny_patch16_224,bert_encoder,swin_t}"
DIR=/tmp/torchc-transformers

echo "== 1. PyTorch peers ($MODELS)"
PYTHONUNBUFFERED=1 timeout 260 python3 "$ROOT/bench/transformers.py" --out "$DIR" --models "$MODELS" --budget-s 200 \
  >"$OUT/logs/transformers-peers.log" 2>&1
echo "peers rc=$? ($(el))"; tail -3 "$OUT/logs/transformers-peers.log"
cp "$DIR/transformers.peers.json" "$OUT/" 2>/dev/null

echo "== 2. torchc"
L=$(( $(left) - 110 ))
[ "$L" -gt 60 ] && OUT="$OUT" TRANSFORMERS_DIR="$DIR" TORCHC_GPU_TIMEOUT="$L" bash "$ROOT/scripts/gpu.sh" bench transformers \
  >"$OUT/logs/transformers.log" 2>&1
echo "torchc rc=$? ($(el))"; grep -E "^\|" "$OUT/logs/transformers.log" | head -20

echo "== 3. sparsity, encoder and ResNet-50"
L=$(( $(left) - 5 ))
[ "$L" -gt 40 ] && OUT="$OUT/logs/sparsity" TORCHC_SPARSE_PART=encoder,resnet50 TORCHC_GPU_TIMEOUT="$L" \
  bash "$ROOT/scripts/gpu.sh" test sparsity >"$OUT/logs/sparsity.log" 2>&1
echo "sparsity rc=$? ($(el))"; grep -E "^\||✖|^\[sparsity\]" "$OUT/logs/sparsity.log" | cut -c1-240 | head -20

[ -s "$OUT/transformers.peers.json" ] && [ -s "$OUT/transformers.json" ] &&
  python3 "$ROOT/bench/transformers_report.py" "$OUT/transformers.peers.json" "$OUT/transformers.json" >"$OUT/TRANSFORMERS.md" &&
  cat "$OUT/TRANSFORMERS.md"
(cd "$OUT" && tar czf logs.tgz logs && rm -rf logs)
echo "== done ($(el))"
