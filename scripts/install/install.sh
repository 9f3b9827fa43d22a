#!/usr/bin/env bash
# Installs systemdunits.plugin into a Netdata agent, or removes it (--uninstall). Run as root.
#
#   install.sh [--prefix DIR] [--config-dir DIR] [--plugins-dir DIR] [--health-dir DIR]
#              [--owner USER] [--netdata BIN] [--agent-version X.Y.Z] [--node BIN]
#              [--replace-go-d] [--uninstall]
#
#   --prefix DIR        the agent's install prefix: / for Debian/Ubuntu and Netdata's native
#                       packages (/etc/netdata), /opt/netdata for Netdata's static build, or your
#                       own; default: whichever of those holds a Netdata
#   --config-dir DIR    the agent's config dir (default PREFIX/etc/netdata)
#   --plugins-dir DIR   where the plugin goes (default CONFIG-DIR/custom-plugins.d, which every
#                       layout's agent scans and no package update touches)
#   --health-dir DIR    where the alarms go (default CONFIG-DIR/health.d)
#   --owner USER        the agent's user (default netdata)
#   --netdata BIN       the agent binary to ask for its version (default: the one under PREFIX)
#   --agent-version V   skip asking: write the alarms for agent version V
#   --node BIN          the node the plugin runs on (checkout only; default: node on PATH)
#   --replace-go-d      turn go.d's own systemdunits collector off (restored by --uninstall);
#                       without it, while that collector runs, this plugin's charts go under
#                       systemdunits.* contexts (config context_prefix), apart from go.d's
#   --uninstall         remove what an install put there and undo its changes
#
# From a release tarball it installs the standalone executable (no Node.js needed) as
# systemdunits/systemdunits-plugin; from a git checkout it builds the bundle and runs it on the
# host's Node.js (18 or newer). Either way the agent runs the launcher systemdunits.plugin, which
# execs the plugin with glibc's malloc settings (see it).
# Safe to run again (updates in place). A config file you edited is never overwritten or removed.
set -euo pipefail

say() { printf 'systemdunits install: %s\n' "$*"; }
die() { printf 'systemdunits install: error: %s\n' "$*" >&2; exit 1; }

here=$(cd "$(dirname "$0")" && pwd)
lib=$here/lib
# A release tarball has RELEASE next to install.sh; a checkout has this script in scripts/install/.
if [ -f "$here/RELEASE" ]; then src=$here release=yes; else src=$(cd "$here/../.." && pwd) release=no; fi
. "$lib/netdata-layout.sh"
. "$lib/god.sh"

orig_args=$*
prefix='' config_dir='' plugins_dir='' health_dir='' owner='' netdata_bin='' agent_version=''
node_bin='' replace_god=no uninstall=0
while [ $# -gt 0 ]; do
  case $1 in
    --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
    --config-dir) config_dir=${2:?--config-dir needs a directory}; shift 2 ;;
    --plugins-dir) plugins_dir=${2:?--plugins-dir needs a directory}; shift 2 ;;
    --health-dir) health_dir=${2:?--health-dir needs a directory}; shift 2 ;;
    --owner) owner=${2:?--owner needs a user}; shift 2 ;;
    --netdata) netdata_bin=${2:?--netdata needs the agent binary}; shift 2 ;;
    --agent-version) agent_version=${2:?--agent-version needs a version}; shift 2 ;;
    --node) node_bin=${2:?--node needs a node binary}; shift 2 ;;
    --replace-go-d) replace_god=yes; shift ;;
    --uninstall) uninstall=1; shift ;;
    -h|--help) sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
[ "$(id -u)" = 0 ] || die "run me as root (sudo bash $0${orig_args:+ $orig_args}): I write into the agent's directories and set owners"

# --- where is Netdata? ---------------------------------------------------------------------------
if [ -n "$prefix" ]; then
  [ -d "$prefix" ] || die "prefix $prefix does not exist"
  prefix=$(cd "$prefix" && pwd)
  config_dir=${config_dir:-$(nd_path "$prefix" etc/netdata)}
elif [ -z "$config_dir" ]; then
  for p in / /opt/netdata /usr/local; do
    d=$(nd_path "$p" etc/netdata)
    [ -f "$d/netdata.conf" ] || [ -d "$d/health.d" ] || [ -d "$d/go.d" ] || continue
    prefix=$p config_dir=$d; break
  done
  [ -n "$config_dir" ] || die "no Netdata found (looked for /etc/netdata, /opt/netdata/etc/netdata, /usr/local/etc/netdata); install Netdata first, or pass --prefix or --config-dir"
