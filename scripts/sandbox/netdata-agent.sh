#!/usr/bin/env bash
# A real, private Netdata agent for end-to-end tests: Debian's netdata 1.37.1, or with --prefix an
# agent installed under a prefix (static-build layout, e.g. the v2.10.4 one at /opt/netdata-v2).
#   netdata-agent.sh start DIR [options]  -> writes DIR/netdata.conf, starts the agent, waits for its API,
#                                            prints the port
#   netdata-agent.sh stop DIR [--all]     -> stops the agent and everything it started (plugins too);
#                                            SIGTERM to the agent alone (KillMode=mixed, Debian's unit),
#                                            or with --all to every process of it at once, as systemd's
#                                            default KillMode=control-group does (Netdata's own v2 unit)
#   netdata-agent.sh exec DIR CMD…        -> runs CMD in the agent's mount namespace (netdatacli …)
# start options:
#   --plugins DIR        directory of the plugin(s) under test (default DIR/plugins.d, empty); the
#                        agent also scans the stock dir, as Debian's does, but runs only --enable ones
#   --enable NAME        run NAME.plugin (repeatable; default: systemdunits); all others stay off
#   --health DIR         user health config (default DIR/health.d, empty)
#   --prefix DIR         run DIR/usr/sbin/netdata with its own stock config, web and plugins dirs
#                        (default: Debian's /usr/sbin/netdata); v2 agents also get [logs] files
#   --stock-health       load the stock alarms (STOCK/health.d of that agent); default: none
#   --port N             API port on 127.0.0.1 (default: a free one)
#   --alarm-script PATH  called on each notification (default: DIR/alarm-notify.sh, which appends its
#                        arguments, separated by \037, one call a line, to DIR/notifications.log)
#   --bus ADDRESS        DBUS_SYSTEM_BUS_ADDRESS for the agent and so for its plugins
#   --hostname NAME      the agent's hostname (use distinct ones for a streaming parent and child)
#   --update-every N     the agent's update_every (argv[1] of the plugins), default 1
#   --env NAME=VALUE     extra environment for the agent and its plugins (repeatable)
#   --stream-to HOST:PORT --api-key UUID   stream to a parent
#   --accept-stream UUID                   accept children that use this api key
#   --postpone SECONDS   parent: postpone a child's alarms after it connects (default 1; netdata: 60)
#   --timeout SECONDS    how long to wait for the API (default 30)
# Files in DIR: netdata.conf, etc/ (user config, stream.conf), log/error.log (agent log, plugins'
# stderr), log/health.log, stdout, stderr, port, pid, notifications.log, prefix and version (of the agent run).
# The agent runs as user `netdata` in a private mount namespace with its own /tmp, because 1.37.1
# hard-codes netdatacli's socket as /tmp/netdata-ipc and removes it at start and exit: two agents
# sharing /tmp break each other. Paths under the host's /tmp that it needs are bound into it.
set -euo pipefail
die() { echo "netdata-agent: $*" >&2; exit 1; }
cmd=${1:-}; [ $# -ge 2 ] || die "usage: $0 start|stop|exec DIR [options|CMD…]"
dir=$2; shift 2
mkdir -p "$dir"; dir=$(cd "$dir" && pwd)
[ "$dir" != /tmp ] || die "DIR must not be /tmp itself"

alive() { [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; }

# Every process in the agent's mount namespace (plugins, their children, the spawn server), zombies
# excluded. The namespace is ours alone, so this is exact; a session id would miss a setsid child.
# The kernel recycles namespace inode numbers as soon as a namespace dies: once the agent's is gone,
# DIR/mntns may name someone else's brand-new namespace. So a process counts only if it also sees
# the token file that start put in the agent's private /tmp.
ns_pids() {
  local ns token p; ns=$(cat "$dir/mntns" 2>/dev/null) || return 0
  token=$(cat "$dir/nstoken" 2>/dev/null) || return 0
  # Never the host's own namespace: that would be every process on the machine.
  [ -n "$ns" ] && [ -n "$token" ] && [ "$ns" != "$(ns_of self)" ] || return 0
  for p in $(ps -e -o pid=,stat=,mntns= | awk -v ns="$ns" '$3 == ns && $2 !~ /^Z/ { print $1 }'); do
    [ -e "/proc/$p/root/tmp/.netdata-agent-$token" ] && echo "$p"
  done; return 0
}
ns_of() { local l; l=$(readlink "/proc/$1/ns/mnt" 2>/dev/null) || return 1; echo "${l//[^0-9]/}"; }

stop_agent() {
  local pid pids all=${1:-}; pid=$(cat "$dir/pid" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    if [ "$all" = --all ]; then pids=$(ns_pids); kill -TERM $pids 2>/dev/null || true
    else kill -TERM "$pid" 2>/dev/null || true; fi   # netdata stops its plugins itself on SIGTERM
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  pids=$(ns_pids)                            # what outlived it: plugins' children, a hung agent
  [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
  for _ in $(seq 50); do pids=$(ns_pids); [ -z "$pids" ] && break; sleep 0.1; done
  [ -z "$pids" ] || die "processes left in the agent's namespace: $(ps -o pid=,user=,args= -p "${pids//$'\n'/,}" 2>/dev/null)"
  rm -f "$dir/pid" "$dir/mntns" "$dir/nstoken"
}

case $cmd in
stop) [ "${1:-}" = "" ] || [ "$1" = --all ] || die "stop: unknown option $1"; stop_agent "${1:-}"; exit 0 ;;
exec) alive || die "no agent running in $dir"
  # netdatacli & co of the agent that runs, first in PATH
  p=$(cat "$dir/prefix" 2>/dev/null || true); [ -z "$p" ] || PATH=$p/usr/sbin:$PATH
  exec nsenter -t "$(cat "$dir/pid")" -m -- "$@" ;;
start) ;;
*) die "unknown command '$cmd' (start|stop|exec)" ;;
esac

# ---- start ----
! alive || die "an agent is already running in $dir (pid $(cat "$dir/pid"))"
plugins=$dir/plugins.d; health=$dir/health.d; stock_health=$dir/stock-health.d; port=""
alarm_script=""; bus=""; hostname=""; update_every=1; stream_to=""; api_key=""; accept=""
postpone=1; timeout=30; enabled=(); extra_env=(); sock=""; prefix=""; want_stock_health=0
while [ $# -gt 0 ]; do
  opt=$1; shift
  case $opt in
    --stock-health) want_stock_health=1; continue ;;
    --prefix|--plugins|--enable|--health|--port|--alarm-script|--bus|--hostname|--update-every|--env|\
    --stream-to|--api-key|--accept-stream|--postpone|--timeout)
      [ $# -ge 1 ] || die "option $opt needs a value"; val=$1; shift ;;
    *) die "unknown option $opt" ;;
  esac
  case $opt in
    --prefix) prefix=$(realpath -m -- "$val") ;;
    --plugins) plugins=$(realpath -m -- "$val") ;;
    --enable) enabled+=("$val") ;;
    --health) health=$(realpath -m -- "$val") ;;
    --port) port=$val ;;
    --alarm-script) alarm_script=$(realpath -m -- "$val") ;;
    --bus) bus=$val ;;
    --hostname) hostname=$val ;;
    --update-every) update_every=$val ;;
    --env) [[ $val == *=* ]] || die "--env wants NAME=VALUE"; extra_env+=("$val") ;;
    --stream-to) stream_to=$val ;;
    --api-key) api_key=$val ;;
    --accept-stream) accept=$val ;;
    --postpone) postpone=$val ;;
    --timeout) timeout=$val ;;
  esac
