#!/usr/bin/env bash
# The whole thing, live, on one machine: a real systemd (in a sandbox, see systemd-sandbox.sh) with a
# few socket units, one of them broken; the plugin installed with scripts/install/install.sh into a private
# real Netdata agent; the agent's dashboard URL; and the failed-socket alarm as it changes.
#
#   bash scripts/demo/demo.sh [--cycle] [--screenshot FILE.png] [--duration SECONDS] [--port N]
#
#   --cycle            repair and break the broken socket every 20 s (alarm CLEAR, WARNING, …)
#   --screenshot FILE  save a screenshot of the dashboard at the socket chart (headless chromium)
#   --duration S       stop by itself S seconds after the agent is up (default: until Ctrl-C)
#   --port N           the demo agent's port (default 19999 if free, else a free one: an agent
#                      already running on the host keeps its port)
#
# Needs root on Debian bookworm (or similar) with Node.js 18+; installs what it lacks: Debian's
# netdata (and chromium with --screenshot) through scripts/install/install-test-deps.sh, the npm
# dependencies, the build. Ctrl-C (or SIGTERM), also with the output piped (| tee), stops the
# agent and the sandbox and removes what the demo created; nothing is left running. The host's own
# services are not touched: a Netdata already running on the host keeps running, enabled, on its
# port; the demo runs its own agent (Debian's binary) with a config, port and /tmp of its own.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
cycle=no screenshot='' duration=0 port=''
usage() { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case $1 in
    --cycle) cycle=yes; shift ;;
    --screenshot) screenshot=$(realpath -m -- "${2:?--screenshot needs a file}"); shift 2 ;;
    --duration) duration=${2:?--duration needs seconds}; shift 2 ;;
    --port) port=${2:?--port needs a number}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "demo: unknown option '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
[[ $duration =~ ^[0-9]+$ ]] || { echo "demo: --duration wants whole seconds" >&2; exit 2; }
[ -z "$port" ] || [[ $port =~ ^[0-9]+$ ]] || { echo "demo: --port wants a number" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "demo: run me as root (the sandboxed systemd and the agent need it)" >&2; exit 1; }
command -v node >/dev/null || { echo "demo: node not found: install Node.js 18 or newer first" >&2; exit 1; }

ts() { date +%H:%M:%S; }
# Also into the log once there is one; a closed stdout (the `| tee` was ended by Ctrl-C) is no error.
say() {
  local line; line="$(ts)  $*"
  [ -z "${log:-}" ] || [ ! -f "$log" ] || printf '%s\n' "$line" >>"$log" 2>/dev/null || true
  printf '%s\n' "$line" 2>/dev/null || true
}

# ---- state and cleanup ----------------------------------------------------------------------------
# One state dir for everything. Not under /tmp, /var/tmp or /run (private inside the sandbox: the
# exposed bus socket must be visible to the agent) and not under the checkout (its parents may be
# closed to user netdata).
mkdir -p /var/lib/systemdunits-demo
state=$(mktemp -d /var/lib/systemdunits-demo/run.XXXXXX)
chmod 755 /var/lib/systemdunits-demo "$state"
sandbox=$state/sandbox agent=$state/agent log=$state/demo.log
mkdir -p "$sandbox" "$agent"
: >"$log"
watcher_pid='' shot_pid='' cleaned=no failed=no

cleanup() {
  [ $cleaned = no ] || return 0
  cleaned=yes
  # A second Ctrl-C must not cut the cleanup short, nor a write to a reader that is gone (Ctrl-C
  # ends `| tee` too: SIGPIPE would kill the demo mid-cleanup, leaving the agent and systemd up).
  trap '' INT TERM PIPE
  set +e
  echo 2>/dev/null
  say "stopping: agent, sandboxed systemd, helpers"
  [ -z "$watcher_pid" ] || kill -TERM "$watcher_pid" 2>/dev/null || true
  # The screenshot runs in a session of its own (node + chromium): end that whole session.
  [ -z "$shot_pid" ] || kill -TERM -- "-$shot_pid" 2>/dev/null || true
  local left=''
  bash "$repo/scripts/sandbox/netdata-agent.sh" stop "$agent" >>"$log" 2>&1 || left+=' agent'
  bash "$repo/scripts/sandbox/systemd-sandbox.sh" stop "$sandbox" >>"$log" 2>&1 || left+=' sandbox'
  for p in $watcher_pid ${shot_pid:+$(pgrep -s "$shot_pid" 2>/dev/null || true)}; do
    for _ in $(seq 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  if [ -n "$left" ]; then failed=yes; say "warning: stopping failed for:$left (see $log)"; fi
  if [ $failed = yes ]; then
    say "logs kept in $state (demo.log, agent/log/error.log, sandbox/systemd.log)"
  else
    rm -rf "$state"; rmdir /var/lib/systemdunits-demo 2>/dev/null || true
  fi
  [ -n "$left" ] || say "stopped; nothing left running"
}
on_signal() { cleanup; exit "$1"; }
trap 'on_signal 130' INT
trap 'on_signal 143' TERM
trap 'on_signal 141' PIPE   # the reader of our output went away (| tee ended): clean up, then go
trap 'rc=$?; [ $rc = 0 ] || failed=yes; cleanup; exit $rc' EXIT

die() { say "error: $*"; [ ! -s "$log" ] || { echo "--- last lines of $log:"; tail -n 25 "$log"; }; failed=yes; exit 1; }
# Runs a step with its output in the log; shows the log's tail if it fails.
step() { local what=$1; shift; say "$what"; "$@" >>"$log" 2>&1 || die "$what failed"; }

port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}
pick_port() { if port_taken "$1"; then free_port; else echo "$1"; fi; }
sbx() { bash "$repo/scripts/sandbox/systemd-sandbox.sh" exec "$sandbox" "$@"; }