else
  # --config-dir PREFIX/etc/netdata names its prefix too (for the agent binary and go.d's files).
  case $config_dir in */etc/netdata) p=${config_dir%/etc/netdata}; prefix=${p:-/} ;; esac
fi
[ -d "$config_dir" ] || die "config dir $config_dir does not exist"
config_dir=$(cd "$config_dir" && pwd)
plugins_dir=${plugins_dir:-$config_dir/custom-plugins.d}
health_dir=${health_dir:-$config_dir/health.d}
if [ -z "$owner" ]; then owner=root; id netdata >/dev/null 2>&1 && owner=netdata; fi
group=$(id -gn "$owner" 2>/dev/null) || die "no such user '$owner'"

launcher=$plugins_dir/systemdunits.plugin
app=$plugins_dir/systemdunits
state=$app/.install-state
health_file=$health_dir/systemdunits.conf
# The alarms for contexts other than systemd.* (context_prefix): a name of their own, so the stock
# or the user's systemdunits.conf (go.d's alerts) stays in force beside them.
health_apart=$health_dir/systemdunits-plugin.conf
config_file=$config_dir/systemdunits.conf
# go.d's files in this layout (empty when the layout is not known, i.e. custom dirs only)
god_user_conf=$config_dir/go.d.conf
god_stock_conf='' god_plugin=''
if [ -n "$prefix" ]; then
  god_stock_conf=$(nd_first_file "$prefix" usr/lib/netdata/conf.d/go.d.conf lib/netdata/conf.d/go.d.conf)
  god_plugin=$(nd_first_file "$prefix" usr/libexec/netdata/plugins.d/go.d.plugin usr/lib/netdata/plugins.d/go.d.plugin libexec/netdata/plugins.d/go.d.plugin)
fi

if [ "$uninstall" = 1 ]; then
  # Undo in reverse: restore what the install replaced or edited, remove what it added.
  records=$(cat "$state" 2>/dev/null || true)
  while read -r kind target saved; do
    case $kind in
      restored-by) ;;
      backup)
        [ -f "$app/$saved" ] || continue
        cp "$app/$saved" "$target"
        # Owner and mode as they were (the copy in the app dir was made root's and 0644).
        if read -r m u g <"$app/$saved.meta" 2>/dev/null; then chown "$u:$g" "$target"; chmod "$m" "$target"; fi
        say "restored your $target" ;;
      created-file) rm -f "$target" && say "removed $target (created by --replace-go-d)" ;;
    esac
  done <<<"$(printf '%s\n' "$records" | grep -E '^(backup|created-file) ' || true)"
  created=$( { printf '%s\n' "$records" | sed -n 's/^created-dir //p'; cat "$app/.created-dirs" 2>/dev/null; } || true)
  health_saved=$(printf '%s\n' "$records" | grep -c "^backup $health_file " || true)
  # Every file is named, removed or kept, so the operator knows what is left.
  [ -d "$app" ] && rm -rf "$app" && say "removed $app/"
  [ -e "$launcher" ] && rm -f "$launcher" && say "removed $launcher"
  # (a user's systemdunits.conf beside our systemdunits-plugin.conf is go.d's alerts: it stays)
  if [ "$health_saved" = 0 ] && grep -qs '^# Alarms of systemdunits.plugin' "$health_file"; then rm -f "$health_file" && say "removed $health_file"; fi
  if grep -qs '^# Alarms of systemdunits.plugin' "$health_apart"; then rm -f "$health_apart" && say "removed $health_apart"; fi
  if god_config_is_ours "$config_file"; then
    rm -f "$config_file" && say "removed $config_file (as installed, never edited)"
  elif [ -f "$config_file" ]; then
    say "kept $config_file (edited by you)"
  fi
  # Directories the first install created (custom-plugins.d is not shipped by Debian), if now empty.
  for d in $created; do rmdir "$d" 2>/dev/null && say "removed $d/ (created by the install, now empty)"; done
  say "uninstalled; to stop the plugin that is still running: $(nd_restart_hint "$prefix")"
  exit 0
fi

