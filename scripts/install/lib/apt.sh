# Shared by the scripts that install Debian packages for tests, the demo and the benchmark.
# Source it; needs root.

# The packages of "$@" that are not installed yet, one a line.
apt_missing() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
  done
  return 0
}

# Installs "$@" without letting their maintainer scripts start services on the host: a
# policy-rc.d that exits 101 is put in place for the install (unless the image ships one).
# The package lists are updated only when apt knows no candidate for one of the packages.
apt_install_quietly() {
  local p policy=/usr/sbin/policy-rc.d own_policy=no
  export DEBIAN_FRONTEND=noninteractive
  for p in "$@"; do
    if ! apt-cache policy "$p" 2>/dev/null | grep -q 'Candidate: [0-9]'; then apt-get update -q; break; fi
  done
  if [ ! -e $policy ]; then
    printf '#!/bin/sh\nexit 101\n' >$policy; chmod 755 $policy; own_policy=yes
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get install -y -q --no-install-recommends "$@"
  if [ $own_policy = yes ]; then rm -f $policy; trap - EXIT; fi
}

# Keeps a packaged service from starting at boot, here and in a systemd sandbox booted from the
# host's /etc: `systemctl disable` works offline on Debian; the wants link goes by hand as well.
apt_disable_service() {
  systemctl disable "$1.service" >/dev/null 2>&1 || true
  rm -f "/etc/systemd/system/multi-user.target.wants/$1.service"
  update-rc.d "$1" disable >/dev/null 2>&1 || true
}
