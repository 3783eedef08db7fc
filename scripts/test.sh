#!/usr/bin/env bash
# The whole test suite, once on each supported Node major (22 and 24, official runtimes fetched from the npm registry
# by scripts/node-runtime.sh into .runtimes/): makes sure the system commands the tests need are there (installs them
# as root, or says how), then for each runtime, with it first on PATH, checks that better-sqlite3 loads on it,
# type-checks, runs tap, and fails every subtest that ended without an assertion (tap counts those as passes). Ends
# with one line per runtime (tests, files, assertions) and the plain line "N passed, N failed" summing both runs
# (assertions; each type-check counts as one). A runtime that cannot be fetched or run, or on which better-sqlite3
# does not load, is a failure with a one-line reason. Never skips silently.
#
#   --node 22|24   runs on that runtime only (a quick local run); the default is both
#   --busy         runs tap with a CPU hog on every core alongside, as a loaded machine would (the flake check)
#   other arguments go to tap (e.g. a test file)
set -uo pipefail
cd "$(dirname "$0")/.."

busy=0
majors=(22 24)
while [ $# -gt 0 ]; do
  case "$1" in
    --busy) busy=1; shift ;;
    --node | --node=*)
      if [ "$1" = "--node" ]; then major="${2:-}"; shift $(($# >= 2 ? 2 : 1)); else major="${1#--node=}"; shift; fi
      case "$major" in
        22 | 24) majors=("$major") ;;
        *)
          echo "test.sh: --node takes 22 or 24 (the supported runtimes), not '$major'"
          echo "0 passed, 1 failed"
          exit 1
          ;;
      esac
      ;;
    --) shift; break ;;
    *) break ;;
  esac
done

# Each system command the tests need, with the Debian package that has it: mosquitto (a real MQTT broker for the
# integration tests), strace (the fsync-failure test injects EIO with it), zip and unzip (the Greengrass artifact is
# built with zip, and its test unpacks and runs it), openssl (the TLS tests make their certificates with it), and
# qemu-aarch64-static and aarch64-linux-gnu-g++ (the aarch64 artifact test runs and cross-compiles arm64 code), and
# sudo (the package test starts the component as the nucleus does: sudo -u ggc_user ... sh -c).
missing=()
for pair in mosquitto:mosquitto strace:strace zip:zip unzip:unzip openssl:openssl \
  qemu-aarch64-static:qemu-user-static aarch64-linux-gnu-g++:g++-aarch64-linux-gnu sudo:sudo; do
  cmd=${pair%%:*}
  pkg=${pair##*:}
  if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$cmd" ] && [ ! -x "/usr/bin/$cmd" ]; then missing+=("$pkg"); fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${missing[*]} with apt-get (the tests need them)"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } >/tmp/interlock-apt.log 2>&1; then
      tail -n 20 /tmp/interlock-apt.log
      echo "${missing[*]} required for the tests and could not be installed: run 'apt-get install -y ${missing[*]}'"
      echo "0 passed, 1 failed"
      exit 1
    fi
  else
    echo "${missing[*]} required for the tests: run 'sudo apt-get install -y ${missing[*]}'"
    echo "0 passed, 1 failed"
    exit 1
  fi
fi

case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) arch="" ;;
esac

hogs=()
start_hogs() {
  for _ in $(seq "$(nproc)"); do
    ( while :; do :; done ) &
    hogs+=("$!")
  done
  echo "== busy: ${#hogs[@]} CPU hog(s) run beside the tests"
}
stop_hogs() {
  for pid in "${hogs[@]}"; do kill "$pid" 2>/dev/null; done
  hogs=()
}
trap stop_hogs EXIT

host_path="$PATH"
passed=0
failed=0
results=()

