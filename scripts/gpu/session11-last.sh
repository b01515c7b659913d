#!/usr/bin/env bash
# Session 11's last, short device command (~150 s): the two opt-ins built after its main runs, on ViT-B/16:
# default, TORCHC_FLASH_SKIP_PADDING=1, TORCHC_LT_TIMED=1 (batch 1 and 64; PyTorch peers from the same run), then
# the attention GPU test with the padding skip on.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="${OUT:-$ROOT/.device-out}"; mkdir -p "$OUT"
LOGS=/tmp/s11l; mkdir -p "$LOGS"
S=$(date +%s); el() { echo "$(( $(date +%s) - S ))s"; }
OUT="$LOGS/env" bash "$ROOT/scripts/gpu.sh" env >"$LOGS/env.log" 2>&1
DIR=/tmp/torchc-transformers
PYTHONUNBUFFERED=1 timeout 60 python3 "$ROOT/bench/transformers.py" --out "$DIR" --models vit_base_patch16_224 \
  --batches 1,64 --budget-s 45 --no-warm-compile >"$LOGS/peers.log" 2>&1
echo "peers rc=$? ($(el))"; cp "$DIR/transformers.peers.json" "$OUT/" 2>/dev/null
for v in default skip-padding lt-timed; do
  extra=()
  case $v in skip-padding) extra=(TORCHC_FLASH_SKIP_PADDING=1) ;; lt-timed) extra=(TORCHC_LT_TIMED=1) ;; esac
  mkdir -p "$LOGS/$v"
  env "${extra[@]}" OUT="$LOGS/$v" TRANSFORMERS_DIR="$DIR" TORCHC_GPU_TIMEOUT=40 \
    bash "$ROOT/scripts/gpu.sh" bench transformers >"$LOGS/$v.log" 2>&1
  echo "== $v rc=$? ($(el))"
  bash "$ROOT/scripts/gpu/transformers-summary.sh" "$OUT/transformers.peers.json" "$LOGS/$v/transformers.json" \
    "$OUT/TRANSFORMERS-$v.md" | grep -vE "^\| (model|---)"
  grep -hoE "[0-9]+ matmul problems timed \([^)]*\)" "$LOGS/$v.log" "$LOGS/$v"/*.json 2>/dev/null | sort -u | head -3
done
OUT="$LOGS/attention" TORCHC_FLASH_SKIP_PADDING=1 TORCHC_GPU_TIMEOUT=45 bash "$ROOT/scripts/gpu.sh" test attention \
  >"$LOGS/attention.log" 2>&1
echo "attention (skip padding) rc=$? $(grep -E "^ℹ (pass|fail) " "$LOGS/attention.log" | tr '\n' ' ')($(el))"
grep -E "✖ .*ms\)$|AssertionError" "$LOGS/attention.log" | head -4
tar czf "$OUT/s11l.tgz" -C /tmp s11l 2>/dev/null
nvidia-smi --query-gpu=name --format=csv,noheader
