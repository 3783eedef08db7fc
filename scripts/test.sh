#!/usr/bin/env bash
# The whole test suite: makes sure mosquitto, strace, zip, unzip and openssl are there (installs them as root, or says how), type-checks, runs tap,
# fails every subtest that ended without an assertion (tap counts those as passes), and ends with the plain line
# "N passed, N failed" (assertions; the type-check counts as one), with the number of tests and files on the line before.
# Never skips silently.
#
#   --busy   runs the suite with a CPU hog on every core alongside, as a loaded machine would (the flake check)
#   other arguments go to tap (e.g. a test file)
set -uo pipefail
cd "$(dirname "$0")/.."

busy=0
if [ "${1:-}" = "--busy" ]; then
  busy=1
  shift
fi

# Each system command the tests need, with the Debian package that has it: mosquitto (a real MQTT broker for the
# integration tests), strace (the fsync-failure test injects EIO with it), zip and unzip (the Greengrass artifact is
# built with zip, and its test unpacks and runs it) and openssl (the TLS tests make their certificates with it).
missing=()
for pair in mosquitto:mosquitto strace:strace zip:zip unzip:unzip openssl:openssl; do
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

passed=0
failed=0

echo "== type-check (tsc --noEmit)"
if npx tsc -p tsconfig.json --noEmit; then passed=$((passed + 1)); else failed=$((failed + 1)); fi

hogs=()
stop_hogs() { for pid in "${hogs[@]}"; do kill "$pid" 2>/dev/null; done; }
trap stop_hogs EXIT
if [ "$busy" -eq 1 ]; then
  for _ in $(seq "$(nproc)"); do
    ( while :; do :; done ) &
    hogs+=("$!")
  done
  echo "== busy: ${#hogs[@]} CPU hog(s) run beside the tests"
fi

echo "== tap"
mkdir -p .tap
report=.tap/last-run.tap
npx tap --reporter=tap "$@" >"$report" 2>&1
tap_status=$?
# Per-file results and failing assertions; the full TAP stream is printed only when something failed.
grep -E '^(not )?ok [0-9]+ ' "$report" || true
if [ "$tap_status" -ne 0 ]; then
  echo "== full tap output (something failed)"
  cat "$report"
fi
grep -E '^(Statements|Branches|Functions|Lines) +:' "$report" || true

summary=$(grep -E '^# \{ total: [0-9]+' "$report" | tail -n 1)
if [ -z "$summary" ]; then
  echo "tap printed no summary (exit $tap_status)"
  failed=$((failed + 1))
else
  echo "$summary"
  tap_pass=$(sed -nE 's/.*pass: ([0-9]+).*/\1/p' <<<"$summary")
  tap_fail=$(sed -nE 's/.*fail: ([0-9]+).*/\1/p' <<<"$summary")
  passed=$((passed + ${tap_pass:-0}))
  failed=$((failed + ${tap_fail:-0}))
  # tap can exit non-zero without failing assertions (a file that crashed, a timeout): that is a failure too.
  if [ "$tap_status" -ne 0 ] && [ "${tap_fail:-0}" -eq 0 ]; then failed=$((failed + 1)); fi
fi
stop_hogs

# A subtest that ended without asserting anything passed without proving anything: each one is a failure.
check=$(node scripts/tap-check.mjs "$report")
empty=$(grep -c '^empty ' <<<"$check")
if [ "$empty" -gt 0 ]; then
  echo "== subtests that ended without an assertion (each counts as a failure)"
  grep '^empty ' <<<"$check" | sed 's/^empty /  /'
  failed=$((failed + empty))
fi
counts=$(grep '^tests ' <<<"$check")
echo "${counts#tests } " | awk '{ print $1 " tests in " $3 " files" }'
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
