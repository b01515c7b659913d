#!/usr/bin/env bash
# The transformers benchmark's report for the device scripts: the table with PyTorch's peers written to MD and its
# rows printed, then each row's time by kind of step.
#   bash scripts/gpu/transformers-summary.sh PEERS.json TORCHC.json MD
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
peers=$1 torchc=$2 md=$3
[ -s "$torchc" ] || { echo "no torchc results in $torchc"; exit 1; }
python3 "$ROOT/bench/transformers_report.py" "$peers" "$torchc" >"$md" && grep -E "^\||Geometric|Slower" "$md"
python3 - "$torchc" <<'PY' 2>/dev/null
import json, sys
for r in json.load(open(sys.argv[1]))["rows"]:
    p = r.get("profile") or {}
    print(r["key"], [(k["kind"], k["steps"], round(k["ms"], 3)) for k in p.get("byKind", [])])
PY
