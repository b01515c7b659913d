#!/usr/bin/env bash
# Session 11's last device command (S11_S bounds it, default 420 s): what changed since the morning run.
#   1. transformers with PyTorch peers in the same run (ViT-B/16, DeiT-tiny, the BERT-sized encoder, Swin-T):
#      exact GELU now runs in cuBLASLt's epilogue (tanh form) in fp16 engines; the rows register path is the default;
#   2. while the runtime fixtures export: transformer-fusion and swin-ops (GELU epilogue on the GPU, checked
#      against PyTorch);
#   3. the runtime test twice (event loop: host-copy pieces now queued a group per loop turn, 16 copy threads);
#   4. the e2e copy path (E2E_QUICK) with the new defaults.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="${OUT:-$ROOT/.device-out}"; mkdir -p "$OUT"
LOGS=/tmp/s11f; mkdir -p "$LOGS"
export TORCHC_RUNTIME_DIR=/tmp/rt
S=$(date +%s)
el() { echo "$(( $(date +%s) - S ))s"; }
left() { echo $(( ${S11_S:-420} - ($(date +%s) - S) )); }
pack() { tar czf "$OUT/s11f.tgz" -C /tmp s11f 2>/dev/null; }
OUT="$LOGS/env" bash "$ROOT/scripts/gpu.sh" env >"$LOGS/env.log" 2>&1

echo "== 1. transformers: peers, then torchc ($(el))"
DIR=/tmp/torchc-transformers
PYTHONUNBUFFERED=1 timeout 190 python3 "$ROOT/bench/transformers.py" --out "$DIR" \
  --models vit_base_patch16_224,deit_tiny_patch16_224,bert_encoder,swin_t --budget-s 160 --no-warm-compile \
  >"$LOGS/peers.log" 2>&1
echo "peers rc=$? ($(el))"; cp "$DIR/transformers.peers.json" "$OUT/" 2>/dev/null
mkdir -p "$LOGS/tr"
OUT="$LOGS/tr" TRANSFORMERS_DIR="$DIR" TORCHC_GPU_TIMEOUT=90 \
  bash "$ROOT/scripts/gpu.sh" bench transformers >"$LOGS/tr.log" 2>&1
echo "torchc rc=$? ($(el))"
if [ -s "$LOGS/tr/transformers.json" ]; then
  cp "$LOGS/tr/transformers.json" "$OUT/"
  bash "$ROOT/scripts/gpu/transformers-summary.sh" "$OUT/transformers.peers.json" "$LOGS/tr/transformers.json" \
    "$OUT/TRANSFORMERS.md"
fi
pack

echo "== 2. runtime fixtures || transformer-fusion, swin-ops ($(el))"
( [ -s /tmp/rt/efficientnet_b0_b128.pt2 ] ||
    PYTHONUNBUFFERED=1 timeout 100 python3 "$ROOT/fixtures/export_runtime.py" /tmp/rt >"$LOGS/export.log" 2>&1
  echo "export rc=$? ($(el))" ) &
E=$!
for t in transformer-fusion swin-ops; do
  c=$(( $(left) - 70 )); [ "$c" -gt 110 ] && c=110
  [ "$c" -gt 25 ] || { echo "$t skipped"; continue; }
  OUT="$LOGS/$t" TORCHC_GPU_TIMEOUT=$c bash "$ROOT/scripts/gpu.sh" test "$t" >"$LOGS/$t.log" 2>&1
  echo "$t rc=$? $(grep -E "^ℹ (pass|fail) " "$LOGS/$t.log" | tr '\n' ' ')($(el))"
  grep -E "✖ .*ms\)$|AssertionError" "$LOGS/$t.log" | head -6
done
wait $E
pack

echo "== 3. the runtime test, twice ($(el))"
for i in 1 2; do
  [ "$(left)" -gt 35 ] || { echo "runtime $i skipped"; continue; }
  OUT="$LOGS/rt-$i" TORCHC_GPU_TIMEOUT=$(( $(left) - 12 > 60 ? 60 : $(left) - 12 )) bash "$ROOT/scripts/gpu.sh" test runtime \
    >"$LOGS/runtime-$i.log" 2>&1
  echo "runtime $i rc=$? $(grep -E "^ℹ (pass|fail) " "$LOGS/runtime-$i.log" | tr '\n' ' ')($(el))"
  grep -E '"check":"event loop|AssertionError' "$LOGS/runtime-$i.log" | cut -c1-600
done
pack

echo "== 4. e2e copy path ($(el))"
if [ "$(left)" -gt 25 ]; then
  mkdir -p "$LOGS/e2e"
  E2E_QUICK=1 OUT="$LOGS/e2e" TORCHC_GPU_TIMEOUT=$(( $(left) - 5 )) bash "$ROOT/scripts/gpu.sh" bench e2e >"$LOGS/e2e.log" 2>&1
  echo "e2e rc=$? ($(el))"; grep -E "^quick" "$LOGS/e2e.log"
fi
pack
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
echo "== done ($(el))"
