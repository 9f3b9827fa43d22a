// A real, private Netdata agent for end-to-end tests (Debian's 1.37.1, or the v2.10.4 one of
// ../shared/netdata-v2, see netdataV2()): a typed wrapper around scripts/sandbox/netdata-agent.sh and the
// agent's REST API. Needs root and scripts/install/install-test-deps.sh.
import { access, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './ports.js';
import { repoRoot, run, runOk, type RunResult } from './run.js';
import { sleep } from './wait.js';

const script = path.join(repoRoot, 'scripts/sandbox/netdata-agent.sh');

export interface AgentOptions {
  /** run the agent installed under this prefix (static-build layout, see netdataV2()); default Debian's */
  prefix?: string;
  /** state directory; default a new one under the OS temp dir */
  dir?: string;
  /** directory holding NAME.plugin (default: an empty DIR/plugins.d) */
  pluginsDir?: string;
  /** plugins to run (default ['systemdunits']); every other plugin and internal collector is off */
  enable?: string[];
  /** user health config directory (default: an empty DIR/health.d) */
  healthDir?: string;
  /** also load the stock alarms shipped with the agent (default false: none) */
  stockHealth?: boolean;
  /** API port on 127.0.0.1 (default: a free one) */
  port?: number;
  /** notification script (default: one that records to DIR/notifications.log, see notifications()) */
  alarmScript?: string;
  /** DBUS_SYSTEM_BUS_ADDRESS for the agent and its plugins (must be reachable by user netdata) */
  busAddress?: string;
  /** the agent's hostname; parent and child on one machine need distinct ones */
  hostname?: string;
  updateEvery?: number;
  /** extra environment for the agent and its plugins (the rest of it is PATH and little else) */
  env?: Record<string, string>;
  /** stream to a parent: "127.0.0.1:PORT", with apiKey */
  streamTo?: string;
  apiKey?: string;
  /** accept children streaming with this api key */
  acceptStream?: string;
  /** parent: postpone a child's alarms this long after it connects (default 1 s) */
  postponeSeconds?: number;
  /** how long to wait for the API at start (default 30 s) */
  startTimeoutSeconds?: number;
}

export interface ChartDimension {
  name: string;
}

export interface Chart {
  id: string;
  name: string;
  type: string;
  family: string;
  context: string;
  /** the API appends " (chart id)" to the title given by the plugin */
  title: string;
  priority: number;
  plugin: string;
  module: string;
  units: string;
  chart_type: string;
  update_every: number;
  first_entry: number;
  last_entry: number;
  dimensions: Record<string, ChartDimension>;
  chart_variables?: Record<string, number>;
  chart_labels?: Record<string, string>;
  alarms?: Record<string, { id: number; status: AlarmStatus; units: string; update_every: number }>;
}

export interface ChartsResponse {
  hostname: string;
  version: string;
  update_every: number;
  charts: Record<string, Chart>;
  charts_count: number;
  hosts: { hostname: string }[];
}

export interface DataResponse {
  dimension_names: string[];
  dimension_ids: string[];
  latest_values: (number | null)[];
  view_latest_values: (number | null)[];
  first_entry: number;
  last_entry: number;
  /** with options=jsonwrap (used by data()): rows newest first, [time, ...values] */
  result: { labels: string[]; data: (number | null)[][] };
}

export type AlarmStatus = 'REMOVED' | 'UNINITIALIZED' | 'UNDEFINED' | 'CLEAR' | 'WARNING' | 'CRITICAL';

export interface Alarm {
  id: number;
  name: string;
  chart: string;
  family: string;
  status: AlarmStatus;
  /** null when the expression gives NaN */
  value: number | null;
  units: string;
  info: string;
  source: string;
  recipient: string;
  exec: string;
  last_status_change: number;
  last_updated: number;
  update_every: number;
  /** HTML-escaped by the API */
  calc?: string;
  warn?: string;
  crit?: string;
}

export interface AlarmsResponse {
  hostname: string;
  status: boolean;
  now: number;
  /** keyed "CHART_ID.ALARM_NAME" */
  alarms: Record<string, Alarm>;
}

/** One call of the default notification script. Field names as in alarm-notify.sh (1.37.1 and v2,
 * whose arguments differ: v2 dropped `family`, argument 9 on 1.37.1, and added `summary`). */
export interface Notification {
  args: string[];
  roles: string;
  host: string;
  name: string;
  chart: string;
  status: AlarmStatus;
  oldStatus: AlarmStatus;
  value: string;
  info: string;
  /** v2 agents only (argument 30): the expanded `summary:`, which v2's notifications show; '' on 1.37.1 */
  summary: string;
}

/** The REST API of one host: the agent itself, or a child through a streaming parent. */
export interface AgentApi {
  /** JSON from the API; path like "/api/v1/info"; throws on an HTTP error or invalid JSON */
  get<T = unknown>(apiPath: string): Promise<T>;
  charts(): Promise<ChartsResponse>;
  chart(id: string): Promise<Chart>;
  /** the last `-after` seconds (after < 0), newest row first (without `after` a fresh agent gives nulls) */
  data(id: string, after?: number, points?: number): Promise<DataResponse>;
  /** /api/v1/alarms?all: every alarm, whatever its status */
  alarms(): Promise<AlarmsResponse>;
}

export interface Agent extends AgentApi {
  readonly dir: string;
  readonly port: number;
  readonly url: string;
  /** the agent's pid as the host sees it */
  readonly pid: number;
  /** the agent's version, e.g. 1.37.1 or 2.10.4 */
  readonly version: string;
  /** the API of a child host streamed to this (parent) agent: /host/HOSTNAME/api/v1/… */
  host(hostname: string): AgentApi;
  /** polls fn (every intervalMs) until it returns a truthy value, which it returns; errors fn throws
   * count as "not yet". On timeout throws, with the last error and the agent's log tail. */
  waitFor<T>(fn: () => T | Promise<T>, timeoutMs?: number, what?: string, intervalMs?: number): Promise<NonNullable<T>>;
  /** the agent's error.log: its own messages and the plugins' stderr */
  errorLog(): Promise<string>;
  /** the agent's stderr, the tail of error.log and the notifications: for failure messages */
  diagnostics(): Promise<string>;
  /** calls of the default notification script, oldest first */
  notifications(): Promise<Notification[]>;
  /** runs a command in the agent's mount namespace (its private /tmp), e.g. netdatacli reload-health */
  exec(...cmd: string[]): Promise<RunResult>;
  /** stops the agent and every process it started; idempotent. The state dir is kept (logs) unless
   * removeDir. SIGTERM goes to the agent alone (systemd's KillMode=mixed, Debian's unit), or with
   * `all` to all its processes at once, plugins included (the default KillMode=control-group, which
   * Netdata's own v2 unit uses). */
  stop(opts?: { removeDir?: boolean; all?: boolean }): Promise<void>;
}

function apiFor(baseUrl: string): AgentApi {
  async function get<T>(apiPath: string): Promise<T> {
    const url = baseUrl + apiPath;
    const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
    const body = await res.text();
    if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status}: ${body.slice(0, 300)}`);
    try {
      return JSON.parse(body) as T;
    } catch (err) {
      throw new Error(`GET ${url}: invalid JSON (${(err as Error).message}): ${body.slice(0, 300)}`);
    }
  }
  const q = encodeURIComponent;
  return {
    get,
    charts: () => get<ChartsResponse>('/api/v1/charts'),
    chart: (id) => get<Chart>(`/api/v1/chart?chart=${q(id)}`),
    data: (id, after = -10, points = Math.abs(after)) =>
      get<DataResponse>(`/api/v1/data?chart=${q(id)}&after=${after}&points=${points}&options=jsonwrap`),
    alarms: () => get<AlarmsResponse>('/api/v1/alarms?all'),
  };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function startAgent(opts: AgentOptions = {}): Promise<Agent> {
  const dir = path.resolve(opts.dir ?? (await mkdtemp(path.join(os.tmpdir(), 'netdata-agent-'))));
  const args: string[] = [script, 'start', dir];
  const opt = (name: string, value: string | number | undefined) => {
    if (value !== undefined) args.push(name, String(value));
  };
  opt('--prefix', opts.prefix);
  opt('--plugins', opts.pluginsDir);
  for (const name of opts.enable ?? []) opt('--enable', name);
  opt('--health', opts.healthDir);
  if (opts.stockHealth) args.push('--stock-health');
  // Picked here rather than by the script (port 0 there: an ephemeral port, see ports.ts).
  opt('--port', opts.port ?? (await freePort()));
  opt('--alarm-script', opts.alarmScript);
  opt('--bus', opts.busAddress);
  opt('--hostname', opts.hostname);
  opt('--update-every', opts.updateEvery);
  for (const [k, v] of Object.entries(opts.env ?? {})) opt('--env', `${k}=${v}`);
  opt('--stream-to', opts.streamTo);
  opt('--api-key', opts.apiKey);
  opt('--accept-stream', opts.acceptStream);
  opt('--postpone', opts.postponeSeconds);
  opt('--timeout', opts.startTimeoutSeconds);

  const started = await run('bash', args, { timeoutMs: ((opts.startTimeoutSeconds ?? 30) + 30) * 1000 });
  if (started.code !== 0) throw new Error(`netdata agent did not start in ${dir}:\n${started.stderr}`);
  const port = Number(started.stdout.trim());
  const pid = Number((await readFile(path.join(dir, 'pid'), 'utf8')).trim());
  const version = (await readFile(path.join(dir, 'version'), 'utf8')).trim();
  // alarm-notify.sh's arguments (1-based) on this agent: v2 has no `family` (9 on 1.37.1)
  const v2 = Number(version.split('.')[0]) >= 2;
  const argNo = v2
    ? { name: 7, chart: 8, status: 9, oldStatus: 10, value: 11, info: 17, summary: 30 }
    : { name: 7, chart: 8, status: 10, oldStatus: 11, value: 12, info: 18, summary: 0 };
  const url = `http://127.0.0.1:${port}`;
  const errorLog = () => readFile(path.join(dir, 'log/error.log'), 'utf8').catch(() => '');

  const agent: Agent = {
    ...apiFor(url),
    dir,
    port,
    url,
    pid,
    version,
    host: (hostname) => apiFor(`${url}/host/${encodeURIComponent(hostname)}`),
    errorLog,
    async diagnostics() {
      const tail = (s: string, n: number) => s.split('\n').slice(-n).join('\n');
      const stderr = await readFile(path.join(dir, 'stderr'), 'utf8').catch(() => '');
      const notes = await readFile(path.join(dir, 'notifications.log'), 'utf8').catch(() => '');
      return [
        `--- agent in ${dir}, API ${url}, pid ${pid} ${isAlive(pid) ? 'running' : 'NOT RUNNING (crashed or stopped)'}`,
        `--- stderr:\n${tail(stderr, 20)}`,
        `--- ${dir}/log/error.log (tail):\n${tail(await errorLog(), 40)}`,
        `--- notifications:\n${tail(notes.replaceAll('\x1f', ' | '), 10)}`,
      ].join('\n');
    },
    async notifications() {
      const text = await readFile(path.join(dir, 'notifications.log'), 'utf8').catch(() => '');
      return text
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => {
          const a = line.split('\x1f');
          if (a.at(-1) === '') a.pop();
          const at = (i: number) => a[i - 1] ?? '';
          return {
            args: a,
            roles: at(1),
            host: at(2),
            name: at(argNo.name),
            chart: at(argNo.chart),
            status: at(argNo.status) as AlarmStatus,
            oldStatus: at(argNo.oldStatus) as AlarmStatus,
            value: at(argNo.value),
            info: at(argNo.info),
            summary: at(argNo.summary),
          };
        });
    },
    exec: (...cmd) => run('bash', [script, 'exec', dir, ...cmd]),
    async waitFor<T>(fn: () => T | Promise<T>, timeoutMs = 10_000, what = 'condition', intervalMs = 100) {
      const deadline = Date.now() + timeoutMs;
      let last: unknown;
      for (;;) {
        try {
          const v = await fn();
          if (v) return v as NonNullable<T>;
          last = v;
        } catch (err) {
          last = err;
        }
        if (!isAlive(pid)) {
          throw new Error(`the agent exited while waiting for ${what}\n${await agent.diagnostics()}`);
        }
        if (Date.now() >= deadline) {
          const why = last instanceof Error ? last.message : JSON.stringify(last);
          throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${why})\n${await agent.diagnostics()}`);
        }
        await sleep(intervalMs);
      }
    },
    async stop({ removeDir = false, all = false } = {}) {
      await runOk('bash', [script, 'stop', dir, ...(all ? ['--all'] : [])], { timeoutMs: 30_000 });
      if (removeDir) await rm(dir, { recursive: true, force: true });
    },
  };
  return agent;
}

/** The agents the end-to-end suites run on: Debian's, and the v2 one when it is available. */
export interface Flavour {
  /** 'netdata 1.37.1' or 'netdata v2': for test names */
  name: string;
  /** AgentOptions.prefix for this agent (undefined: Debian's) */
  prefix?: string;
  /** why the runs on this agent are skipped (undefined: they run) */
  skip?: string;
  /** agent version to tell install.sh (--agent-version) */
  version: string;
}

/** Where the v2 agent's prefix is compiled in: its tarball must be extracted at /, nowhere else. */
export const V2_PREFIX = '/opt/netdata-v2';
const V2_TARBALL = 'netdata-v2.10.4-opt.tar.gz';

/** Where the tarball of the v2 agent may be: $NETDATA_V2_DIR, CI's shared/ beside the checkout, a local /work/shared. */
function v2Dirs(): string[] {
  const dirs = [path.resolve(repoRoot, '../shared/netdata-v2'), '/work/shared/netdata-v2'];
  if (process.env.NETDATA_V2_DIR) dirs.unshift(path.resolve(process.env.NETDATA_V2_DIR));
  return dirs;
}

const exists = (p: string) => access(p).then(() => true, () => false);

let v2: Promise<Flavour> | undefined;

/**
 * The Netdata v2.10.4 agent of ../shared/netdata-v2 (test equipment, never copied into the
 * project): /opt/netdata-v2 as it is, or extracted there from the tarball. Without either, a
 * flavour with `skip` saying why.
 */
export function netdataV2(): Promise<Flavour> {
  v2 ??= locateNetdataV2(V2_PREFIX, v2Dirs());
  return v2;
}

/** netdataV2() for a given prefix and tarball directories (the prefix is compiled into the agent:
 * only V2_PREFIX really runs). */
export async function locateNetdataV2(prefix: string, dirs: readonly string[]): Promise<Flavour> {
  const flavour = { name: 'netdata v2', prefix, version: '2.10.4' };
  const bin = path.join(prefix, 'usr/sbin/netdata');
  if (!(await exists(bin))) {
    let tarball: string | undefined;
    for (const d of dirs) if (await exists(path.join(d, V2_TARBALL))) tarball ??= path.join(d, V2_TARBALL);
    if (!tarball) return { ...flavour, skip: `no v2 agent: ${bin} is missing and there is no ${V2_TARBALL} in ${dirs.join(', ')} (or set NETDATA_V2_DIR)` };
    const r = await run('tar', ['xzf', tarball, '-C', '/'], { timeoutMs: 120_000 });
    if (r.code !== 0) throw new Error(`extracting ${tarball} at /: ${r.stderr}`);
  }
  const v = await run(bin, ['-v']);
  const version = /v?(\d+\.\d+\.\d+)/.exec(v.stdout + v.stderr)?.[1];
  if (v.code !== 0 || !version?.startsWith('2.')) throw new Error(`${bin} -v: not a v2 agent: ${v.stdout}${v.stderr}`);
  return { ...flavour, version };
}

/** Debian's 1.37.1 (always: scripts/install/install-test-deps.sh installs it). */
export const DEBIAN: Flavour = { name: 'netdata 1.37.1', version: '1.37.1' };

/** Both agents, for describe.each: the v2 one carries `skip` where it is unavailable. */
export async function flavours(): Promise<Flavour[]> {
  return [DEBIAN, await netdataV2()];
}