# --- the agent: which version will run the plugin ------------------------------------------------
if [ -z "$agent_version" ]; then
  if [ -z "$netdata_bin" ] && [ -n "$prefix" ]; then netdata_bin=$(nd_agent_binary "$prefix"); fi
  if [ -z "$netdata_bin" ]; then
    netdata_bin=$(command -v netdata || true)
    [ -z "$netdata_bin" ] || [ -z "$prefix" ] || say "no agent binary under $prefix; asking $netdata_bin for the version"
  fi
  [ -z "$netdata_bin" ] || agent_version=$(nd_version "$netdata_bin")
fi
if [ -n "$agent_version" ]; then
  [[ $agent_version =~ ^v?[0-9]+\.[0-9]+ ]] || die "agent version '$agent_version' is not X.Y[.Z]"
  agent_version=${agent_version#v}
else
  say "could not tell the agent's version (no netdata binary found; pass --agent-version); the alarms use the syntax of v1.42+"
fi

# --- what the plugin runs on ---------------------------------------------------------------------
if [ $release = yes ]; then
  for f in systemdunits.plugin systemdunits/systemdunits-plugin; do
    [ -x "$src/$f" ] || die "$src/$f is missing: unpack the whole release tarball"
  done
  arch=$(sed -n 's/^arch=//p' "$src/RELEASE")
  machine=$(uname -m)
  case $arch:$machine in linux-x64:x86_64|linux-arm64:aarch64) ;; *) die "this release is for $arch, this machine is $machine: take the release for $machine" ;; esac
