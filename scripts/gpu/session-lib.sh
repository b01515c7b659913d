# Sourced by the session device scripts: `TAG=s12; S_DEFAULT=300; source scripts/gpu/session-lib.sh` sets ROOT, OUT,
# PART, LOGS (/tmp/TAG-PART) and S (the start), defines el (seconds since the start), left (seconds left of
# S_S, default S_DEFAULT), pack (LOGS into $OUT/TAG-PART.tgz) and torchc (below), and writes the environment report.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="${OUT:-$ROOT/.device-out}"; mkdir -p "$OUT"
PART="${PART:-1}"
LOGS=/tmp/$TAG-$PART; mkdir -p "$LOGS"
S=$(date +%s)
el() { echo "$(( $(date +%s) - S ))s"; }
left() { echo $(( ${S_S:-$S_DEFAULT} - ($(date +%s) - S) )); }
pack() { tar czf "$OUT/$TAG-$PART.tgz" -C /tmp "$TAG-$PART" 2>/dev/null; }
OUT="$LOGS/env" bash "$ROOT/scripts/gpu.sh" env >"$LOGS/env.log" 2>&1
# torchc NAME [ENV=VALUE ...]: the transformers bench (PyTorch's peers and exports in DIR) into $LOGS/NAME, at most
# BENCH_CAP_S (default 170) seconds, its table and per-kind profile printed.
DIR=/tmp/torchc-transformers
torchc() {
  local name=$1; shift
  local cap=${BENCH_CAP_S:-170}
  bash "$ROOT/scripts/gpu/torchc-transformers.sh" "$name" "$LOGS" "$DIR" $(( $(left) - 10 > cap ? cap : $(left) - 10 )) "$@"
  echo "($(el))"
}
# peers_then_all RESERVE_S: PyTorch's peers for the benchmark models (MODELS to pick, PEERS_ARGS passed on, e.g.
# --skip-reduce-overhead; torchc keeps RESERVE_S for itself), then torchc on every model that has peers; the table
# lands in $OUT/TRANSFORMERS.md.
peers_then_all() {
  local reserve=$1
  echo "== PyTorch peers ($(el))"
  PYTHONUNBUFFERED=1 timeout "$(( $(left) - reserve ))" python3 "$ROOT/bench/transformers.py" --out "$DIR" \
    ${MODELS:+--models "$MODELS"} ${PEERS_ARGS:-} --budget-s "$(( $(left) - reserve - 20 ))" --no-warm-compile >"$LOGS/peers.log" 2>&1
  echo "peers rc=$? ($(el))"; cp "$DIR/transformers.peers.json" "$OUT/" 2>/dev/null
  grep -iE "skipped|timed out|crash" "$LOGS/peers.log" | head -5
  echo "== torchc, every model ($(el))"
  torchc all
  cp "$LOGS/TRANSFORMERS-all.md" "$OUT/TRANSFORMERS.md" 2>/dev/null
  pack
}

# int8_resnet50 CAP_S: the int8-engine GPU test's ResNet-50 part (fp16, simulated int8, int8 convolutions at batch
# 128) into $LOGS/int8, at most CAP_S seconds; its table, then each configuration's time, compile time, per-kind
# profile and slowest steps.
int8_resnet50() {
  OUT="$LOGS/int8" INT8_ENGINE_PART=resnet50 TORCHC_GPU_TIMEOUT=$1 bash "$ROOT/scripts/gpu.sh" test int8-engine \
    >"$LOGS/int8.log" 2>&1
  echo "int8 rc=$? ($(el))"
  grep -E "^\|" "$LOGS/int8.log" | head -6
  grep -E '^\[int8-engine\]' "$LOGS/int8.log" | python3 -c '
import json, sys
for line in sys.stdin:
    try: r = json.loads(line[line.index("{"):])
    except Exception: continue
    if "gpuMs" not in r: continue
    print(r.get("config"), r.get("gpuMs"), r.get("compileS"), r.get("byKind"))
    for s in (r.get("slowest") or [])[:8]: print("   ", s)
' 2>/dev/null
  grep -E "Error|✖" "$LOGS/int8.log" | head -5
}

# step_int8: int8_resnet50 for at most INT8_S seconds (default 260) of what is left, then pack (the session scripts'
# `int8` step).
step_int8() {
  echo "== int8 ResNet-50 b128 with its profile ($(el))"
  c=$(( $(left) - 10 )); [ "$c" -gt "${INT8_S:-260}" ] && c=${INT8_S:-260}
  if [ "$c" -gt 60 ]; then int8_resnet50 "$c"; else echo "int8 skipped: ${c}s left"; fi
  pack
}

