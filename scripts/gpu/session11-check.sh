#!/usr/bin/env bash
# Session 11's device command (S11_S bounds it, default 400 s): why the event loop stalls in the input phase of a
# batch-128 run, and three A/Bs that need a process each. Logs and the CPU profile go to $OUT.
#   1. the runtime fixtures (no peers);
#   2. the runtime test three times: under `--cpu-prof` (100 µs samples; scripts/cpuprofile-gaps.mjs reads the
#      profile with the test's log), plain, and with TORCHC_COPY_IN_FLIGHT=8 (at most 8 host-copy pieces queued; replaced since by TORCHC_COPY_QUEUE_GROUP);
#   3. the e2e copy path (E2E_QUICK) with 8 and with 16 libuv threads (UV_THREADPOOL_SIZE);
#   4. ViT-B/16 batch 64: its export, then torchc with the flash kernel's query tile at 64 rows (default at this
#      batch), 32 and 16 (TORCHC_FLASH_WARPS=4/2/1).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="${OUT:-$ROOT/.device-out}"; mkdir -p "$OUT"
LOGS=/tmp/s11; mkdir -p "$LOGS"
export TORCHC_RUNTIME_DIR=/tmp/rt UV_THREADPOOL_SIZE=8
S=$(date +%s)
el() { echo "$(( $(date +%s) - S ))s"; }
left() { echo $(( ${S11_S:-400} - ($(date +%s) - S) )); }
OUT="$LOGS/env" bash "$ROOT/scripts/gpu.sh" env >"$LOGS/env.log" 2>&1

echo "== 1. runtime fixtures ($(el))"
[ -s /tmp/rt/efficientnet_b0_b128.pt2 ] ||
  PYTHONUNBUFFERED=1 timeout 120 python3 "$ROOT/fixtures/export_runtime.py" /tmp/rt >"$LOGS/export.log" 2>&1
echo "export rc=$? ($(el))"

echo "== 2. the event-loop test: profiled, plain, 8 copies in flight ($(el))"
for v in prof plain inflight8; do
  [ "$(left)" -gt 60 ] || { echo "$v skipped"; continue; }
  extra=()
  case $v in
    prof) mkdir -p "$OUT/prof"; extra=(NODE_OPTIONS="--cpu-prof --cpu-prof-interval 100 --cpu-prof-dir=$OUT/prof") ;;
    inflight8) extra=(TORCHC_COPY_IN_FLIGHT=8) ;;
  esac
  env "${extra[@]}" OUT="$LOGS/rt-$v" TORCHC_GPU_TIMEOUT=90 bash "$ROOT/scripts/gpu.sh" test runtime >"$LOGS/runtime-$v.log" 2>&1
  echo "runtime $v rc=$? ($(el))"
  grep -E '"check":"event loop' "$LOGS/runtime-$v.log" | cut -c1-700
  cp "$LOGS/runtime-$v.log" "$OUT/"
done
# Only the test file's own process matters (the largest profile); gzip it to travel.
if ls "$OUT"/prof/*.cpuprofile >/dev/null 2>&1; then
  big=$(ls -S "$OUT"/prof/*.cpuprofile | head -1)
  gzip -c "$big" >"$OUT/runtime.cpuprofile.gz"; rm -rf "$OUT/prof"
  ls -la "$OUT/runtime.cpuprofile.gz"
fi

echo "== 3. e2e copy path, 8 and 16 copy threads ($(el))"
for th in 8 16; do
  [ "$(left)" -gt 50 ] || { echo "threads $th skipped"; continue; }
  mkdir -p "$LOGS/e2e-$th"
  UV_THREADPOOL_SIZE=$th E2E_QUICK=1 OUT="$LOGS/e2e-$th" TORCHC_GPU_TIMEOUT=80 bash "$ROOT/scripts/gpu.sh" bench e2e \
    >"$LOGS/e2e-$th.log" 2>&1
  echo "e2e threads=$th rc=$? ($(el))"
  grep -E "^quick" "$LOGS/e2e-$th.log"
done

echo "== 4. ViT-B/16 b64, flash query tile ($(el))"
DIR=/tmp/torchc-transformers
c=$(( $(left) - 60 )); [ "$c" -gt 90 ] && c=90
if [ "$c" -gt 30 ]; then
  PYTHONUNBUFFERED=1 timeout "$c" python3 "$ROOT/bench/transformers.py" --out "$DIR" --models vit_base_patch16_224 \
    --batches 64 --budget-s 60 --no-warm-compile >"$LOGS/vit-peers.log" 2>&1
  echo "vit export+peers rc=$? ($(el))"
  for w in default 2 1; do
    [ "$(left)" -gt 25 ] || { echo "warps $w skipped"; continue; }
    extra=(); [ "$w" != default ] && extra=(TORCHC_FLASH_WARPS=$w)
    mkdir -p "$LOGS/vit-$w"
    env "${extra[@]}" OUT="$LOGS/vit-$w" TRANSFORMERS_DIR="$DIR" TRANSFORMERS_ONLY=vit_base_patch16_224 \
      TORCHC_GPU_TIMEOUT=$(( $(left) - 10 )) bash "$ROOT/scripts/gpu.sh" bench transformers >"$LOGS/vit-$w.log" 2>&1
    echo "vit warps=$w rc=$? ($(el))"
    python3 - "$LOGS/vit-$w/transformers.json" <<'EOF' 2>/dev/null
import json, sys
for r in json.load(open(sys.argv[1]))["rows"]:
    p = r.get("profile") or {}
    print(r["key"], round((r.get("latency") or {}).get("medianMs", 0), 3), [(k["kind"], k["steps"], round(k["ms"], 3)) for k in p.get("byKind", [])])
EOF
  done
fi
tar czf "$OUT/s11.tgz" -C /tmp s11 2>/dev/null
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
echo "== done ($(el))"
