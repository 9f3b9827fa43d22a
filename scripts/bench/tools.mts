// The three tools under test, each driven the way it is used, each producing "observations": the
// moment a result became available to the monitoring system, and which of the watched units it
// reported failed.
//   plugin         the compiled ./systemdunits.plugin (update_every 1), its stdout parsed by the test
//                  helper PluginRun; one observation per sample of the socket chart
//   node_exporter  prometheus-node-exporter with only its systemd collector, scraped over HTTP as
//                  Prometheus does (gzip, keep-alive); one observation per completed scrape
//   check_systemd  the Nagios plugin, run inside the sandbox (its systemctl must reach the sandbox's
//                  systemd) through a wrapper that reports the run's CPU and peak RSS from
//                  getrusage(RUSAGE_CHILDREN); one observation per run
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { PluginRun } from '../../test/helpers/plugin.js';
import { repoRoot } from '../../test/helpers/run.js';
import { recordPid, sleep } from './proc.mjs';

export const CHECK_SYSTEMD = '/usr/lib/nagios/plugins/check_systemd';
export const NODE_EXPORTER = 'prometheus-node-exporter';
const SANDBOX_SCRIPT = path.join(repoRoot, 'scripts/systemd-sandbox.sh');

export interface Observation {
  /** when the tool started looking (performance.now() ms); = at for the plugin, which pushes */
  start: number;
  /** when the result was in the monitoring system's hands */
  at: number;
  /** watched units it reported failed */
  failed: ReadonlySet<string>;
}

/** Calls fn at a fixed interval; a tick that finds the previous call still running is skipped. */
export class Ticker {
  ticks = 0;
  skipped = 0;
  private timer: NodeJS.Timeout | undefined;
  private inflight: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly intervalMs: number,
    private readonly fn: () => Promise<unknown>,
  ) {}

  start(): void {
    const t0 = performance.now();
    let k = 0;
    const tick = (): void => {
      if (this.stopped) return;
      this.ticks++;
      if (this.inflight) this.skipped++;
      else {
        this.inflight = this.fn()
          .then(() => undefined, () => undefined)
          .finally(() => (this.inflight = undefined));
      }
      k++;
      this.timer = setTimeout(tick, Math.max(0, t0 + k * this.intervalMs - performance.now()));
    };
    tick();
  }

  /** Stops ticking and waits for the call in flight. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.inflight;
  }
}

// ---------------------------------------------------------------------------------------------
export class PluginTool {
  readonly name = 'plugin';
  readonly observations: Observation[] = [];
  readonly run: PluginRun;
  readonly spawnedAt = performance.now();
  firstSampleAt: number | undefined;
  private readonly dimIds = new Map<string, string>();

  constructor(
    opts: { bus: string; configFile: string; pidFile?: string },
    private readonly chart: string,
    private readonly watched: readonly string[],
  ) {
    this.run = new PluginRun(['1', '--config', opts.configFile], { DBUS_SYSTEM_BUS_ADDRESS: opts.bus });
    recordPid(opts.pidFile, this.run.child.pid, 'systemdunits.plugin');
    // Registered after PluginRun's own listener: its samples are parsed by the time this runs.
    this.run.child.stdout.on('data', () => this.consume());
  }

  get pid(): number | undefined {
    return this.run.child.exitCode === null ? this.run.child.pid : undefined;
  }

  /** Protocol problems the agent would punish; must stay empty. */
  problems(): string[] {
    return [...this.run.strayLines, ...this.run.protocolErrors].slice(0, 5);
  }

  private dimId(unit: string): string | undefined {
    let id = this.dimIds.get(unit);
    if (id === undefined) {
      for (const [dim, info] of this.run.charts.get(this.chart)?.dims ?? []) {
        if (info.name === unit) this.dimIds.set(unit, (id = dim));
      }
    }
    return id;
  }

  private consume(): void {
    for (const s of this.run.samples) {
      if (s.chart !== this.chart) continue;
      this.firstSampleAt ??= s.at;
      const failed = new Set<string>();
      for (const unit of this.watched) {
        const id = this.dimId(unit);
        if (id !== undefined && s.values[id] === 5) failed.add(unit);
      }
      this.observations.push({ start: s.at, at: s.at, failed });
    }
    // Only the observations are kept: thousands of dimensions a second add up over minutes.
    this.run.samples.length = 0;
    this.run.lines.length = 0;
  }

  async waitFirstSample(timeoutMs = 60_000): Promise<number> {
    return this.run.waitFor('the first sample of ' + this.chart, () => this.firstSampleAt, timeoutMs);
  }

  stop(): Promise<void> {
    return this.run.stop();
  }
}

// ---------------------------------------------------------------------------------------------
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

export interface Scrape extends Observation {
  bytes: number;
}

export class NodeExporterTool {
  readonly name = 'node_exporter';
  readonly observations: Scrape[] = [];
  errors = 0;
  lastError = '';
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  private exited = false;

  private constructor(
    readonly child: ChildProcess,
    readonly port: number,
    private readonly watched: ReadonlySet<string>,
  ) {
    child.on('exit', () => (this.exited = true));
  }

  static async start(opts: { bus: string; logFile: string; pidFile?: string }, watched: readonly string[]): Promise<NodeExporterTool> {
    const port = await freePort();
    const log = openSync(opts.logFile, 'a');
    const child = spawn(
      NODE_EXPORTER,
      ['--collector.disable-defaults', '--collector.systemd', `--web.listen-address=127.0.0.1:${port}`],
      { env: { ...process.env, DBUS_SYSTEM_BUS_ADDRESS: opts.bus }, stdio: ['ignore', log, log] },
    );
    closeSync(log);
    recordPid(opts.pidFile, child.pid, 'node_exporter');
    const tool = new NodeExporterTool(child, port, new Set(watched));
    for (let i = 0; ; i++) {
      if (tool.exited) throw new Error(`node_exporter exited at start; see ${opts.logFile}`);
      if (await tool.portOpen()) return tool;
      if (i > 200) throw new Error(`node_exporter does not listen on ${port}; see ${opts.logFile}`);
      await sleep(50);
    }
  }