# The session scripts' `runtime`, `serve` and `profile` steps (described in session17.sh).
step_runtime() {
  echo "== runtime GPU test ($(el))"
  c=$(( $(left) - 10 )); [ "$c" -gt "${RUNTIME_S:-200}" ] && c=${RUNTIME_S:-200}
  OUT="$LOGS/runtime" TORCHC_GPU_TIMEOUT=$c bash "$ROOT/scripts/gpu.sh" test runtime >"$LOGS/runtime.log" 2>&1
  echo "runtime rc=$? ($(el))"
  grep -E "✔|✖|# (pass|fail|skip)|not ok|^ok" "$LOGS/runtime.log" | head -20
  grep -E "AssertionError|Error:|registered" "$LOGS/runtime.log" | head -8
  pack
}

step_serve() {
  local default="SERVE_INGEST_THREADS=8;SERVE_INGEST_THREADS=8 TORCHC_SERVE_PREFETCH=0;SERVE_INGEST_THREADS=8 SERVE_INSTANCES=2;SERVE_INGEST_THREADS=8 TORCHC_SERVE_INGEST_SLOTS=0"
  local budget=$(( $(left) - 10 )); [ "$budget" -gt "${SERVE_S:-330}" ] && budget=${SERVE_S:-330}
  local end=$(( $(date +%s) + budget )) i=0
  IFS=';' read -ra variants <<< "${SERVE_VARIANTS:-$default}"
  for v in "${variants[@]}"; do
    i=$((i + 1))
    local c=$(( end - $(date +%s) ))
    if [ "$c" -lt 60 ]; then echo "serve variant '$v' skipped: ${c}s left"; continue; fi
    echo "== serve-load [$v] ($(el))"
    env $v OUT="$LOGS/serve$i" SERVE_CONCURRENCY="${SERVE_CONCURRENCY:-128}" SERVE_POINT_S="${SERVE_POINT_S:-8}" \
      TORCHC_GPU_TIMEOUT=$c bash "$ROOT/scripts/gpu.sh" bench serve-load >"$LOGS/serve$i.log" 2>&1
    echo "serve-load rc=$? ($(el))"
    grep -E "^\||bar|MISSED|met|matched|Error|WRONG" "$LOGS/serve$i.log" | head -12
    pack
  done
}

# profile: serve-load at concurrency 128 with SERVE_INGEST_THREADS (default 8) under `--cpu-prof` (one profile per
# thread), each thread's profile summarized (idle share per second, busiest functions), the profiles gzipped into
# $OUT when they fit; at most PROFILE_S seconds (default 150).
step_profile() {
  echo "== serve-load under --cpu-prof ($(el))"
  c=$(( $(left) - 10 )); [ "$c" -gt "${PROFILE_S:-150}" ] && c=${PROFILE_S:-150}
  local prof="$LOGS/prof"; mkdir -p "$prof"
  OUT="$LOGS/serve-prof" SERVE_INGEST_THREADS="${INGEST:-8}" SERVE_CONCURRENCY=128 SERVE_POINT_S="${SERVE_POINT_S:-8}" \
    SERVE_NODE_ARGS="--cpu-prof --cpu-prof-dir=$prof" TORCHC_GPU_TIMEOUT=$c \
    bash "$ROOT/scripts/gpu.sh" bench serve-load >"$LOGS/serve-prof.log" 2>&1
  echo "serve-load rc=$? ($(el))"
  grep -E "^\| 128" "$LOGS/serve-prof.log"
  local node; node=$(ls /tmp/torchc-node-*/node 2>/dev/null | head -1)
  for f in "$prof"/*.cpuprofile; do
    echo "-- $(basename "$f") ($(du -h "$f" | cut -f1))"
    "$node" "$ROOT/scripts/cpuprofile-busy.mjs" "$f" 0 100000 12 2>&1 | cut -c1-400 | head -15 >"$f.txt"
    cat "$f.txt"
  done
  ( cd "$prof" && gzip -9 ./*.cpuprofile 2>/dev/null )
  [ "$(du -sm "$prof" | cut -f1)" -le 40 ] && cp -r "$prof" "$OUT/prof-$PART" 2>/dev/null
  pack
}
