// Shared pieces of the end-to-end tests: installing the plugin with scripts/install/install.sh, looking at
// what systemd and the agent's process table say, and timing alarm status changes through the API.
import { createHash } from 'node:crypto';
import { chmod, copyFile, lstat, mkdir, readdir, readFile, readlink } from 'node:fs/promises';
import path from 'node:path';
import type { Agent, Alarm, AlarmStatus } from './agent.js';
import { repoRoot, run, type RunResult } from './run.js';
import type { Sandbox } from './sandbox.js';
import { failFlag } from './units.js';
import { readableUnitName } from '../plugin/units/names.js';
import { sleep } from './wait.js';

export const INSTALL = path.join(repoRoot, 'scripts/install/install.sh');

/** The socket chart of the shipped config's (and the built-in) job `service_units`. */
export const SOCKET_CHART = 'systemdunits_service_units.socket_unit_state';
export const SOCKET_ALARM = 'systemd_socket_unit_failed_state';
export const SOCKET_ALARM_KEY = `${SOCKET_CHART}.${SOCKET_ALARM}`;

/** The legend every unit state chart carries in its title: the chart's contract with its readers. */
export const STATE_LEGEND = '1: active, 2: inactive, 3: activating, 4: deactivating, 5: failed';
/** systemd's ActiveState → the value the chart must show (see the legend). */
export const EXPECTED_VALUE: Record<string, number> = {
  active: 1,
  reloading: 1,
  refreshing: 1,
  inactive: 2,
  maintenance: 2,
  activating: 3,
  deactivating: 4,
  failed: 5,
};

/** Runs scripts/install/install.sh as a user would (bash, the repo's copy), with the given options. */
export function install(args: string[], opts: { env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  return run('bash', [INSTALL, ...args], { timeoutMs: 180_000, env: opts.env });
}

/** Where install.sh put the plugin for a test agent whose state dir is `dir`. */
export interface AgentInstall {
  readonly pluginsDir: string;
  readonly healthDir: string;
  /** DIR/etc: netdata-agent.sh makes it the agent's user config dir (NETDATA_USER_CONFIG_DIR). */
  readonly configDir: string;
  readonly output: string;
}

/** Installs the plugin with install.sh into a test agent's dirs, as on a real host; throws on failure. */
export async function installForAgent(dir: string, opts: { agentVersion?: string } = {}): Promise<AgentInstall> {
  const paths = { pluginsDir: path.join(dir, 'plugins.d'), healthDir: path.join(dir, 'health.d'), configDir: path.join(dir, 'etc') };
  await mkdir(paths.configDir, { recursive: true });
  // The agent the test runs: install.sh would otherwise ask the host's `netdata -v` (Debian's 1.37.1).
  const version = opts.agentVersion ? ['--agent-version', opts.agentVersion] : [];
  const r = await install(['--config-dir', paths.configDir, '--plugins-dir', paths.pluginsDir, '--health-dir', paths.healthDir, '--owner', 'netdata', ...version]);
  const output = r.stdout + r.stderr;
  if (r.code !== 0) throw new Error(`install.sh failed (${r.code}):\n${output}`);
  return { ...paths, output };
}

export function tail(text: string, lines = 30): string {
  return text.split('\n').slice(-lines).join('\n');
}

/** What the failure message of an agent test should carry: the agent's own diagnostics. */
export async function agentContext(agent: Agent | undefined): Promise<string> {
  if (!agent) return '(no agent)';
  return `\n${await agent.diagnostics()}`;
}

export interface SystemdUnit {
  name: string;
  load: string;
  active: string;
  sub: string;
}

/**
 * A unit's dimension name as the plugin writes it: escapes decoded where that cannot be mistaken
 * for another unit's name (see readableUnitName; test/unit/unit-names.test.ts proves the rules).
 */
export function unescapeUnitName(name: string): string {
  return readableUnitName(name);
}

/** `systemctl list-units --type=TYPE --all` inside the sandbox. */
export async function listUnits(sb: Sandbox, type: string): Promise<SystemdUnit[]> {
  const r = await sb.execOk('systemctl', 'list-units', `--type=${type}`, '--all', '--plain', '--no-legend', '--no-pager', '--full');
  return r.stdout
    .split('\n')
    .map((l) => l.replace(/^\s*●\s*/, '').trim())
    .filter((l) => l !== '')
    .map((l) => {
      const [name, load, active, sub] = l.split(/\s+/);
      return { name: name!, load: load!, active: active!, sub: sub! };
    });
}

/**
 * Fails the sockets for real in one systemd transaction (their ExecStartPre exits 1) and returns
 * performance.now() at the moment `systemctl restart` returned: the start of an alarm measurement.
 */
export async function failSockets(sb: Sandbox, names: string[]): Promise<number> {
  await sb.execOk('touch', ...names.map(failFlag));
  const r = await sb.exec('systemctl', 'restart', ...names.map((n) => `${n}.socket`));
  const at = performance.now();
  if (r.code === 0) throw new Error(`systemctl restart ${names.join(' ')} succeeded: the sockets did not fail`);
  return at;
}

/** Brings failed sockets back with one `systemctl start`; returns performance.now() when it returned. */
export async function recoverSockets(sb: Sandbox, names: string[]): Promise<number> {
  await sb.execOk('rm', '-f', ...names.map(failFlag));
  await sb.execOk('systemctl', 'start', ...names.map((n) => `${n}.socket`));
  return performance.now();
}

/** Waits until the wall clock is `phase` (0..1) seconds into a second. */
export async function atWallPhase(phase: number): Promise<void> {
  const now = Date.now() % 1000;
  const target = Math.round(phase * 1000);
  await sleep((target - now + 1000) % 1000);
}

export interface StatusChange {
  /** seconds from `since` to the first API answer that showed the status */
  seconds: number;
  alarm: Alarm;
}

/**
 * Polls /api/v1/alarms?all every intervalMs until the alarm has `status`; returns how long after
 * `since` (a performance.now() value) the API first showed it. The error carries the statuses seen.
 */
export async function timeStatus(
  agent: Agent,
  key: string,
  status: AlarmStatus,
  since: number,
  timeoutMs = 10_000,
  intervalMs = 20,
): Promise<StatusChange> {
  const seen: string[] = [];
  for (;;) {
    const res = await agent.alarms();
    const at = performance.now();
    const alarm = res.alarms[key];
    const s = alarm?.status ?? 'absent';
    if (seen.at(-1) !== s) seen.push(s);
    if (alarm && alarm.status === status) return { seconds: (at - since) / 1000, alarm };
    if (at - since > timeoutMs) {
      throw new Error(
        `alarm ${key} not ${status} ${timeoutMs} ms after the change (statuses seen: ${seen.join(' → ')})${await agentContext(agent)}`,
      );
    }
    await sleep(intervalMs);
  }
}

export interface ProcInfo {
  pid: number;
  uid: number;
  user: string;
  cmdline: string[];
  /** pids of its ancestors, nearest first */
  ancestors: number[];
  environ: Record<string, string>;
}

async function procStatus(pid: number): Promise<Record<string, string>> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8');
  return Object.fromEntries(text.split('\n').map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]));
}

