// scripts/install/install.sh for real, on this test machine's Debian netdata 1.37.1 package layout
// (/etc/netdata is the package's; custom-plugins.d does not exist until the installer makes it):
// default discovery, files, modes, owners, a second run, an agent that runs what it installed, and
// --uninstall. The host is put back as it was even when a test fails (afterAll), and the test
// refuses to start when the host already has the plugin installed (it could not restore that).
// The error cases (no node, old node, no Netdata) run against throwaway directories.
import { access, chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAgent, type Agent } from '../../harness/agent.js';
import { repoRoot, run } from '../../harness/run.js';
import { startSandbox, type Sandbox } from '../../harness/sandbox.js';
import {
  agentContext,
  diffSnapshots,
  healthConfigErrors,
  install,
  INSTALL,
  processesRunning,
  snapshot,
  SOCKET_ALARM_KEY,
  SOCKET_CHART,
  type FsEntry,
} from '../../harness/e2e.js';

const ETC = '/etc/netdata';
const PLUGINS = path.join(ETC, 'custom-plugins.d');
const LAUNCHER = path.join(PLUGINS, 'systemdunits.plugin');
const APP = path.join(PLUGINS, 'systemdunits');
const HEALTH = path.join(ETC, 'health.d/systemdunits.conf');
const CONFIG = path.join(ETC, 'systemdunits.conf');
/** What install.sh may add to /etc/netdata, relative to it. */
const OURS = ['custom-plugins.d/systemdunits.plugin', 'custom-plugins.d/systemdunits', 'health.d/systemdunits.conf', 'systemdunits.conf'];

const exists = (p: string) => access(p).then(() => true, () => false);
const asNetdata = (...cmd: string[]) => run('runuser', ['-u', 'netdata', '--', ...cmd]);

let original: Map<string, FsEntry> | undefined; // /etc/netdata before the test
let pluginsDirExisted = true;
let touchedHost = false;
let sb: Sandbox | undefined;
let agent: Agent | undefined;
const scratch: string[] = [];

// Two runs of this file at once (two people's `vitest run test/e2e`) would install over and
// uninstall from under each other: the second waits for the first.
const LOCK = path.join(os.tmpdir(), 'systemdunits-e2e-etc-netdata.lock');
let locked = false;

async function lock(timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await writeFile(LOCK, String(process.pid), { flag: 'wx' });
      locked = true;
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = Number(await readFile(LOCK, 'utf8').catch(() => '0'));
    let alive = false;
    try {
      process.kill(holder, 0);
      alive = holder > 0;
    } catch {
      // no such process: a stale lock
    }
    if (!alive) await rm(LOCK, { force: true });
    else if (Date.now() > deadline) throw new Error(`${LOCK} is held by pid ${holder} (another run of this test): gave up after ${timeoutMs} ms`);
    else await new Promise((r) => setTimeout(r, 500));
  }
}

beforeAll(async () => {
  await lock(150_000);
  const present = [];
  for (const rel of OURS) if (await exists(path.join(ETC, rel))) present.push(rel);
  if (present.length > 0) {
    throw new Error(`${ETC} already has ${present.join(', ')}: refusing to install over a host install the test could not restore`);
  }
  if (!(await exists(path.join(ETC, 'netdata.conf')))) throw new Error(`${ETC}/netdata.conf missing: is the netdata package installed?`);
  original = await snapshot(ETC);
  pluginsDirExisted = await exists(PLUGINS);
}, 200_000);

afterAll(async () => {
  const problems: string[] = [];
  await agent?.stop({ removeDir: true }).catch((e) => problems.push(`agent stop: ${e}`));
  await sb?.stop({ removeDir: true }).catch((e) => problems.push(`sandbox stop: ${e}`));
  for (const dir of scratch) await rm(dir, { recursive: true, force: true });
  if (touchedHost && original) {
    // Put /etc/netdata back whatever state the tests left it in: everything install.sh may add,
    // and custom-plugins.d when the test made it (then all that is in it is the test's).
    await run('bash', [INSTALL, '--uninstall']);
    for (const rel of OURS) if (!original.has(rel)) await rm(path.join(ETC, rel), { recursive: true, force: true });
    if (!pluginsDirExisted) await rm(PLUGINS, { recursive: true, force: true });
    const left = diffSnapshots(original, await snapshot(ETC));
    if (left.length > 0) problems.push(`${ETC} differs from before the test:\n  ${left.join('\n  ')}`);
  }
  if (locked) await rm(LOCK, { force: true });
  if (problems.length > 0) throw new Error(`cleanup: ${problems.join('\n')}`);
}, 60_000);

