# Where a Netdata agent keeps things, per install layout, and what its version accepts.
# Sourced by install.sh (in a checkout: scripts/install/lib/; in a release tarball: lib/).
#   Debian/Ubuntu and Netdata's native packages: prefix /  (/etc/netdata, /usr/sbin/netdata,
#     stock files in /usr/lib/netdata/conf.d, plugins in /usr/lib or /usr/libexec/netdata/plugins.d)
#   Netdata's static build: prefix /opt/netdata (the same tree under it; the binary also in bin/)

# PREFIX/REL, without a double slash for prefix /.
nd_path() { local p=${1%/}; printf '%s/%s\n' "$p" "$2"; }

# The first of PREFIX/REL… that is a file.
nd_first_file() {
  local p=$1 rel f; shift
  for rel in "$@"; do f=$(nd_path "$p" "$rel"); [ -f "$f" ] && { echo "$f"; return 0; }; done
  return 0
}

# The agent binary of the layout at PREFIX (the one that will run the plugin), or nothing.
nd_agent_binary() {
  local f
  f=$(nd_first_file "$1" usr/sbin/netdata bin/netdata sbin/netdata usr/bin/netdata)
  [ -z "$f" ] || [ ! -x "$f" ] || echo "$f"
}

# X.Y.Z of `BIN -v` ("netdata v2.10.4", "netdata v1.37.1", "netdata v2.1.0-12-nightly"), or nothing.
nd_version() {
  { timeout 20 "$1" -v 2>/dev/null || true; } | sed -n 's/^netdata v\{0,1\}\([0-9][0-9.]*\).*/\1/p' | head -n1
}

# 0 (true) when version $1 is older than MAJOR.MINOR ($2 $3).
nd_older_than() {
  local v=$1 major minor rest
  major=${v%%.*}; rest=${v#*.}; minor=${rest%%.*}
  [[ $major =~ ^[0-9]+$ ]] && [[ $minor =~ ^[0-9]+$ ]] || return 1
  [ "$major" -lt "$2" ] || { [ "$major" -eq "$2" ] && [ "$minor" -lt "$3" ]; }
}

# The health file (stdin) in the form agent version $1 reads without errors (stdout):
# - before v1.38 `info:` expands only $label:NAME (the name runs to the next space); from v1.38
#   only ${label:NAME}, the form the shipped file uses;
# - the `summary:` key came with v1.42: older agents log "unknown key 'summary'" for each template
#   at every health load (23 lines on 1.37.1), so it is left out for them.
# An unknown version gets the file as shipped (the current agents' form).
nd_health_for_version() {
  local v=${1:-}
  if [ -n "$v" ] && nd_older_than "$v" 1 38; then
    sed -e '/^ *summary:/d' -e '/^ *info:/ s/\${label:\([A-Za-z0-9_]*\)}/$label:\1/g'
  elif [ -n "$v" ] && nd_older_than "$v" 1 42; then
    sed -e '/^ *summary:/d'
  else
    cat
  fi
}

# The health file (stdin) for charts under the context prefix $1 (config key context_prefix):
# each `on: systemd.…` becomes `on: $1.…`; the alarm names stay. health.d/alarms.ts's renderHealth
# does the same (test/unit/generated.test.ts checks they agree).
nd_health_for_prefix() {
  if [ "${1:-systemd}" = systemd ]; then cat; else sed "s/^\( *on: \)systemd\./\1$1./"; fi
}

# How to restart the agent of the layout at PREFIX.
nd_restart_hint() {
  case ${1:-} in
    /|/opt/netdata) echo "systemctl restart netdata" ;;
    '') echo "systemctl restart netdata (or however you run the agent)" ;;
    *) echo "systemctl restart netdata (or however you run the agent under $1)" ;;
  esac
}

# Warns when CONFIG_DIR/netdata.conf sets [directories] plugins without PLUGINS_DIR: the agent
# would never see the plugin.
nd_check_plugins_dir() {
  local conf=$1/netdata.conf dirs
  [ -f "$conf" ] || return 0
  dirs=$(awk '/^\[/ { sec = $0 } sec == "[directories]" && /^[[:space:]]*plugins[[:space:]]*=/ { sub(/^[^=]*=[[:space:]]*/, ""); print }' "$conf")
  [ -n "$dirs" ] || return 0
  case $dirs in *"$2"*) ;; *)
    echo "systemdunits install: warning: $conf sets [directories] plugins = $dirs, without $2: add \"$2\" there, or the agent never runs the plugin" >&2 ;;
  esac
}
