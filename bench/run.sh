#!/usr/bin/env bash
# The benchmark against PyTorch, in one command on the GPU machine (through `bash scripts/gpu.sh benchmark`):
# exports EfficientNet-B0 (timm) and ResNet-50 (torchvision) at batch 1 and 128, measures PyTorch's peers
# (bench/peers.py), then torchc fp32 and fp16 on the same card in the same run (torchc bench), checks torchc's
# outputs against PyTorch eager fp32, and writes RESULTS.md (bench/report.py) into $OUT (or bench/).
#   bash bench/run.sh NODE MAIN_JS [--max-autotune] [--models efficientnet_b0,resnet50] [--batches 1,128]
set -uo pipefail
NODE="$1"; MAIN="$2"; shift 2
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WORK="${TORCHC_BENCH_DIR:-/tmp/torchc-bench}"
OUTDIR="${OUT:-$HERE}"
MODELS="efficientnet_b0,resnet50"; BATCHES="1,128"; PEER_FLAGS=(); AUTOTUNE_ONLY=""; RESUME=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --max-autotune) PEER_FLAGS+=(--max-autotune) ;;
    # A second command on the same machine: torch.compile max-autotune for MODEL at BATCH, merged into the
    # results of an earlier run (--resume bench-json.tgz, the archive that run left in $OUT).
    --autotune-only) AUTOTUNE_ONLY="$2"; shift ;;
    --resume) RESUME="$2"; shift ;;
    --models) MODELS="$2"; shift ;;
    --batches) BATCHES="$2"; shift ;;
  esac
  shift
done
mkdir -p "$WORK"
if [[ -n "$RESUME" ]]; then tar xzf "$RESUME" -C "$WORK"; fi
if [[ -n "$AUTOTUNE_ONLY" ]]; then
  echo "== torch.compile max-autotune only: $AUTOTUNE_ONLY"
  PYTHONUNBUFFERED=1 python3 "$HERE/peers.py" --out "$WORK" --models "${AUTOTUNE_ONLY%%:*}" --batches "${AUTOTUNE_ONLY##*:}" \
    --only-max-autotune --json-name autotune.json 2>&1 | tee "$OUTDIR/bench-autotune.log"
  python3 "$HERE/report.py" "$WORK" > "$OUTDIR/RESULTS.md"
  cat "$OUTDIR/RESULTS.md"
  exit 0
fi
echo "== peers (PyTorch) and model export"
PYTHONUNBUFFERED=1 python3 "$HERE/peers.py" --out "$WORK" --models "$MODELS" --batches "$BATCHES" "${PEER_FLAGS[@]}" 2>&1 | tee "$OUTDIR/bench-peers.log"
for m in ${MODELS//,/ }; do
  for b in ${BATCHES//,/ }; do
    stem="$WORK/${m}_b${b}"
    for p in fp32 fp16; do
      echo "== torchc $m batch $b $p"
      timeout 240 "$NODE" --enable-source-maps "$MAIN" bench "$stem.pt2" --backend cuda --precision "$p" --reps 200 \
        --input "$stem.input.npy" --expect "$stem.output.npy" --json "$stem.torchc_$p.json" 2>&1 | tail -n 12 | tee -a "$OUTDIR/bench-torchc.log"
    done
  done
done
python3 "$HERE/report.py" "$WORK" > "$OUTDIR/RESULTS.md"
(cd "$WORK" && tar czf "$OUTDIR/bench-json.tgz" ./*.json)
cat "$OUTDIR/RESULTS.md"
