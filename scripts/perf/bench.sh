#!/usr/bin/env bash
# Benchmark of issue 4: systemdunits.plugin against node_exporter's systemd collector, on one real
# systemd, at several numbers of socket units, in one run; prints one table (README "Performance").
#   bash scripts/perf/bench.sh [--n LIST] [--quick] [--json FILE] [--markdown]     (or: npm run bench -- …)
#     --n LIST       socket counts, comma-separated (default 100,1000,5000,10000; --quick 100,1000)
#     --seconds S    steady window per plugin run (default 60; --quick 10)
#     --flips K      failures timed per plugin run (default 20; --quick 10)
#     --scrapes K    node_exporter scrapes per N (default 3; --quick 1)
#     --baseline S   idle window per N (default 10; --quick 5)
#     --json FILE    also write every figure as JSON
#     --markdown     print the table as markdown (to paste into the README)
#   bash scripts/perf/bench.sh --standalone [--n N] [--seconds S] [--runs K] [--node24 BIN] [--exe NAME=PATH]
#     the standalone executable (npm run release) against the node + bundle launcher: start-up,
#     steady CPU, RSS (scripts/perf/bench-standalone.mts); a few minutes
# (It is scripts/perf/bench.sh, not scripts/bench: that name is the directory of its modules.)
# Boots a private systemd 252 (scripts/sandbox/systemd-sandbox.sh) and grows its bench sockets to each N in
# turn; see scripts/perf/bench.mts for what is measured. Peers: prometheus-node-exporter and, if cheap to
# have, monitoring-plugins-systemd (check_systemd); both are installed here if missing, without
# letting their packages start or enable anything on the host. Needs root, Debian bookworm, Node 20.
# Everything it starts (sandbox, plugin, node_exporter, check_systemd) is stopped on exit, Ctrl-C
# or error: by the benchmark itself, and again here by recorded PID as a safety net.
# The default run takes 15-25 minutes (systemd reloading 10,000 instances is most of the spread);
# --quick about 3. Progress and estimates go to stderr, the table to stdout.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)

[ "$(id -u)" = 0 ] || { echo "scripts/perf/bench.sh: run as root (it boots systemd in a namespace)" >&2; exit 1; }
for a in "$@"; do
  case $a in -h|--help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
done
if [ "${1:-}" = --standalone ]; then
  shift
  [ -x node_modules/.bin/tsx ] || npm ci --no-audit --no-fund --loglevel=error
  npm run --silent build
  [ -x dist/release/systemdunits.plugin ] || bash scripts/build/release.sh
  exec node --import tsx scripts/perf/bench-standalone.mts "$@"
fi

# ---- peers: install if missing, and make sure their packages leave nothing running or enabled ----
pkgs=(prometheus-node-exporter monitoring-plugins-systemd python3 dbus systemd util-linux procps)
. scripts/install/lib/apt.sh
mapfile -t missing < <(apt_missing "${pkgs[@]}")

# node_exporters in the host's own mount namespace (ones inside sandboxes or other tests' private
# namespaces are not ours to judge)
host_exporters() {
  local me p; me=$(readlink /proc/self/ns/mnt)
  for p in $(pgrep -x prometheus-node || true); do   # comm is cut to 15 characters
    [ "$(readlink "/proc/$p/ns/mnt" 2>/dev/null)" = "$me" ] && echo "$p"
  done; return 0
}

if [ ${#missing[@]} -gt 0 ]; then
  echo "bench: installing ${missing[*]}" >&2
  before=" $(host_exporters | tr '\n' ' ') "
  apt_install_quietly "${missing[@]}"
  # An exporter the postinst started anyway (new since the install, whose parent is init or the
  # package scripts) is stopped; anything else is someone else's.
  for p in $(host_exporters); do
    case $before in *" $p "*) continue ;; esac
    ppid=$(awk '{print $4}' "/proc/$p/stat" 2>/dev/null || echo 0)
    if [ "$ppid" = 1 ] || [ "$ppid" = 0 ] || grep -qa -e dpkg -e postinst -e invoke-rc.d -e start-stop "/proc/$ppid/cmdline" 2>/dev/null; then
      echo "bench: stopping the node_exporter the package started (pid $p)" >&2
      kill "$p" 2>/dev/null || true
    fi
  done
fi
# The package enables its service (and the sandbox boots from the host's /etc): keep it disabled.
apt_disable_service prometheus-node-exporter
command -v prometheus-node-exporter >/dev/null || { echo "bench: prometheus-node-exporter missing after install" >&2; exit 1; }
[ -x /usr/lib/nagios/plugins/check_systemd ] || { echo "bench: /usr/lib/nagios/plugins/check_systemd missing after install" >&2; exit 1; }

# ---- the plugin ----
[ -x node_modules/.bin/tsx ] || npm ci --no-audit --no-fund --loglevel=error
npm run --silent build

# ---- run; the state dir records every PID the benchmark starts, for the safety net below ----
mkdir -p .sandbox
state=$(mktemp -d "$repo/.sandbox/bench-XXXXXX"); chmod 755 "$state"
cleanup() {
  local rc=$? pid start
  trap - EXIT INT TERM
  if [ -n "${bench_pid:-}" ] && kill -0 "$bench_pid" 2>/dev/null; then
    kill -TERM "$bench_pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$bench_pid" 2>/dev/null || break; sleep 0.1; done
  fi
  # pids: "PID STARTTIME what" lines; a PID is killed only if it is still the same process.
  if [ -f "$state/pids" ]; then
    while read -r pid start _; do
      [ -r "/proc/$pid/stat" ] || continue
      [ "$(sed 's/.*) //' "/proc/$pid/stat" | awk '{print $20}')" = "$start" ] || continue
      kill -9 "$pid" 2>/dev/null || true
    done <"$state/pids"
  fi
  bash scripts/sandbox/systemd-sandbox.sh stop "$state/sandbox" >/dev/null 2>&1 || true
  rm -rf "$state"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
node --import tsx scripts/perf/bench.mts --state "$state" "$@" &
bench_pid=$!
wait "$bench_pid"