  get pid(): number | undefined {
    return this.exited ? undefined : this.child.pid;
  }

  private portOpen(): Promise<boolean> {
    return new Promise((resolve) => {
      const s = net.connect(this.port, '127.0.0.1');
      s.on('connect', () => (s.destroy(), resolve(true)));
      s.on('error', () => resolve(false));
    });
  }

  /** One scrape, as Prometheus makes it; the observation is recorded unless `record` is false. */
  scrape(record = true): Promise<Scrape | undefined> {
    const start = performance.now();
    return new Promise((resolve) => {
      const req = http.get(
        {
          host: '127.0.0.1',
          port: this.port,
          path: '/metrics',
          agent: this.agent,
          headers: { 'Accept-Encoding': 'gzip', Accept: 'text/plain;version=0.0.4;q=1,*/*;q=0.1' },
          timeout: 120_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const at = performance.now();
            if (res.statusCode !== 200) return fail(`HTTP ${res.statusCode}`);
            let body = Buffer.concat(chunks);
            const bytes = body.length;
            if (res.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
            const failed = new Set<string>();
            // node_systemd_unit_state{name="x.socket",state="failed",type=""} 1
            for (const m of body.toString('utf8').matchAll(/^node_systemd_unit_state\{name="([^"]+)",state="failed"[^}]*\} 1$/gm)) {
              if (this.watched.has(m[1]!)) failed.add(m[1]!);
            }
            const s: Scrape = { start, at, failed, bytes };
            if (record) this.observations.push(s);
            resolve(s);
          });
          res.on('error', (e) => fail(e.message));
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (e) => fail(e.message));
      const fail = (why: string) => {
        this.errors++;
        this.lastError = why;
        resolve(undefined);
      };
    });
  }

  async stop(): Promise<void> {
    this.agent.destroy();
    if (this.exited) return;
    const gone = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), 3000);
    await gone;
    clearTimeout(t);
  }
}

// ---------------------------------------------------------------------------------------------
/** Runs argv, then reports the CPU and peak RSS of everything it ran (waited-for descendants). */
const RUSAGE_WRAPPER = `import resource, subprocess, sys
p = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
sys.stdout.buffer.write(p.stdout)
sys.stderr.buffer.write(p.stderr)
sys.stderr.write("\\n__RUSAGE__ %r %r %d %d\\n" % (r.ru_utime, r.ru_stime, r.ru_maxrss, p.returncode))
`;

export interface CheckRun extends Observation {
  /** CPU of the run: sandbox exec wrapper + nsenter + check_systemd + its systemctl/systemd-analyze, s */
  cpuS: number;
  /** largest peak RSS of any one process of the run, KiB */
  maxRssKb: number;
  rc: number;
  output: string;
}

export class CheckSystemdTool {
  readonly name = 'check_systemd';
  readonly observations: CheckRun[] = [];
  errors = 0;
  lastError = '';
  private readonly running = new Set<ChildProcess>();

  constructor(
    private readonly sandboxDir: string,
    private readonly watched: ReadonlySet<string>,
  ) {}

  /** One run of argv inside the sandbox, through the same wrapper (used to measure the wrapper itself). */
  exec(argv: readonly string[]): Promise<Omit<CheckRun, 'failed'> | undefined> {
    const start = performance.now();
    return new Promise((resolve) => {
      const child = spawn('/usr/bin/python3', ['-c', RUSAGE_WRAPPER, 'bash', SANDBOX_SCRIPT, 'exec', this.sandboxDir, ...argv], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      this.running.add(child);
      let out = '';
      let err = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
      child.on('error', (e) => {
        this.running.delete(child);
        this.errors++;
        this.lastError = e.message;
        resolve(undefined);
      });
      child.on('close', () => {
        this.running.delete(child);
        const at = performance.now();
        const m = /__RUSAGE__ (\S+) (\S+) (\d+) (-?\d+)/.exec(err);
        if (!m) {
          this.errors++;
          this.lastError = err.trim().slice(-300);
          return resolve(undefined);
        }
        resolve({ start, at, cpuS: Number(m[1]) + Number(m[2]), maxRssKb: Number(m[3]), rc: Number(m[4]), output: out });
      });
    });
  }

  /** One check, as a Nagios/Icinga scheduler would run it: no options (the defaults). */
  async check(record = true): Promise<CheckRun | undefined> {
    const r = await this.exec([CHECK_SYSTEMD]);
    if (!r) return undefined;
    // "SYSTEMD CRITICAL - a.socket: failed, b.socket: failed | count_units=… units_failed=2 …"
    if (r.rc > 2 || !/^SYSTEMD (OK|WARNING|CRITICAL)/.test(r.output)) {
      this.errors++;
      this.lastError = `rc ${r.rc}: ${r.output.trim().slice(0, 300)}`;
    }
    const failed = new Set<string>();
    for (const m of (r.output.split('|')[0] ?? '').matchAll(/([^\s,]+): failed/g)) {
      if (this.watched.has(m[1]!)) failed.add(m[1]!);
    }
    const run: CheckRun = { ...r, failed };
    if (record) this.observations.push(run);
    return run;
  }

  stop(): void {
    for (const c of this.running) c.kill('SIGKILL');
  }
}
