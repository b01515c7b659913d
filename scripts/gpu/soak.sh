#!/usr/bin/env bash
# Issue 16's 10-minute soak does not fit one device command (600 s at most, with the export and the compile on
# top). A process that starts its own session (setsid) outlives the command that started it and runs until the
# machine goes back, so the soak spans two calls on one warm machine (chain them: a machine idles out 30 s after a
# call):
#   bash scripts/gpu/soak.sh start     (call 1, returns at once; SOAK_S, default 600)
#   bash scripts/gpu/soak.sh wait      (call 2, up to TORCHC_SOAK_WAIT_S (575) s: waits, then prints the result)
# The bench's soak mode (bench/serve-load.bench.ts, SOAK_S): batching server, concurrency 64, 1 in 100 requests
# malformed, every valid answer checked against PyTorch, RSS sampled. Logs in /tmp/torchc-soak.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DIR=/tmp/torchc-soak
case "${1:-}" in
  start)
    rm -rf "$DIR"; mkdir -p "$DIR"
    # setsid: a new process session, so the device's end-of-command cleanup leaves it running.
    OUT="$DIR" SOAK_S="${SOAK_S:-600}" TORCHC_GPU_TIMEOUT=$(( ${SOAK_S:-600} + 400 )) setsid nohup \
      bash -c "bash '$ROOT/scripts/gpu.sh' bench serve-load >'$DIR/soak.log' 2>&1; echo \$? >'$DIR/rc'" \
      >/dev/null 2>&1 < /dev/null &
    sleep 2
    echo "soak started (pid $!), SOAK_S=${SOAK_S:-600}; logs in $DIR"
    ;;
  wait)
    S=$(date +%s)
    until [ -f "$DIR/rc" ] || [ $(( $(date +%s) - S )) -ge "${TORCHC_SOAK_WAIT_S:-575}" ]; do sleep 5; done
    if [ -f "$DIR/rc" ]; then echo "soak ended, rc=$(cat "$DIR/rc")"; else echo "soak still running after $(( $(date +%s) - S )) s"; fi
    grep -E "soak|RSS|malformed|failed|^\|" "$DIR/soak.log" | tail -20
    [ -n "${OUT:-}" ] && cp "$DIR/soak.log" "$DIR"/*.json "$OUT/" 2>/dev/null
    ;;
  *) sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
