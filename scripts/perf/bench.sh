#!/usr/bin/env bash
# Benchmark of issues 4 and 14: systemdunits.plugin (the default job: every unit type, socket activity
# on) against a floor program writing the same batch, node_exporter's systemd collector, systemctl and
# check_systemd, on one real systemd, at several numbers of socket units, in one sitting; one table.
#   bash scripts/perf/bench.sh [--n LIST] [--quick] [--json FILE] [--markdown]     (or: npm run bench -- …)
#     --n LIST         socket counts, comma-separated (default 100,1000,10000; --quick 100,1000)
#     --warm W         steady windows start W s after the plugin's exec (default 15; --quick 5)
#     --seconds S      steady window length (default 60; --quick 10)
#     --flips K        failures timed per N (default 20; --quick 10)
#     --scrapes K      node_exporter scrapes per N (default 3; --quick 1)
#     --baseline S     idle window per N (default 10; --quick 5)
#     --resync-every R SYSTEMDUNITS_RESYNC_EVERY of the safety-resync run, at least (default 20; --quick 15)
#     --resyncs K      safety resyncs timed per N (default 4: the first and 3 after it; --quick 2)
#     --reload         a daemon-reload at every N (default: N <= 2,000 only; minutes at 10,000)
#     --no-standalone  leave out dist/release/systemdunits.plugin (measured when it exists)
#     --json FILE      also write every figure as JSON;  --markdown  the table as markdown (README)
#   bash scripts/perf/bench.sh --standalone [--n LIST] [--seconds S] [--runs K] [--node BIN]… [--exe NAME=PATH]…
#     the standalone executable against the node + bundle launcher in detail (scripts/perf/bench-standalone.mts)
# Duration on the 2-core test machine: the default run ~25 min (of it ~10 at 10,000 sockets);
# --quick ~6 min. 20,000 sockets do not fit PID 1's fd limit (20,000 here): the safety resync at
# 10,000 sockets lists ~20,000 units (the sockets and their services), the issue's "20,000 units".
# Boots a private systemd 252 (scripts/sandbox/systemd-sandbox.sh) and grows its bench sockets to each
# N in turn; see scripts/perf/bench.mts for what is measured. Peers: prometheus-node-exporter and
# monitoring-plugins-systemd (check_systemd), installed here if missing, without letting their
# packages start or enable anything on the host. Needs root, Debian bookworm, Node 20. Everything it
# starts is stopped on exit, Ctrl-C or error (and again here by recorded PID as a safety net).
# Progress and estimates go to stderr, the table to stdout.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)

[ "$(id -u)" = 0 ] || { echo "scripts/perf/bench.sh: run as root (it boots systemd in a namespace)" >&2; exit 1; }
for a in "$@"; do
  case $a in -h|--help) sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
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