# One whole suite on Node <major>: adds its assertions to passed/failed and its closing line to results.
run_on() {
  local major=$1 dir version
  shift
  local run_passed=0 run_failed=0 started=$SECONDS
  echo "== Node $major"
  if [ -z "$arch" ]; then
    echo "Node $major: no official Node runtime is fetched for this machine's architecture ($(uname -m)); x64 and arm64 are"
    failed=$((failed + 1))
    results+=("Node $major: not run (architecture $(uname -m)), 0 passed, 1 failed")
    return
  fi
  if ! dir=$(PATH="$host_path" bash scripts/node-runtime.sh "$arch" "$major" 2>.tap/node-runtime.err); then
    echo "Node $major: the runtime could not be fetched: $(tail -n 1 .tap/node-runtime.err)"
    failed=$((failed + 1))
    results+=("Node $major: not run (runtime not fetched), 0 passed, 1 failed")
    return
  fi
  # The runtime is first on PATH for everything below (tsc, tap, the test processes tap starts, and the node the
  # tests start by name); npm set NODE, npm_node_execpath and npm_config_nodedir for the node that runs npm itself.
  export PATH="$dir/bin:$host_path" NODE="$dir/bin/node" npm_node_execpath="$dir/bin/node" npm_config_nodedir="$dir"
  if ! version=$(node -p process.version 2>&1) || [ "$(command -v node)" != "$dir/bin/node" ]; then
    echo "Node $major: $dir/bin/node does not run here: ${version##*$'\n'}"
    failed=$((failed + 1))
    results+=("Node $major: not run (runtime does not start), 0 passed, 1 failed")
    return
  fi
  echo "== Node $major: $version ($dir)"

  # better-sqlite3 13 is a Node-API addon whose package carries prebuilt binaries (no install script, nothing compiled):
  # the same binary serves every runtime. It is opened here so that a binary that does not load on this runtime (a
  # crash, a missing prebuild, a stray build/Release of another ABI, which takes precedence) fails in one line.
  local load load_status
  load=$(node -e "const D = require('better-sqlite3'); const db = new D(':memory:'); console.log('SQLite ' + db.prepare('select sqlite_version() as v').get().v); db.close()" 2>&1)
  load_status=$?
  if [ "$load_status" -ne 0 ]; then
    if [ "$load_status" -gt 128 ]; then load="killed by signal $((load_status - 128)) ($(kill -l "$load_status" 2>/dev/null))"; fi
    # The error's own line (e.g. "Error: .../better_sqlite3.node: invalid ELF header"), not node's closing version line.
    echo "Node $major: better-sqlite3 does not load on $version: $(grep -m 1 -E '^[A-Za-z]*Error\b' <<<"$load" || tail -n 1 <<<"${load:-exit $load_status}")"
    failed=$((failed + 1))
    results+=("Node $major ($version): not run (better-sqlite3 does not load), 0 passed, 1 failed")
    return
  fi
  echo "== Node $major: better-sqlite3 $(node -p "require('better-sqlite3/package.json').version"), $load"

  echo "== Node $major: type-check (tsc --noEmit)"
  if node node_modules/typescript/bin/tsc -p tsconfig.json --noEmit; then run_passed=$((run_passed + 1)); else run_failed=$((run_failed + 1)); fi

  echo "== Node $major: tap"
  local report=".tap/node$major.tap"
  [ "$busy" -eq 1 ] && start_hogs
  node node_modules/tap/dist/esm/run.mjs --reporter=tap "$@" >"$report" 2>&1
  local tap_status=$?
  stop_hogs
  # Per-file results and failing assertions; the full TAP stream is printed only when something failed.
  grep -E '^(not )?ok [0-9]+ ' "$report" || true
  if [ "$tap_status" -ne 0 ]; then
    echo "== Node $major: full tap output (something failed)"
    cat "$report"
  fi
  grep -E '^(Statements|Branches|Functions|Lines) +:' "$report" || true

  local summary tap_pass tap_fail
  summary=$(grep -E '^# \{ total: [0-9]+' "$report" | tail -n 1)
  if [ -z "$summary" ]; then
    echo "Node $major: tap printed no summary (exit $tap_status)"
    run_failed=$((run_failed + 1))
  else
    echo "$summary"
    tap_pass=$(sed -nE 's/.*pass: ([0-9]+).*/\1/p' <<<"$summary")
    tap_fail=$(sed -nE 's/.*fail: ([0-9]+).*/\1/p' <<<"$summary")
    run_passed=$((run_passed + ${tap_pass:-0}))
    run_failed=$((run_failed + ${tap_fail:-0}))
    # tap can exit non-zero without failing assertions (a file that crashed, a timeout): that is a failure too.
    if [ "$tap_status" -ne 0 ] && [ "${tap_fail:-0}" -eq 0 ]; then run_failed=$((run_failed + 1)); fi
  fi

  # A subtest that ended without asserting anything passed without proving anything: each one is a failure.
  local check empty counts
  check=$(node scripts/tap-check.mjs "$report")
  empty=$(grep -c '^empty ' <<<"$check")
  if [ "$empty" -gt 0 ]; then
    echo "== Node $major: subtests that ended without an assertion (each counts as a failure)"
    grep '^empty ' <<<"$check" | sed 's/^empty /  /'
    run_failed=$((run_failed + empty))
  fi
  counts=$(grep '^tests ' <<<"$check" | awk '{ print $2 " tests in " $4 " files" }')
  local took=$((SECONDS - started))
  passed=$((passed + run_passed))
  failed=$((failed + run_failed))
  results+=("Node $major ($version): $counts, $run_passed passed, $run_failed failed ($((took / 60))m$(printf %02d $((took % 60)))s)")
}

mkdir -p .tap
for major in "${majors[@]}"; do run_on "$major" "$@"; done
# node_modules needs nothing put back: no runtime above compiled anything into it (better-sqlite3 is Node-API).
for line in "${results[@]}"; do echo "$line"; done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
