#!/usr/bin/env bash
# Session 17's device runs. Logs go to $OUT/s17-<part>.tgz.
#   bash scripts/gpu/session17.sh   (S_S=590; STEPS="runtime serve int8" picks the steps and their order)
#     runtime: the runtime GPU test (every run answers its own input; now also inputs in host memory page-locked
#              in place and batches gathered from it), at most RUNTIME_S seconds (default 200);
#     serve:   serve-load (EfficientNet-B0 fp16 batch-1 requests, batching on and off) at concurrency
#              SERVE_CONCURRENCY (default 128), SERVE_POINT_S (default 8) per point, once per configuration in
#              SERVE_VARIANTS (';'-separated sets of ENV=VALUE; default: 8 ingest threads with request slots and
#              gathered batches, the same without the batch copied ahead, with 2 instances, and with slots off), at
#              most SERVE_S
#              seconds in all (default 330);
#     int8:    int8 ResNet-50 b128 with its profile (session 15's step 3), at most INT8_S seconds;
#     profile: serve-load at concurrency 128 under --cpu-prof, each thread's profile summarized (see below).
TAG=s17; S_DEFAULT=590; source "$(dirname "${BASH_SOURCE[0]}")/session-lib.sh"

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

for n in ${STEPS:-runtime serve int8}; do "step_$n"; done
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
echo "== done ($(el))"
