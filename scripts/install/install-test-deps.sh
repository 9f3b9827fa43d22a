#!/usr/bin/env bash
# Installs what the end-to-end tests need on Debian bookworm (run as root; idempotent):
#   the real Netdata agent (Debian's netdata 1.37.1), strace, and, with --with-browser, Debian's chromium.
#   install-test-deps.sh [--with-browser]
# A Netdata the host had before is none of this script's business: it is never stopped, disabled
# or reconfigured (test agents are private: own config, port, /tmp; the systemd sandbox masks
# netdata.service). Only when this run installs the netdata package itself does it undo what the
# package did on its own: it enabled netdata.service and may have started an agent.
set -euo pipefail
with_browser=no
for a in "$@"; do
  case $a in
    --with-browser) with_browser=yes ;;
    *) echo "usage: $0 [--with-browser]" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "$0: must run as root" >&2; exit 1; }

pkgs=(netdata util-linux procps dbus systemd strace)   # util-linux: unshare/nsenter/runuser; procps: pgrep; strace: the least-privilege tests
[ $with_browser = yes ] && pkgs+=(chromium)

. "$(dirname "$0")/lib/apt.sh"
mapfile -t missing < <(apt_missing "${pkgs[@]}")
new_netdata=no
for p in ${missing[@]+"${missing[@]}"}; do [ "$p" = netdata ] && new_netdata=yes; done

# Agents in the host's own mount namespace (test agents live in private namespaces).
host_agents() {
  local me p; me=$(readlink /proc/self/ns/mnt)
  for p in $(pgrep -x netdata || true); do
    [ "$(readlink /proc/$p/ns/mnt 2>/dev/null)" = "$me" ] && echo "$p"
  done; return 0
}
before=" $(host_agents | tr '\n' ' ') "
[ ${#missing[@]} -eq 0 ] || apt_install_quietly "${missing[@]}"

if [ $new_netdata = yes ]; then
  # The package this run installed enabled its service: the host had none before.
  apt_disable_service netdata
  # An agent its postinst started anyway (new since the install) goes; any other is someone else's.
  for p in $(host_agents); do
    case $before in *" $p "*) continue ;; esac
    echo "stopping the netdata the package just started: $p" >&2
    kill "$p" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
  done
fi

# The agent's user must exist (the tests run it as `netdata`).
getent passwd netdata >/dev/null || { echo "$0: user netdata missing after install" >&2; exit 1; }
echo "netdata $(dpkg-query -W -f='${Version}' netdata) installed; $(command -v netdata)"
[ $with_browser = yes ] && echo "chromium: $(chromium --version 2>/dev/null || echo '?')"
exit 0
