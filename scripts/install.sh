#!/usr/bin/env bash
# Installs systemdunits.plugin into a Netdata agent, or removes it (--uninstall).
#
#   scripts/install.sh [--config-dir DIR] [--plugins-dir DIR] [--health-dir DIR] [--owner USER]
#                      [--agent-version X.Y.Z] [--uninstall]
#
# What goes where (Debian/Ubuntu package layout shown; /opt/netdata installs are found too):
#   /etc/netdata/custom-plugins.d/systemdunits.plugin   the launcher the agent runs
#   /etc/netdata/custom-plugins.d/systemdunits/         compiled plugin + its runtime dependencies
#   /etc/netdata/health.d/systemdunits.conf             the alarms (replaces the stock file of that name)
#   /etc/netdata/systemdunits.conf                      the config, only if there is none yet
# Safe to run again (updates in place). The config file is never overwritten or, if edited, removed.
set -euo pipefail

say() { printf 'systemdunits install: %s\n' "$*"; }
die() { printf 'systemdunits install: error: %s\n' "$*" >&2; exit 1; }

repo=$(cd "$(dirname "$0")/.." && pwd)
config_dir='' plugins_dir='' health_dir='' owner='' agent_version='' uninstall=0
while [ $# -gt 0 ]; do
  case $1 in
    --config-dir) config_dir=${2:?--config-dir needs a directory}; shift 2 ;;
    --plugins-dir) plugins_dir=${2:?--plugins-dir needs a directory}; shift 2 ;;
    --health-dir) health_dir=${2:?--health-dir needs a directory}; shift 2 ;;
    --owner) owner=${2:?--owner needs a user}; shift 2 ;;
    --agent-version) agent_version=${2:?--agent-version needs a version}; shift 2 ;;
    --uninstall) uninstall=1; shift ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done

# --- where is Netdata? ---------------------------------------------------------------------------
if [ -z "$config_dir" ]; then
  for d in /etc/netdata /opt/netdata/etc/netdata /usr/local/etc/netdata; do
    [ -f "$d/netdata.conf" ] || [ -d "$d/health.d" ] || [ -d "$d/go.d" ] || continue
    config_dir=$d; break
  done
  [ -n "$config_dir" ] || die "no Netdata found (looked for /etc/netdata, /opt/netdata/etc/netdata, /usr/local/etc/netdata); install Netdata first, or pass --config-dir"
fi
[ -d "$config_dir" ] || die "config dir $config_dir does not exist"
plugins_dir=${plugins_dir:-$config_dir/custom-plugins.d}
health_dir=${health_dir:-$config_dir/health.d}
if [ -z "$owner" ]; then owner=root; id netdata >/dev/null 2>&1 && owner=netdata; fi
group=$(id -gn "$owner" 2>/dev/null) || die "no such user '$owner'"

launcher=$plugins_dir/systemdunits.plugin
app=$plugins_dir/systemdunits
health_file=$health_dir/systemdunits.conf
config_file=$config_dir/systemdunits.conf

if [ "$uninstall" = 1 ]; then
  created=$(cat "$app/.created-dirs" 2>/dev/null || true)
  rm -rf "$app"
  rm -f "$launcher" "$health_file"
  if [ -f "$config_file" ] && cmp -s "$config_file" "$repo/systemdunits.conf"; then
    rm -f "$config_file"
  elif [ -f "$config_file" ]; then
    say "kept $config_file (edited by you)"
  fi
  # Directories the first install created (custom-plugins.d is not shipped by Debian), if now empty.
  for d in $created; do rmdir "$d" 2>/dev/null || true; done
  say "removed systemdunits.plugin from $plugins_dir"
  say "restart the agent to stop the running plugin: systemctl restart netdata"
  exit 0
fi

# --- node ----------------------------------------------------------------------------------------
node_bin=$(command -v node || true)
[ -n "$node_bin" ] || die "node not found: install Node.js 20 or newer (e.g. apt-get install nodejs, or from nodejs.org)"
node_major=$("$node_bin" -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || die "node $("$node_bin" --version) is too old: Node.js 20 or newer is needed"
command -v npm >/dev/null || die "npm not found: it comes with Node.js; install it to build the plugin"

# --- agent version: which label syntax its alarm text expands ------------------------------------
if [ -z "$agent_version" ]; then
  agent_version=$( (netdata -v 2>/dev/null || /opt/netdata/bin/netdata -v 2>/dev/null || true) | sed -n 's/^netdata v\{0,1\}\([0-9][0-9.]*\).*/\1/p' | head -n1)
fi
old_labels=0
if [ -n "$agent_version" ]; then
  major=${agent_version%%.*}; rest=${agent_version#*.}; minor=${rest%%.*}
  # v1.37 and older expand $label:NAME; v1.38+ expand ${label:NAME} (see health.d/systemdunits.conf).
  if [ "$major" -lt 1 ] || { [ "$major" -eq 1 ] && [ "$minor" -lt 38 ]; }; then old_labels=1; fi
else
  say "could not tell the agent's version; the alarm text uses the \${label:NAME} syntax of v1.38+"
fi

# --- build, then stage ---------------------------------------------------------------------------
stage=$(mktemp -d "${TMPDIR:-/tmp}/systemdunits-install.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/app"
say "building from $repo"
# Bundled straight into the stage, so a build running in the checkout meanwhile cannot tear it.
# The bundle holds the runtime dependencies (and their licences): nothing else is installed.
( cd "$repo"
  [ -d node_modules/esbuild ] || npm ci --no-audit --no-fund --loglevel=error
  node scripts/build.mjs "$stage/app/systemdunits.mjs" ) || die "build failed"
cp "$repo/package.json" "$stage/app/"

# --- install -------------------------------------------------------------------------------------
# Remember which directories this installer created (across re-installs), for --uninstall.
{ cat "$app/.created-dirs" 2>/dev/null || true
  for d in "$plugins_dir" "$health_dir"; do [ -d "$d" ] || echo "$d"; done; } > "$stage/app/.created-dirs"
install -d -m 0755 "$plugins_dir" "$health_dir"
rm -rf "$app.new"
cp -r "$stage/app" "$app.new"
chown -R root:root "$app.new"; chmod -R u=rwX,go=rX "$app.new"
rm -rf "$app"; mv "$app.new" "$app"
# The agent's PATH may lack node: the launcher is told where it is.
sed "s|^case \$0 in .*|&\nNODE=\${NODE:-$node_bin}|" "$repo/systemdunits.plugin" > "$stage/launcher"
grep -q '^NODE=' "$stage/launcher" || die "could not write node's path into the launcher (its 'case \$0 in' line changed?)"
install -m 0755 -o root -g root "$stage/launcher" "$launcher"

if [ "$old_labels" = 1 ]; then
  sed '/^ *\(info\|summary\):/ s/\${label:\([A-Za-z0-9_]*\)}/$label:\1/g' "$repo/health.d/systemdunits.conf" > "$stage/health"
else
  cp "$repo/health.d/systemdunits.conf" "$stage/health"
fi
install -m 0644 -o root -g "$group" "$stage/health" "$health_file"

if [ -e "$config_file" ]; then
  say "kept your $config_file"
else
  install -m 0644 -o root -g "$group" "$repo/systemdunits.conf" "$config_file"
fi

say "installed for Netdata ${agent_version:-(version unknown)}:"
say "  $launcher"
say "  $app/"
say "  $health_file"
say "  $config_file"
say "restart the agent to start it: systemctl restart netdata  (alarm changes alone: netdatacli reload-health)"