describe('install.sh on the Debian package layout (/etc/netdata, found by itself)', () => {
  let afterFirst: Map<string, FsEntry>;

  it('installs the launcher, the plugin, the alarms and the config with the right modes and owners', async () => {
    touchedHost = true;
    const r = await install([]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('installed for Netdata 1.37.1');
    for (const p of [LAUNCHER, `${APP}/`, HEALTH, CONFIG]) expect(r.stdout).toContain(p);

    afterFirst = await snapshot(ETC);
    // Only additions, and only ours: nothing of the package's changed or disappeared.
    const diff = diffSnapshots(original!, afterFirst);
    const allowed = (rel: string) => OURS.some((o) => rel === o || rel.startsWith(`${o}/`)) || (!pluginsDirExisted && rel === 'custom-plugins.d');
    expect(diff.filter((d) => !(d.startsWith('added: ') && allowed(d.slice('added: '.length)))), 'changes outside what install.sh owns').toEqual([]);

    const at = (rel: string) => afterFirst.get(rel);
    expect(at('custom-plugins.d'), 'custom-plugins.d').toMatchObject({ type: 'dir', mode: '0755', uid: 0 });
    expect(at('custom-plugins.d/systemdunits.plugin'), 'launcher').toMatchObject({ type: 'file', mode: '0755', uid: 0, gid: 0 });
    const netdataGid = Number((await run('id', ['-g', 'netdata'])).stdout.trim());
    expect(at('health.d/systemdunits.conf'), 'health file').toMatchObject({ type: 'file', mode: '0644', uid: 0, gid: netdataGid });
    expect(at('systemdunits.conf'), 'config').toMatchObject({ type: 'file', mode: '0644', uid: 0, gid: netdataGid });
    expect(await readFile(CONFIG, 'utf8')).toBe(await readFile(path.join(repoRoot, 'systemdunits.conf'), 'utf8'));
    // The plugin tree: root's, nothing writable by group or others.
    const app = [...afterFirst].filter(([rel]) => rel.startsWith('custom-plugins.d/systemdunits/'));
    const bad = app.filter(([, e]) => e.uid !== 0 || e.gid !== 0 || (e.type !== 'symlink' && (parseInt(e.mode, 8) & 0o022) !== 0));
    expect(bad.map(([rel, e]) => `${rel} ${e.mode} ${e.uid}:${e.gid}`), 'plugin files not root-owned or group/other-writable').toEqual([]);
    // One bundle with the runtime dependencies inside: no node_modules, no dev tools, no xml2js.
    expect(app.map(([rel]) => rel.slice('custom-plugins.d/systemdunits/'.length)).sort()).toEqual(['.install-state', 'THIRD-PARTY-LICENSES.txt', 'package.json', 'systemdunits.mjs']);
    const licences = await readFile(path.join(APP, 'THIRD-PARTY-LICENSES.txt'), 'utf8');
    for (const dep of ['dbus-next', 'yargs', 'debug', 'yaml']) expect(licences, `${dep} is bundled`).toMatch(new RegExp(`^${dep}@\\d`, 'm'));
    expect(licences, 'D-Bus introspection (xml2js) is left out of the bundle').not.toMatch(/^(xml2js|sax|xmlbuilder)@/m);

    // What the agent's user needs, checked as that user.
    expect((await asNetdata('test', '-r', HEALTH)).code, 'netdata reads the health file').toBe(0);
    expect((await asNetdata('test', '-r', CONFIG)).code, 'netdata reads the config').toBe(0);
    const help = await asNetdata(LAUNCHER, '--help');
    expect(help.code, `netdata runs the launcher: ${help.stderr}`).toBe(0);
    expect(help.stdout).toContain('systemdunits.plugin');
    // 1.37.1 expands only $label:NAME: the installer wrote that variant.
    const health = await readFile(HEALTH, 'utf8');
    expect(health).toMatch(/^\s*info: socket units \$label:failure_summary - \$label:failure_advice$/m);
    // …and no `summary:`, a key 1.37.1 does not know (it logged "unknown key" 23 times a load).
    expect(health).not.toMatch(/^\s*summary:/m);
  });

  it('runs again idempotently and keeps an edited /etc/netdata/systemdunits.conf', async () => {
    expect(afterFirst, 'the first install ran').toBeDefined();
    const shipped = await readFile(CONFIG, 'utf8');
    const edited = `${shipped}\n# edited by the e2e test\n`;
    await writeFile(CONFIG, edited);
    const before = await snapshot(ETC);
    const r = await install([]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(`kept your ${CONFIG}`);
    expect(await readFile(CONFIG, 'utf8')).toBe(edited);
    // Same files, contents, modes and owners as before the second run.
    expect(diffSnapshots(before, await snapshot(ETC))).toEqual([]);
    await writeFile(CONFIG, shipped); // unedited again, so that --uninstall may remove it
  });

  it('is picked up by an agent whose plugins and health dirs are /etc/netdata’s', async () => {
    expect(afterFirst, 'the first install ran').toBeDefined();
    sb = await startSandbox();
    const bus = await sb.expose();
    // The agent's config dir is its own (netdata-agent.sh): the plugin uses its built-in job there,
    // which charts the same socket chart as the shipped config.
    agent = await startAgent({ pluginsDir: PLUGINS, healthDir: path.join(ETC, 'health.d'), busAddress: bus });
    const chart = await agent.waitFor(async () => (await agent!.charts()).charts[SOCKET_CHART], 20_000, `chart ${SOCKET_CHART}`);
    expect(chart.context).toBe('systemd.socket_unit_state');
    expect(Object.values(chart.dimensions).map((d) => d.name)).toContain('dbus.socket');
    const procs = await processesRunning(path.join(APP, 'systemdunits.mjs'));
    expect(procs.map((p) => p.user), `plugin processes${await agentContext(agent)}`).toEqual(['netdata']);
    expect(procs[0]!.ancestors).toContain(agent.pid);
    const alarm = await agent.waitFor(async () => (await agent!.alarms()).alarms[SOCKET_ALARM_KEY], 10_000, 'the socket alarm');
    expect(alarm.source).toContain(HEALTH);
    expect(['CLEAR', 'UNINITIALIZED']).toContain(alarm.status);
    // The file as written for 1.37.1 loads without one health-config complaint.
    const log = await readFile(path.join(agent.dir, 'log/error.log'), 'utf8');
    expect(healthConfigErrors(log), 'health-config errors in the agent log').toEqual([]);
    await agent.stop({ removeDir: true });
    agent = undefined;
  });

  it('--uninstall removes every file install.sh added and leaves the package’s files as they were', async () => {
    expect(afterFirst, 'the first install ran').toBeDefined();
    const r = await run('bash', [INSTALL, '--uninstall']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    for (const p of [LAUNCHER, APP, HEALTH, CONFIG]) expect(await exists(p), `${p} after --uninstall`).toBe(false);
    // Every file it removed is named (issue 15, item 4).
    for (const p of [LAUNCHER, `${APP}/`, HEALTH, CONFIG]) expect(r.stdout, 'the uninstall names what it removed').toMatch(new RegExp(`^systemdunits install: removed ${p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}( |$)`, 'm'));
    const diff = diffSnapshots(original!, await snapshot(ETC)).filter((d) => d !== 'added: custom-plugins.d');
    expect(diff, `${ETC} after --uninstall vs before the install`).toEqual([]);
  });

  it('--uninstall leaves /etc/netdata exactly as before the install, without the custom-plugins.d it made', async () => {
    // Separate from the test above on purpose: install.sh creates custom-plugins.d (the package does
    // not ship it), and --uninstall must remove it again.
    expect(afterFirst, 'the first install ran').toBeDefined();
    expect(diffSnapshots(original!, await snapshot(ETC)), `${ETC} after --uninstall vs before the install`).toEqual([]);
  });
});

describe('install.sh errors and edge cases (throwaway directories)', () => {
  async function tmp(prefix: string): Promise<string> {
    const d = await mkdtemp(path.join(os.tmpdir(), prefix));
    scratch.push(d);
    return d;
  }
  /** A Netdata-like config dir and empty plugin/health dirs; returns the options install.sh takes. */
  async function layout(): Promise<{ dir: string; args: string[] }> {
    const dir = await tmp('e2e-install-');
    await mkdir(path.join(dir, 'etc'));
    return {
      dir,
      args: ['--config-dir', path.join(dir, 'etc'), '--plugins-dir', path.join(dir, 'plugins'), '--health-dir', path.join(dir, 'health'), '--owner', 'netdata'],
    };
  }
  const nothingInstalled = async (dir: string) => {
    expect(await exists(path.join(dir, 'plugins')), 'plugins dir created').toBe(false);
    expect(await exists(path.join(dir, 'health')), 'health dir created').toBe(false);
    expect(await exists(path.join(dir, 'etc/systemdunits.conf')), 'config written').toBe(false);
  };

  it('says node is missing when there is no node on PATH', async () => {
    const { dir, args } = await layout();
    // A PATH with only the tools install.sh needs before it looks for node.
    const bin = await tmp('e2e-bin-');
    for (const tool of ['dirname', 'id']) await symlink((await run('sh', ['-c', `command -v ${tool}`])).stdout.trim(), path.join(bin, tool));
    const r = await run('/bin/bash', [INSTALL, ...args], { env: { PATH: bin } });
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stderr).toContain('systemdunits install: error: node not found: install Node.js 18 or newer');
    await nothingInstalled(dir);
  });

  it('says node is too old when node is older than 18', async () => {
    const { dir, args } = await layout();
    const bin = await tmp('e2e-oldnode-');
    await writeFile(
      path.join(bin, 'node'),
      '#!/bin/sh\n# a Node 16 stand-in\ncase "$1" in\n  --version|-v) echo v16.20.2 ;;\n  -p|-e) echo 16 ;;\n  *) exit 1 ;;\nesac\n',
    );
    await chmod(path.join(bin, 'node'), 0o755);
    const r = await install(args, { env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } });
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stderr).toContain('systemdunits install: error: node v16.20.2 is too old: Node.js 18 or newer is needed');
    await nothingInstalled(dir);
  });

  it('says no Netdata was found when none of its config dirs exists', async () => {
    // Default discovery on this host with /etc/netdata hidden (an empty tmpfs in a private mount
    // namespace: the host's /etc/netdata is untouched); the other places it looks do not exist here.
    for (const d of ['/opt/netdata/etc/netdata', '/usr/local/etc/netdata']) expect(await exists(d), d).toBe(false);
    const r = await run('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', `mount -t tmpfs e2e-empty ${ETC} && exec bash "$0"`, INSTALL]);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stderr).toContain('systemdunits install: error: no Netdata found');
    expect(r.stderr).toContain('pass --prefix or --config-dir');
  });

  it('says so when --config-dir does not exist', async () => {
    const missing = path.join(await tmp('e2e-none-'), 'no-such-dir');
    const r = await install(['--config-dir', missing]);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stderr).toContain(`systemdunits install: error: config dir ${missing} does not exist`);
    expect(await exists(missing)).toBe(false);
  });

  it('--uninstall keeps an edited config and removes an unedited one', async () => {
    const shipped = await readFile(path.join(repoRoot, 'systemdunits.conf'), 'utf8');
    const edited = await layout();
    await writeFile(path.join(edited.dir, 'etc/systemdunits.conf'), `${shipped}# mine\n`);
    let r = await install([...edited.args, '--uninstall']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(`kept ${path.join(edited.dir, 'etc/systemdunits.conf')} (edited by you)`);
    expect(await readFile(path.join(edited.dir, 'etc/systemdunits.conf'), 'utf8')).toBe(`${shipped}# mine\n`);

    const pristine = await layout();
    await writeFile(path.join(pristine.dir, 'etc/systemdunits.conf'), shipped);
    r = await install([...pristine.args, '--uninstall']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(await exists(path.join(pristine.dir, 'etc/systemdunits.conf'))).toBe(false);
  });
});