# ---- what it needs --------------------------------------------------------------------------------
deps=(); [ -z "$screenshot" ] || deps=(--with-browser)
step "installing what the demo needs (Debian's netdata${screenshot:+, chromium}) if missing; the first time takes a while" \
  bash "$repo/scripts/install/install-test-deps.sh" ${deps[@]+"${deps[@]}"}
cd "$repo"
if [ ! -x node_modules/.bin/tsc ] || [ ! -x node_modules/.bin/tsx ] || [ ! -d node_modules/playwright-core ]; then
  step "installing the npm dependencies (npm ci)" npm ci --no-audit --no-fund
fi
step "building the plugin (npm run build)" npm run build

# ---- a real systemd with a few socket units ------------------------------------------------------
web_port=$(pick_port 8080)
ssh_port=$(pick_port 2222)
step "booting systemd in a sandbox (its own PID and mount namespaces; the host's systemd is not involved)" \
  bash "$repo/scripts/sandbox/systemd-sandbox.sh" start "$sandbox"
units=/proc/$(cat "$sandbox/pid")/root/run/systemd/system   # the sandbox's private /run
# web: an inetd-style HTTP responder on a TCP port (curl it); metrics: a unix socket with a
# long-running service; ssh-gateway: a banner on a TCP port; legacy-api: broken, its ExecStartPre
# fails while its config /run/legacy-api.conf (inside the sandbox) is missing.
cat >"$units/web.socket" <<EOF
[Unit]
Description=Web front end (socket)
[Socket]
ListenStream=127.0.0.1:$web_port
Accept=yes
[Install]
WantedBy=sockets.target
EOF
cat >"$units/web@.service" <<'EOF'
[Unit]
Description=Web front end (connection)
[Service]
ExecStart=/bin/sh -c 'printf "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nhello from web.socket in the systemdunits demo\n"'
StandardInput=socket
StandardOutput=socket
EOF
cat >"$units/metrics.socket" <<'EOF'
[Unit]
Description=Metrics exporter (socket)
[Socket]
ListenStream=/run/metrics.sock
[Install]
WantedBy=sockets.target
EOF
cat >"$units/metrics.service" <<'EOF'
[Unit]
Description=Metrics exporter
[Service]
ExecStart=/bin/sleep infinity
EOF
cat >"$units/ssh-gateway.socket" <<EOF
[Unit]
Description=SSH gateway (socket)
[Socket]
ListenStream=127.0.0.1:$ssh_port
Accept=yes
[Install]
WantedBy=sockets.target
EOF
cat >"$units/ssh-gateway@.service" <<'EOF'
[Unit]
Description=SSH gateway (connection)
[Service]
ExecStart=/bin/sh -c 'printf "SSH-2.0-demo_gateway\r\n"'
StandardInput=socket
StandardOutput=socket
EOF
cat >"$units/legacy-api.socket" <<'EOF'
[Unit]
Description=Legacy API (socket)
[Socket]
ListenStream=/run/legacy-api.sock
ExecStartPre=/bin/sh -c 'test -s /run/legacy-api.conf || { echo "legacy-api: /run/legacy-api.conf is missing" >&2; exit 1; }'
[Install]
WantedBy=sockets.target
EOF
cat >"$units/legacy-api.service" <<'EOF'
[Unit]
Description=Legacy API
[Service]
ExecStart=/bin/sleep infinity
EOF
step "starting web.socket, metrics.socket, ssh-gateway.socket" \
  sbx sh -c 'systemctl daemon-reload && systemctl start web.socket metrics.socket ssh-gateway.socket metrics.service'
# Exposed before anything fails: expose used to wait for the system state "running", which a failed
# unit turns into "degraded".
step "making the sandbox's system bus reachable by user netdata" \
  bash "$repo/scripts/sandbox/systemd-sandbox.sh" expose "$sandbox" "$sandbox/bus.sock"
