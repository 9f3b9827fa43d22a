#!/usr/bin/env bash
# Installs what the end-to-end tests need on Debian bookworm (run as root; idempotent):
#   the real Netdata agent (Debian's netdata 1.37.1) and, with --with-browser, Debian's chromium.
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

pkgs=(netdata util-linux procps dbus systemd)   # util-linux: unshare/nsenter/runuser; procps: pgrep
[ $with_browser = yes ] && pkgs+=(chromium)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  # Update the lists only when apt does not know a candidate for one of the packages.
  for p in "${missing[@]}"; do
    if ! apt-cache policy "$p" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
      apt-get update -q; break
    fi
  done
  # policy-rc.d exit 101 = "do not start services" for invoke-rc.d during the install.
  # Docker-like images already ship one; otherwise put a temporary one in place.
  policy=/usr/sbin/policy-rc.d; own_policy=no
  if [ ! -e $policy ]; then
    printf '#!/bin/sh\nexit 101\n' >$policy; chmod 755 $policy; own_policy=yes
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get install -y -q --no-install-recommends "${missing[@]}"
  [ $own_policy = yes ] && { rm -f $policy; trap - EXIT; }
fi

# Disable the host service without a running systemd: `systemctl disable` works offline on
# Debian, but remove the wants symlink by hand as well in case it did not.
systemctl disable netdata.service >/dev/null 2>&1 || true
rm -f /etc/systemd/system/multi-user.target.wants/netdata.service
update-rc.d netdata disable >/dev/null 2>&1 || true

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