else
  MIN_NODE=18   # the oldest Node the bundle is tested on (README, "Requirements")
  node_bin=${node_bin:-$(command -v node || true)}
  [ -n "$node_bin" ] || die "node not found: install Node.js $MIN_NODE or newer (apt-get install nodejs, or from nodejs.org), or install the release tarball, which needs no Node.js"
  node_bin=$(readlink -f "$node_bin")
  node_version=$("$node_bin" --version 2>/dev/null) || die "$node_bin does not run"
  node_major=${node_version#v}; node_major=${node_major%%.*}
  [[ $node_major =~ ^[0-9]+$ ]] && [ "$node_major" -ge $MIN_NODE ] || die "node $node_version is too old: Node.js $MIN_NODE or newer is needed"
  # The agent runs the plugin as its user: a node under /root (nvm) would fail there with exit 126.
  if [ "$owner" != root ] && ! runuser -u "$owner" -- "$node_bin" --version >/dev/null 2>&1; then
    die "user $owner cannot run $node_bin (is it under a home directory, e.g. nvm's?): install Node.js system-wide (e.g. /usr/local or apt), pass --node BIN, or install the release tarball"
  fi
  command -v npm >/dev/null || [ -d "$src/node_modules/esbuild" ] || die "npm not found: it comes with Node.js; it is needed to build the plugin (or install the release tarball)"
fi

# --- build or take, then stage -------------------------------------------------------------------
stage=$(mktemp -d "${TMPDIR:-/tmp}/systemdunits-install.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/app"
if [ $release = yes ]; then
  # (An earlier release installed the executable itself as systemdunits.plugin: replaced below.)
  cp "$src/systemdunits.plugin" "$stage/launcher"
  cp "$src/systemdunits/systemdunits-plugin" "$src/THIRD-PARTY-LICENSES.txt" "$src/RELEASE" "$stage/app/"
else
  say "building from $src"
  # Bundled straight into the stage, so a build running in the checkout meanwhile cannot tear it.
  # The bundle holds the runtime dependencies (and their licences): nothing else is installed.
  ( cd "$src"
    [ -d node_modules/esbuild ] || npm ci --no-audit --no-fund --loglevel=error
    node scripts/build/build.mjs "$stage/app/systemdunits.mjs" ) || die "build failed"
  cp "$src/package.json" "$stage/app/"
  # The agent's PATH may lack node: the launcher is told where it is.
  sed "s|^case \$0 in .*|&\nNODE=\${NODE:-$node_bin}|" "$src/systemdunits.plugin" > "$stage/launcher"
  grep -q '^NODE=' "$stage/launcher" || die "could not write node's path into the launcher (its 'case \$0 in' line changed?)"
fi

# --- install -------------------------------------------------------------------------------------
# The record of what installs changed (kept across re-installs), which --uninstall undoes.
old_state=$(cat "$state" 2>/dev/null || true)
# Contexts apart from go.d's while its collector runs. A config the user edited is never rewritten:
# its own top-level context_prefix rules, and the alarms follow it.
config_prefix=$(god_wanted_prefix)
if [ -e "$config_file" ] && ! god_config_is_ours "$config_file"; then config_prefix=$(god_config_prefix "$config_file"); fi
shadowed=$health_file
if [ "$config_prefix" != systemd ]; then health_file=$health_apart; fi
if [ -f "$health_apart" ] && ! grep -q '^# Alarms of systemdunits.plugin' "$health_apart"; then
  die "$health_apart is not this plugin's: move it away (the installer writes the alarms there beside go.d's), then run again"
fi
nd_health_for_version "${agent_version:-}" <"$src/health.d/systemdunits.conf" | nd_health_for_prefix "$config_prefix" >"$stage/health"
rec_file=$stage/app/.install-state
{ [ -z "$old_state" ] || printf '%s\n' "$old_state"
  sed 's/^/created-dir /' "$app/.created-dirs" 2>/dev/null || true; } >"$rec_file"   # older installs
record() { grep -qxF "$*" "$rec_file" || echo "$*" >>"$rec_file"; }
for d in "$plugins_dir" "$health_dir"; do [ -d "$d" ] || record created-dir "$d"; done
# A health file of that name that is not ours (e.g. made with edit-config) is kept for --uninstall.
if [ -f "$health_file" ] && ! grep -q "^backup $health_file " <<<"$old_state" && ! grep -q '^# Alarms of systemdunits.plugin' "$health_file"; then
  cp -p "$health_file" "$stage/app/health.orig"; stat -c '%a %u %g' "$health_file" >"$stage/app/health.orig.meta"
  record backup "$health_file" health.orig
  say "saved your $health_file (restored by --uninstall)"
fi
# Files an earlier install saved stay with the new app dir.
for f in health.orig health.orig.meta go.d.conf.orig go.d.conf.orig.meta; do [ ! -f "$app/$f" ] || [ -f "$stage/app/$f" ] || cp -p "$app/$f" "$stage/app/$f"; done

install -d -m 0755 "$plugins_dir" "$health_dir"
rm -rf "$app.new"
cp -r "$stage/app" "$app.new"
chown -R root:root "$app.new"; chmod -R u=rwX,go=rX "$app.new"
rm -rf "$app"; mv "$app.new" "$app"
install -m 0755 -o root -g root "$stage/launcher" "$launcher"
install -m 0644 -o root -g "$group" "$stage/health" "$health_file"
# The other name's file, from an install with the other prefix, goes (a user's original comes back).
if [ "$health_file" = "$health_apart" ] && grep -qs '^# Alarms of systemdunits.plugin' "$shadowed"; then
  if [ -f "$app/health.orig" ]; then
    cp "$app/health.orig" "$shadowed"
    if read -r m u g <"$app/health.orig.meta" 2>/dev/null; then chown "$u:$g" "$shadowed"; chmod "$m" "$shadowed"; fi
    say "restored your $shadowed (the alarms now live in $health_file)"
  else
    rm -f "$shadowed" && say "removed $shadowed (the alarms now live in $health_file)"
  fi
elif [ "$health_file" != "$health_apart" ] && grep -qs '^# Alarms of systemdunits.plugin' "$health_apart"; then
  rm -f "$health_apart" && say "removed $health_apart (the alarms now live in $health_file)"
fi
if [ -e "$config_file" ] && ! god_config_is_ours "$config_file"; then
  say "kept your $config_file"
else
  god_config_for_prefix "$config_prefix" <"$src/systemdunits.conf" >"$stage/config"
  install -m 0644 -o root -g "$group" "$stage/config" "$config_file"
fi
rec_file=$state god_note=''
god_apply
nd_check_plugins_dir "$config_dir" "$plugins_dir"

if [ $release = yes ]; then runs_on="the standalone executable (no Node.js needed)"; else runs_on="node $node_version ($node_bin)"; fi
say "installed for Netdata ${agent_version:-(version unknown)}, running on $runs_on:"
say "  $launcher"
say "  $app/"
say "  $health_file"
say "  $config_file"
[ -z "$god_note" ] || say "$god_note"
say "next:"
say "  1. restart the agent:  $(nd_restart_hint "$prefix")"
say "  2. check it runs:      runuser -u $owner -- $launcher --help"
say "  3. see its charts:     curl -s http://localhost:19999/api/v1/charts | grep -o '\"systemdunits_[^\"]*\"' | sort -u"
say "  units to watch: edit $config_file, then restart the agent (alarm changes alone: netdatacli reload-health)"