/** Processes whose command line contains `needle`, with their owner, ancestry and environment. */
export async function processesRunning(needle: string): Promise<ProcInfo[]> {
  const found: ProcInfo[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    try {
      const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').filter((a) => a !== '');
      if (!cmdline.some((a) => a.includes(needle))) continue;
      const status = await procStatus(pid);
      if (status.State?.startsWith('Z')) continue;
      const uid = Number(status.Uid?.split(/\s+/)[1]); // effective uid
      const ancestors: number[] = [];
      for (let p = Number(status.PPid); p > 1 && ancestors.length < 20; p = Number((await procStatus(p)).PPid)) ancestors.push(p);
      const environ = Object.fromEntries(
        (await readFile(`/proc/${pid}/environ`, 'utf8'))
          .split('\0')
          .filter((e) => e.includes('='))
          .map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]),
      );
      const user = (await run('id', ['-nu', String(uid)])).stdout.trim();
      found.push({ pid, uid, user, cmdline, ancestors, environ });
    } catch {
      // gone while we looked
    }
  }
  return found;
}

/**
 * The malloc settings the launcher (./systemdunits.plugin) execs the plugin with, on both routes
 * (node on the bundle, or the release's standalone executable): memory after safety resyncs.
 */
export const LAUNCHER_MALLOC_ENV: Readonly<Record<string, string>> = { MALLOC_MMAP_THRESHOLD_: '131072', MALLOC_TRIM_THRESHOLD_: '131072' };

/** Those of a running process's variables (compare with LAUNCHER_MALLOC_ENV; the agent's own MALLOC_ARENA_MAX is left out). */
export function launcherMallocEnvOf(proc: ProcInfo): Record<string, string> {
  return Object.fromEntries(Object.keys(LAUNCHER_MALLOC_ENV).filter((k) => k in proc.environ).map((k) => [k, proc.environ[k]!]));
}

