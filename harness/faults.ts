// Real faults and real churn for the plugin's tests and the soak run: the bus daemon stopped or
// restarted, systemd frozen, sockets accepting connections, and comparisons of what the plugin
// charts with what systemd lists.
import { readdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import type { PluginRun } from './plugin.js';
import type { Sandbox } from './sandbox.js';
import { sleep } from './wait.js';

/** The plugin's memory and open files, from /proc (the launcher execs node: same pid). */
export function procStats(pid: number): { rssKb: number; fds: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(status.match(/^VmRSS:\s+(\d+)/m)?.[1] ?? NaN);
  return { rssKb, fds: readdirSync(`/proc/${pid}/fd`).length };
}

/** Stops dbus-daemon (its socket too, so nothing can start it again), then starts it after `ms`. */
export async function busGoneFor(sb: Sandbox, ms: number, during?: () => Promise<void>): Promise<number> {
  await sb.execOk('systemctl', 'stop', 'dbus.socket', 'dbus.service');
  const t0 = Date.now();
  await during?.();
  await sleep(Math.max(0, ms - (Date.now() - t0)));
  await sb.execOk('systemctl', 'start', 'dbus.socket', 'dbus.service');
  return performance.now();
}

/** SIGSTOP systemd (PID 1 of the sandbox) for `ms`, then SIGCONT; returns when it continued. */
export async function freezeSystemd(sb: Sandbox, ms: number, during?: () => Promise<void>): Promise<number> {
  process.kill(sb.pid, 'SIGSTOP');
  try {
    const t0 = Date.now();
    await during?.();
    await sleep(Math.max(0, ms - (Date.now() - t0)));
  } finally {
    process.kill(sb.pid, 'SIGCONT');
  }
  return performance.now();
}

/** An Accept=yes socket NAME.socket on /run/NAME.sock: each connection gets its own NAME@….service. */
export async function writeAcceptSocket(sb: Sandbox, name: string): Promise<void> {
  await sb.writeUnit(`${name}.socket`, `[Unit]\nDescription=accept test ${name}\n[Socket]\nListenStream=/run/${name}.sock\nAccept=yes\nMaxConnections=4096\n`);
  await sb.writeUnit(`${name}@.service`, `[Unit]\nDescription=accept test instance\n[Service]\nExecStart=/bin/true\nStandardInput=socket\n`);
}

/** Opens `count` connections to /run/NAME.sock inside the sandbox, `parallel` at a time; each is closed once accepted. */
export async function acceptConnections(sb: Sandbox, name: string, count: number, parallel = 16): Promise<void> {
  const path = `/proc/${sb.pid}/root/run/${name}.sock`;
  let left = count;
  const one = () =>
    new Promise<void>((resolve) => {
      const s = connect(path);
      s.on('connect', () => s.end('x'));
      s.on('error', () => resolve());
      s.on('close', () => resolve());
      s.setTimeout(5000, () => s.destroy());
    });
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (left-- > 0) await one();
    }),
  );
}

/** A template target: instances cost systemd no process and no file descriptor. */
export async function writeStormTemplate(sb: Sandbox, name = 'storm'): Promise<void> {
  await sb.writeUnit(`${name}@.target`, `[Unit]\nDescription=storm instance %i\nStopWhenUnneeded=no\n`);
}

export const STATE_VALUE: Record<string, number> = { active: 1, reloading: 1, refreshing: 1, inactive: 2, maintenance: 2, activating: 3, deactivating: 4, failed: 5 };

/** Loaded units of one type as systemctl lists them (not-found references left out), with states. */
export async function systemdUnits(sb: Sandbox, type: string): Promise<Map<string, string>> {
  const r = await sb.execOk('systemctl', 'list-units', `--type=${type}`, '--all', '--plain', '--no-legend', '--no-pager', '--full');
  const out = new Map<string, string>();
  for (const line of r.stdout.split('\n')) {
    const [name, load, active] = line.replace(/^\s*●\s*/, '').trim().split(/\s+/);
    if (name && load && load !== 'not-found' && active) out.set(name.replace(/\\x([0-9a-fA-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))), active);
  }
  return out;
}

/**
 * Differences between a chart's live dimensions (by name, with the latest sample's values) and
 * systemd's listing of that unit type; [] when they agree. `skip` leaves units out of both sides
 * (e.g. transient ones, which the default job does not chart). Duplicated names count as a difference.
 */
export async function chartVsSystemd(run: PluginRun, chart: string, sb: Sandbox, type: string, skip: (name: string) => boolean = () => false): Promise<string[]> {
  const listed = await systemdUnits(sb, type);
  const info = run.charts.get(chart);
  const sample = run.samplesOf(chart).at(-1);
  const diffs: string[] = [];
  const seen = new Map<string, number>();
  for (const [id, dim] of info?.dims ?? []) {
    if (dim.obsolete || skip(dim.name)) continue;
    seen.set(dim.name, (seen.get(dim.name) ?? 0) + 1);
    const want = listed.get(dim.name);
    if (want === undefined) diffs.push(`charted but not loaded in systemd: ${dim.name}`);
    else if (sample && sample.values[id] !== STATE_VALUE[want]) diffs.push(`${dim.name}: charted ${sample.values[id]}, systemd says ${want}`);
  }
  for (const [name, n] of seen) if (n > 1) diffs.push(`charted ${n} times: ${name}`);
  for (const name of listed.keys()) if (!skip(name) && !seen.has(name)) diffs.push(`loaded in systemd but not charted: ${name}`);
  return diffs;
}

/** Polls chartVsSystemd until it agrees; returns the last differences (empty on success). */
export async function settleVsSystemd(run: PluginRun, chart: string, sb: Sandbox, type: string, timeoutMs = 15_000, skip?: (name: string) => boolean): Promise<string[]> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const diffs = await chartVsSystemd(run, chart, sb, type, skip);
    if (diffs.length === 0 || Date.now() > until) return diffs;
    await sleep(500);
  }
}