done
[ ${#enabled[@]} -gt 0 ] || enabled=(systemdunits)
[ -z "$stream_to" ] || [ -n "$api_key" ] || die "--stream-to needs --api-key"
if [ -n "$prefix" ]; then
  netdata_bin=$prefix/usr/sbin/netdata; stock_config=$prefix/usr/lib/netdata/conf.d
  web_dir=$prefix/usr/share/netdata/web; stock_plugins=$prefix/usr/libexec/netdata/plugins.d
  [ -x "$netdata_bin" ] || die "no agent at $netdata_bin (--prefix $prefix)"
else
  netdata_bin=$(command -v netdata) || die "netdata is not installed (run scripts/install/install-test-deps.sh)"
  stock_config=/usr/lib/netdata/conf.d; web_dir=/usr/share/netdata/web; stock_plugins=/usr/lib/netdata/plugins.d
fi
[ "$want_stock_health" = 0 ] || stock_health=$stock_config/health.d
agent_version=$("$netdata_bin" -v 2>/dev/null | sed -n 's/^netdata v\{0,1\}\([0-9][0-9.]*\).*/\1/p' | head -n1)
[ -n "$agent_version" ] || die "cannot tell the version of $netdata_bin"
getent passwd netdata >/dev/null || die "user netdata is missing (run scripts/install/install-test-deps.sh)"

# Fresh state each start (logs of a previous run go away), dirs the agent writes owned by netdata.
# DIR/etc is the agent's user config dir (NETDATA_USER_CONFIG_DIR): files put there before the start
# (e.g. by scripts/install/install.sh --config-dir DIR/etc) are kept; only what this script writes is renewed.
rm -rf "$dir/log" "$dir/cache" "$dir/lib" "$dir/lock" "$dir/registry" "$dir/home" "$dir/run" \
       "$dir/etc/stream.conf" "$dir/stdout" "$dir/stderr" "$dir/port" "$dir/notifications.log" "$dir/pid" "$dir/mntns" "$dir/nstoken" "$dir/prefix" "$dir/version"
mkdir -p "$dir"/{log,cache,lib,lock,registry,home,run,etc,.nstmp}
chown netdata:netdata "$dir"/{log,cache,lib,lock,registry,home,run}
chmod 755 "$dir"                         # mktemp makes 0700 dirs: netdata must get through
[ "$plugins" != "$dir/plugins.d" ] || mkdir -p "$plugins"
[ "$health" != "$dir/health.d" ] || mkdir -p "$health"
[ "$stock_health" != "$dir/stock-health.d" ] || mkdir -p "$stock_health"
touch "$dir/etc/.opt-out-from-anonymous-statistics"
if [ -z "$alarm_script" ]; then
  alarm_script=$dir/alarm-notify.sh
  cat >"$alarm_script" <<EOF
#!/bin/sh
# Records each notification of the agent: its arguments separated by \\037, one call a line.
# The agent runs several at once (two alarms raised together): one locked write each, or their
# pieces interleave into one line.
line=\$(for a in "\$@"; do printf '%s\\037' "\$a"; done | tr '\\n' ' ')
exec 9>>'$dir/notifications.log'
flock 9
printf '%s\\n' "\$line" >&9
EOF
  chmod 755 "$alarm_script"
  install -o netdata -g netdata -m 644 /dev/null "$dir/notifications.log"
fi

# What the netdata user must be able to reach, checked now rather than guessed from a silent agent.
as_netdata() { runuser -u netdata -- "$@"; }
as_netdata test -r "$plugins" -a -x "$plugins" || die "user netdata cannot read $plugins (parent dirs need o+x)"
as_netdata test -r "$health" -a -x "$health" || die "user netdata cannot read $health"
as_netdata test -x "$alarm_script" || die "user netdata cannot execute $alarm_script"
for n in "${enabled[@]}"; do
  if [ -e "$plugins/$n.plugin" ]; then
    as_netdata test -x "$plugins/$n.plugin" || die "user netdata cannot execute $plugins/$n.plugin"
  else
    echo "netdata-agent: warning: $plugins/$n.plugin does not exist (yet)" >&2
  fi
done
if [[ $bus == unix:path=* ]]; then
  sock=${bus#unix:path=}; sock=${sock%%,*}
  as_netdata test -w "$sock" || die "user netdata cannot open the bus socket $sock (see systemd-sandbox.sh expose)"
fi

if [ -z "$port" ]; then
  port=$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
fi

{
  echo "# written by $0 for a test agent"
  echo "[global]"
  echo "  run as user = netdata"
  [ -z "$hostname" ] || echo "  hostname = $hostname"
  echo "  process scheduling policy = keep"   # default 'idle' makes timings jittery on a busy box
  echo "[db]"
  echo "  mode = ram"
  echo "  update every = $update_every"
  echo "[directories]"
  echo "  config = $dir/etc"
  echo "  stock config = $stock_config"
  echo "  log = $dir/log"
  echo "  web = $web_dir"
  echo "  cache = $dir/cache"
  echo "  lib = $dir/lib"
  echo "  lock = $dir/lock"
  echo "  home = $dir/home"
  echo "  registry = $dir/registry"
  # The stock dir comes first: 1.37.1 runs system-info.sh from the first plugins dir, and without
  # it a streaming child crashes (free() of a static "" in rrdpush_clean_encoded) when it connects.
  # Its plugins stay off: `enable running new plugins = no`.
  echo "  plugins = \"$stock_plugins\" \"$plugins\""
  echo "  health config = $health"
  echo "  stock health config = $stock_health"
  echo "[logs]"
  echo "  errors flood protection period = 0"  # never drop plugin stderr lines from error.log
  if [ "${agent_version%%.*}" -ge 2 ]; then
    # v1.44+ log per source (or to the journal): the daemon's and the plugins' lines into error.log,
    # as 1.37.1 writes them, so the tests read one file on every agent.
    echo "  daemon = $dir/log/error.log"
    echo "  collector = $dir/log/error.log"
    echo "  health = $dir/log/health.log"
    echo "  access = off"
    echo "  aclk = off"
  fi
  echo "[web]"
  echo "  bind to = 127.0.0.1:$port"
  echo "  web files owner = root"              # the dashboard files belong to root on Debian
  echo "  web files group = root"
  echo "[registry]"
  echo "  enabled = no"
  echo "[ml]"
  echo "  enabled = no"
  echo "[plugins]"
  for p in proc cgroups diskspace tc idlejitter timex statsd 'netdata monitoring'; do echo "  $p = no"; done
  echo "  enable running new plugins = no"
  for n in "${enabled[@]}"; do echo "  $n = yes"; done
  echo "[statsd]"
  echo "  enabled = no"
  echo "[health]"
  echo "  enabled = yes"
  echo "  run at least every seconds = 1"     # default 10 delays the first evaluation
  echo "  script to execute on alarm = $alarm_script"
} >"$dir/netdata.conf"

if [ -n "$stream_to" ] || [ -n "$accept" ]; then
  {
    echo "[stream]"
    if [ -n "$stream_to" ]; then
      echo "  enabled = yes"
      echo "  destination = $stream_to"
      echo "  api key = $api_key"
      echo "  reconnect delay seconds = 1"
    else
      echo "  enabled = no"
    fi
    if [ -n "$accept" ]; then
      echo "[$accept]"
      echo "  type = api"
      echo "  enabled = yes"
      echo "  allow from = *"
      echo "  default memory mode = ram"
      echo "  health enabled by default = yes"
      echo "  default postpone alarms on connect seconds = $postpone"
    fi
  } >"$dir/etc/stream.conf"
fi

# Top-level entries of the host's /tmp that the agent needs to see inside its private /tmp.
tmp_tops=()
for p in "$dir" "$plugins" "$health" "$stock_health" "$alarm_script" ${sock:+"$sock"}; do
  case $p in /tmp/*) t=${p#/tmp/}; t=${t%%/*}; [[ " ${tmp_tops[*]-} " == *" $t "* ]] || tmp_tops+=("$t") ;; esac
done

# A clean environment, as under systemd: only PATH (so plugins find node) and what was asked for.
env_args=(PATH="$PATH" LC_ALL=C.UTF-8 DO_NOT_TRACK=1)
[ -z "$bus" ] || env_args+=(DBUS_SYSTEM_BUS_ADDRESS="$bus")
env_args+=(${extra_env[@]+"${extra_env[@]}"})

t0=$EPOCHREALTIME
token=$(od -An -N8 -tx8 /dev/urandom | tr -d ' \n'); echo "$token" >"$dir/nstoken"   # see ns_pids
# Inside the new namespace: a tmpfs staged at DIR/.nstmp, the needed host /tmp entries bound into it,
# then moved over /tmp; `echo $$` before exec records the agent's pid as the host sees it.
setsid unshare --mount --propagation private env -i "${env_args[@]}" sh -c '
  set -e; dir=$1; token=$2; bin=$3; v2=$4; shift 4
  mount -t tmpfs -o mode=1777 netdata-tmp "$dir/.nstmp"
  : >"$dir/.nstmp/.netdata-agent-$token"
  for t in "$@"; do
    if [ -d "/tmp/$t" ]; then mkdir "$dir/.nstmp/$t"; else touch "$dir/.nstmp/$t"; fi
    mount --bind "/tmp/$t" "$dir/.nstmp/$t"
  done
  mount --move "$dir/.nstmp" /tmp
  # v2 keeps netdatacli'"'"'s pipe and its spawn server'"'"'s socket in /run/netdata, fixed: private too.
  if [ "$v2" = 1 ]; then mkdir -p /run/netdata; mount --bind "$dir/run" /run/netdata; fi
  echo $$ >"$dir/pid"
  exec "$bin" -D -c "$dir/netdata.conf" -P "$dir/run/netdata.pid"' sh "$dir" "$token" "$netdata_bin" "$([ "${agent_version%%.*}" -ge 2 ] && echo 1 || echo 0)" ${tmp_tops[@]+"${tmp_tops[@]}"} \
  >"$dir/stdout" 2>"$dir/stderr" </dev/null &

trap 'stop_agent >/dev/null 2>&1 || true' EXIT   # a failed start leaves nothing behind
fail() {
  echo "netdata-agent: $*" >&2
  echo "--- $dir/stderr:" >&2; tail -n 20 "$dir/stderr" >&2 || true
  echo "--- $dir/log/error.log:" >&2; tail -n 30 "$dir/log/error.log" >&2 2>/dev/null || true
  exit 1
}
api_ok() {   # GET /api/v1/info with bash's /dev/tcp: no curl needed
  { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null || return 1   # (a bare `exec 2>…` would stick)
  printf 'GET /api/v1/info HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
  local line=""; IFS= read -r -t 2 line <&3 || true; exec 3<&-
  [[ $line == *" 200 "* ]]
}
for ((i = 0; ; i++)); do
  pid=$(cat "$dir/pid" 2>/dev/null || true)
  if [ -n "$pid" ]; then
    [ -f "$dir/mntns" ] || ns_of "$pid" >"$dir/mntns" || rm -f "$dir/mntns"
    kill -0 "$pid" 2>/dev/null || fail "the agent exited during start"
    api_ok && break
  fi
  [ $i -lt $((timeout * 20)) ] || fail "the API on port $port did not answer within ${timeout}s"
  sleep 0.05
done
trap - EXIT
echo "$port" >"$dir/port"
echo "$prefix" >"$dir/prefix"
echo "$agent_version" >"$dir/version"
echo "netdata-agent: netdata $agent_version, pid $pid, API http://127.0.0.1:$port/ up in $(awk "BEGIN{printf \"%.2f\", $EPOCHREALTIME - $t0}")s; log $dir/log/error.log" >&2
echo "$port"
