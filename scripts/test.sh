#!/usr/bin/env bash
# The test command (README, .ci/run): installs what the tests need, type-checks, builds, and runs
# every test (unit, integration against real systemd, end-to-end inside a real Netdata agent).
# Ends with a line "N passed, N failed". Needs root on Debian bookworm with Node 20.
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" = 0 ] || { echo "scripts/test.sh: run as root (tests boot systemd in a namespace and run a Netdata agent)" >&2; exit 1; }
bash scripts/install/install-test-deps.sh --with-browser
[ -x node_modules/.bin/vitest ] || npm ci --no-audit --no-fund --loglevel=error
npx tsc --noEmit -p .
npm run --silent build

report=$(mktemp "${TMPDIR:-/tmp}/systemdunits-tests.XXXXXX.json")
trap 'rm -f "$report"' EXIT
status=0
npx vitest run --reporter=default --reporter=json --outputFile="$report" "$@" || status=$?
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const skipped = r.numPendingTests + r.numTodoTests;
  console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed` + (skipped ? `, ${skipped} skipped` : ""));
' "$report" || { echo "0 passed, 1 failed"; status=1; }
exit $status
