#!/usr/bin/env bash
# Soak run (not in CI): the plugin under unit churn and repeated faults, printing its RSS and open
# file descriptors over time; exits 1 if they grow, if the plugin dies, or if it stops reporting
# the right states after a fault.
#   bash scripts/perf/soak.sh [--minutes N] [--report-every S] [--max-messages M]
#     --minutes N        how long (default 30)
#     --report-every S   seconds between RSS/fd lines (default 60)
#     --max-messages M   the plugin replaces its D-Bus connection after M messages (default 10000,
#                        so that the replacement dbus-next's serial limit needs happens many times)
#     --pause S          idle seconds between cycles (default 10)
# Boots a private systemd (scripts/sandbox/systemd-sandbox.sh) and stops it at the end, on Ctrl-C or error.
# Needs root, Debian bookworm, Node 20.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" = 0 ] || { echo "scripts/perf/soak.sh: run as root (it boots systemd in a namespace)" >&2; exit 1; }
for a in "$@"; do
  case $a in -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
done
[ -x node_modules/.bin/tsx ] || npm ci --no-audit --no-fund --loglevel=error
npm run --silent build
mkdir -p .sandbox
state=$(mktemp -d "$PWD/.sandbox/soak-XXXXXX"); chmod 755 "$state"
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "${soak_pid:-}" ] && kill -0 "$soak_pid" 2>/dev/null; then
    kill -TERM "$soak_pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$soak_pid" 2>/dev/null || break; sleep 0.1; done
  fi
  bash scripts/sandbox/systemd-sandbox.sh stop "$state/sandbox" >/dev/null 2>&1 || true
  rm -rf "$state"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
node --import tsx scripts/perf/soak.mts --state "$state" "$@" &
soak_pid=$!
wait "$soak_pid"