export interface FsEntry {
  type: 'file' | 'dir' | 'symlink' | 'other';
  mode: string;
  uid: number;
  gid: number;
  /** sha256 of a file, target of a symlink */
  content?: string;
}

/** Every entry under root (root included, as '.'), for before/after comparisons. */
export async function snapshot(root: string): Promise<Map<string, FsEntry>> {
  const out = new Map<string, FsEntry>();
  async function walk(rel: string): Promise<void> {
    const abs = path.join(root, rel);
    let st;
    try {
      st = await lstat(abs);
    } catch {
      return;
    }
    const base = { mode: (st.mode & 0o7777).toString(8).padStart(4, '0'), uid: st.uid, gid: st.gid };
    if (st.isSymbolicLink()) out.set(rel, { type: 'symlink', ...base, content: await readlink(abs) });
    else if (st.isFile()) out.set(rel, { type: 'file', ...base, content: createHash('sha256').update(await readFile(abs)).digest('hex') });
    else if (st.isDirectory()) {
      out.set(rel, { type: 'dir', ...base });
      for (const name of (await readdir(abs)).sort()) await walk(rel === '.' ? name : path.join(rel, name));
    } else out.set(rel, { type: 'other', ...base });
  }
  await walk('.');
  return out;
}

/** Human-readable differences between two snapshots ([] when equal). */
export function diffSnapshots(before: Map<string, FsEntry>, after: Map<string, FsEntry>): string[] {
  const diffs: string[] = [];
  for (const [p, e] of before) {
    const a = after.get(p);
    if (!a) diffs.push(`removed: ${p}`);
    else if (JSON.stringify(a) !== JSON.stringify(e)) diffs.push(`changed: ${p} ${JSON.stringify(e)} → ${JSON.stringify(a)}`);
  }
  for (const p of after.keys()) if (!before.has(p)) diffs.push(`added: ${p}`);
  return diffs;
}

/** A fixture that speaks go.d's `systemdunits` chart shapes (see the file): no agent here has go.d. */
export const GO_D_FIXTURE = path.join(repoRoot, 'test/e2e/fixtures/go.d.plugin');
/** The fixture's charts: type systemdunits_<job>, id unit_<name>_<type>_state, label unit_name. */
export const GO_D_CHARTS: Record<string, { context: string; unit: string }> = {
  'systemdunits_service-units.unit_ssh_service_state': { context: 'systemd.service_unit_state', unit: 'ssh' },
  'systemdunits_service-units.unit_crashy_service_state': { context: 'systemd.service_unit_state', unit: 'crashy' },
  'systemdunits_service-units.unit_gofixture_socket_state': { context: 'systemd.socket_unit_state', unit: 'gofixture' },
};

/** Puts the go.d fixture into an agent's plugins dir as go.d.plugin (enable 'go.d' to run it). */
export async function addGoDFixture(pluginsDir: string): Promise<void> {
  const dest = path.join(pluginsDir, 'go.d.plugin');
  await copyFile(GO_D_FIXTURE, dest);
  await chmod(dest, 0o755);
}

/** Lines of an agent's log about health configuration it could not take (unknown key, bad value…):
 * 1.37.1 and v2 both word them "Health configuration at line N of file F …", v2's checks "HEALTH: alert '…'". */
export function healthConfigErrors(log: string): string[] {
  // (not 1.37.1's "Health configuration for alarm X cannot be applied, because the host … label":
  // a stock alarm meant for other hosts, logged at each health load)
  return log.split('\n').filter((l) => /Health configuration (at line|has |cannot read|invalid)|HEALTH: alert '[^']*' (does not|has no|is useless)/.test(l));
}

/**
 * Waits until the socket activity charts `ids` are all defined with `update_every` `everyS` and
 * then still collected (last_entry 4 s on); returns the newest rows of the first chart, for the
 * caller to check they hold values, not gaps.
 */
export async function socketChartsCollectedEvery(a: Agent, ids: readonly string[], everyS: number): Promise<unknown[][]> {
  const charts = await a.waitFor(async () => {
    const c = (await a.charts()).charts;
    return ids.every((id) => c[id]?.update_every === everyS) ? c : undefined;
  }, 30_000, `the sockets charted every ${everyS} s`);
  const entry = ids.map((id) => charts[id]!.last_entry);
  await a.waitFor(async () => {
    const c = (await a.charts()).charts;
    return ids.every((id, i) => c[id]!.last_entry >= entry[i]! + 4) ? c : undefined;
  }, 20_000, 'the sockets still collected (last_entry moving on)');
  const d = await a.data(ids[0]!, -8, 4);
  return d.result.data.slice(0, 2); // newest first
}
