#!/usr/bin/env bash
# Installs what the end-to-end tests need on Debian bookworm (run as root; idempotent):
#   the real Netdata agent (Debian's netdata 1.37.1), strace, and, with --with-browser, Debian's chromium.
#   install-test-deps.sh [--with-browser]
# The package enables and tries to start netdata.service. The tests run private agents of their
# own, so the host agent is kept from starting, disabled (the systemd sandbox boots from the
# host's /etc and would start it too) and killed if it started anyway.
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
[ ${#missing[@]} -eq 0 ] || apt_install_quietly "${missing[@]}"
apt_disable_service netdata

# No host agent may be left running (the postinst may have started one anyway). Only agents in
# the host's own mount namespace count: test agents live in private namespaces and stay alone.
host_agents() {
  local me p; me=$(readlink /proc/self/ns/mnt)
  for p in $(pgrep -x netdata || true); do
    [ "$(readlink /proc/$p/ns/mnt 2>/dev/null)" = "$me" ] && echo "$p"
  done; return 0
}
pids=$(host_agents)
if [ -n "$pids" ]; then
  echo "stopping the host netdata started by the package: $pids" >&2
  kill $pids 2>/dev/null || true
  for _ in $(seq 100); do [ -z "$(host_agents)" ] && break; sleep 0.1; done
  pids=$(host_agents); [ -z "$pids" ] || kill -9 $pids 2>/dev/null || true
fi

# The agent's user must exist (the tests run it as `netdata`).
getent passwd netdata >/dev/null || { echo "$0: user netdata missing after install" >&2; exit 1; }
echo "netdata $(dpkg-query -W -f='${Version}' netdata) installed; $(command -v netdata)"
[ $with_browser = yes ] && echo "chromium: $(chromium --version 2>/dev/null || echo '?')"
exit 0
