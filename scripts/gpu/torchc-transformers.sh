#!/usr/bin/env bash
# One torchc run of the transformers benchmark for the device scripts, its table (with PyTorch's peers) and
# per-kind profile printed:
#   bash scripts/gpu/torchc-transformers.sh NAME LOGS PEERS_DIR TIMEOUT_S [ENV=VALUE ...]
# writes LOGS/NAME.log, LOGS/NAME/transformers.json and LOGS/TRANSFORMERS-NAME.md; PEERS_DIR is bench/transformers.py's
# --out (its transformers.peers.json and exports).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
name=$1 logs=$2 dir=$3 timeout_s=$4; shift 4
mkdir -p "$logs/$name"
env "$@" OUT="$logs/$name" TRANSFORMERS_DIR="$dir" TORCHC_GPU_TIMEOUT="$timeout_s" \
  bash "$ROOT/scripts/gpu.sh" bench transformers >"$logs/$name.log" 2>&1
echo "torchc $name rc=$?"
bash "$ROOT/scripts/gpu/transformers-summary.sh" "$dir/transformers.peers.json" "$logs/$name/transformers.json" \
  "$logs/TRANSFORMERS-$name.md"