say "starting legacy-api.socket: it fails (its ExecStartPre finds no /run/legacy-api.conf)"
sbx systemctl start legacy-api.socket >>"$log" 2>&1 || true

# ---- the plugin in a real agent ------------------------------------------------------------------
mkdir -p "$agent/etc"   # the agent's user config dir
step "installing the plugin with scripts/install/install.sh" \
  bash "$repo/scripts/install/install.sh" --config-dir "$agent/etc" --plugins-dir "$agent/plugins.d" \
    --health-dir "$agent/health.d" --owner netdata
port=${port:-$(pick_port 19999)}
port_taken "$port" && die "port $port is taken"
step "starting Netdata $(netdata -v 2>/dev/null | sed -n 's/^netdata v\{0,1\}//p') with the plugin on 127.0.0.1:$port" \
  bash "$repo/scripts/sandbox/netdata-agent.sh" start "$agent" --plugins "$agent/plugins.d" --health "$agent/health.d" \
    --bus "unix:path=$sandbox/bus.sock" --port "$port" --hostname systemdunits-demo
url=http://127.0.0.1:$port
agent_pid=$(cat "$agent/pid") systemd_pid=$(cat "$sandbox/pid")
alive() {
  kill -0 "$agent_pid" 2>/dev/null || die "the agent stopped unexpectedly (see $agent/log/error.log)"
  kill -0 "$systemd_pid" 2>/dev/null || die "the sandboxed systemd (pid $systemd_pid) stopped unexpectedly"
}
alive

# The dashboard's default window is 5 minutes of a chart that is seconds old: ask for the last minute.
{ echo
echo "  Dashboard:   $url/#menu_systemdunits_service_units_submenu_socket;after=-60;before=0"
echo "  Chart API:   $url/api/v1/data?chart=systemdunits_service_units.socket_unit_state&after=-10&options=jsonwrap"
echo "  Alarms API:  $url/api/v1/alarms?all"
echo "  Try:         curl http://127.0.0.1:$web_port/   (web.socket starts web@.service for it)"
echo "  Sockets in the sandbox:"
sbx systemctl list-units --no-pager --no-legend --plain --all web.socket metrics.socket ssh-gateway.socket legacy-api.socket |
  awk '{ d = ""; for (i = 5; i <= NF; i++) d = d " " $i; printf "    %-20s %-8s %-10s%s\n", $1, $3, $4, d }'
echo "  Agent log:   $agent/log/error.log"
echo; } 2>/dev/null || true
if [ "$duration" = 0 ]; then until="Ctrl-C to stop"; else until="stopping after ${duration}s"; fi
say "watching the alarm systemd_socket_unit_failed_state, changes only ($until)"
node --import tsx "$repo/scripts/demo/watch-alarm.ts" --url "$url" --alarm systemd_socket_unit_failed_state &
watcher_pid=$!

if [ -n "$screenshot" ]; then
  # After 12 s of history, shown in a 12 s window (data across the whole axis, not a few seconds
  # at the end of an empty one), while legacy-api.socket is still failed (the first repair of
  # --cycle comes at 20 s). In a session of its own, so that cleanup can end it with its chromium.
  setsid bash -c 'sleep 12
    node --import tsx "$1/scripts/demo/dashboard.ts" --url "$2" --chart systemdunits_service_units.socket_unit_state \
      --window 12 --expect legacy-api.socket=5 --out "$3" 2>&1 |
      while IFS= read -r line; do printf "%s  screenshot: %s\n" "$(date +%H:%M:%S)" "$line"; done' \
    sh "$repo" "$url" "$screenshot" </dev/null &
  shot_pid=$!
fi

start=$SECONDS next=$((SECONDS + 20)) broken=yes
while :; do
  if [ "$duration" != 0 ] && [ $((SECONDS - start)) -ge "$duration" ]; then say "${duration}s are up"; break; fi
  alive
  if [ $cycle = yes ] && [ $SECONDS -ge $next ]; then
    next=$((next + 20))
    if [ $broken = yes ]; then
      say "demo: repairing legacy-api.socket (writing /run/legacy-api.conf, reset-failed, start)"
      sbx sh -c 'echo "listen=/run/legacy-api.sock" >/run/legacy-api.conf && systemctl reset-failed legacy-api.socket &&
                 systemctl start legacy-api.socket' >>"$log" 2>&1 || say "demo: the repair failed (see $log)"
      broken=no
    else
      say "demo: breaking legacy-api.socket (removing /run/legacy-api.conf, restart)"
      sbx sh -c 'rm -f /run/legacy-api.conf; systemctl restart legacy-api.socket' >>"$log" 2>&1 || true
      broken=yes
    fi
  fi
  sleep 1
done
exit 0
