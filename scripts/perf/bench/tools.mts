// What the benchmark runs against the sandbox:
//   PluginProc     the compiled ./systemdunits.plugin (or the standalone executable), run as the
//                  agent runs it (argv[1] = update_every, stdin and stdout pipes, MALLOC_ARENA_MAX=1),
//                  its stdout read by PluginStream
//   FloorProc      scripts/perf/bench/floor.mjs on the launcher's node flags, its stdout read the same way
//   NodeExporter   prometheus-node-exporter with only its systemd collector, scraped over HTTP as
//                  Prometheus does (gzip, keep-alive)
//   SandboxExec    a command run inside the sandbox (systemctl, check_systemd) through a wrapper
//                  that reports the CPU and peak RSS of everything it ran (getrusage(RUSAGE_CHILDREN))
import { spawn, type ChildProcess, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { closeSync, copyFileSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { repoRoot } from '../../../harness/run.js';
import { cpuNsOf, recordPid, rssOf, sleep, type Mem } from './proc.mjs';
import { PluginStream } from '../../../harness/plugin-stream.js';

export const CHECK_SYSTEMD = '/usr/lib/nagios/plugins/check_systemd';
export const NODE_EXPORTER = 'prometheus-node-exporter';
const SANDBOX_SCRIPT = path.join(repoRoot, 'scripts/sandbox/systemd-sandbox.sh');

async function waitFor<T>(what: string, probe: () => T | undefined, timeoutMs: number, alive: () => string | undefined): Promise<T> {
  const until = performance.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    const dead = alive();
    if (dead) throw new Error(`${dead} while waiting for ${what}`);
    if (performance.now() > until) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(20);
  }
}

// ---------------------------------------------------------------------------------------------
/** SIGTERM, then SIGKILL after 3 s; resolves once the process is gone. */
async function terminate(child: ChildProcess): Promise<void> {
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 3000);
  await gone;
  clearTimeout(t);
}

export class PluginProc {
  readonly child: ChildProcessWithoutNullStreams;
  readonly stream: PluginStream;
  /** wall clock µs just before exec */
  readonly execUs: number;
  /** the last 200 kB of its stderr, for error messages */
  stderr = '';
  /** its `systemdunits.plugin: …` lines (what an operator sees in the agent's log), first 100 */
  readonly messages: string[] = [];
  /** `resync: N units, …, completed in X ms` lines of its debug output, oldest first, with when we
   * read them (performance.now()); counted as they arrive: a storm of debug lines after a reload
   * would push them out of `stderr` */
  readonly resyncs: Array<{ units: number; listedMs: number; completedMs: number; atMs: number }> = [];
  private stderrPartial = '';
  /** RSS and CPU (s) read the moment the first complete batch arrived */
  atFirst: { rss: Mem | undefined; cpuS: number | undefined } | undefined;
  /** performance.now() just before exec */
  readonly execMs: number;
  private exited = false;
  /** stdout chunks with their arrival (performance.now()) while capturing */
  private captured: Array<{ atMs: number; chunk: string }> | undefined;

  constructor(opts: {
    bus: string;
    configFile: string;
    pidFile?: string;
    watched: ReadonlySet<string>;
    isBenchUnit: (n: string) => boolean;
    units: number;
    /** what to run instead of ./systemdunits.plugin (the standalone executable's launcher: standaloneAsInstalled) */
    exe?: string;
    env?: Record<string, string>;
  }) {
    this.stream = new PluginStream(opts.watched, opts.isBenchUnit, opts.units);
    this.stream.onFirstComplete = () => {
      const ns = cpuNsOf(this.child.pid!);
      this.atFirst = { rss: rssOf(this.child.pid!), cpuS: ns === undefined ? undefined : ns / 1e9 };
    };
    this.execUs = Math.round((performance.timeOrigin + performance.now()) * 1000);
    this.execMs = performance.now();
    this.child = spawn(opts.exe ?? path.join(repoRoot, 'systemdunits.plugin'), ['1', '--config', opts.configFile], {
      // sync's debug line says when a resync has completed; it is written once per resync, not per tick.
      // MALLOC_ARENA_MAX=1: the agent sets it for every plugin it runs.
      env: { ...process.env, DEBUG: 'systemdunits:sync', DEBUG_COLORS: 'no', DBUS_SYSTEM_BUS_ADDRESS: opts.bus, MALLOC_ARENA_MAX: '1', ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    recordPid(opts.pidFile, this.child.pid, 'systemdunits.plugin');
    this.child.stdout.setEncoding('utf8').on('data', (d: string) => {
      this.stream.push(d);
      this.captured?.push({ atMs: performance.now(), chunk: d });
    });
    this.child.stderr.setEncoding('utf8').on('data', (d: string) => this.onStderr(d));
    this.child.stdin.on('error', () => {});
    this.child.on('exit', () => (this.exited = true));
  }

  get pid(): number {
    return this.child.pid!;
  }

  private dead = (): string | undefined => (this.exited ? `the plugin exited (${this.child.exitCode ?? this.child.signalCode}); stderr:\n${this.stderr.slice(-2000)}` : undefined);

  waitFor<T>(what: string, probe: () => T | undefined, timeoutMs: number): Promise<T> {
    return waitFor(what, probe, timeoutMs, this.dead);
  }

  /**
   * One tick's output, as written: stdout is read for a few seconds and cut into bursts at gaps of
   * 300 ms or more (a tick writes its whole batch at once); of the bursts with a gap on both sides,
   * the one of median size (a tick that also carries a round of socket counters is larger).
   */
  async captureTick(): Promise<string | undefined> {
    this.captured = [];
    await sleep(4200);
    const chunks = this.captured;
    this.captured = undefined;
    return oneTick(chunks);
  }

  private onStderr(d: string): void {
    this.stderr = (this.stderr + d).slice(-200_000);
    const lines = (this.stderrPartial + d).split('\n');
    this.stderrPartial = lines.pop() ?? '';
    for (const line of lines) {
      if (line.startsWith('systemdunits.plugin:')) {
        if (this.messages.length < 100) this.messages.push(line);
        continue;
      }
      const m = /resync: (\d+) units, \d+ new \(listed in (\d+) ms, completed in (\d+) ms\)/.exec(line);
      if (m) this.resyncs.push({ units: Number(m[1]), listedMs: Number(m[2]), completedMs: Number(m[3]), atMs: performance.now() });
    }
  }

  async stop(): Promise<void> {
    if (!this.exited) await terminate(this.child);
  }
}

/**
 * One tick's output from stdout chunks stamped with their arrival (ms): cut into bursts at gaps of
 * 300 ms or more; of the bursts with a gap on both sides (the first and last may be cut) that end
 * a line, the one of median size. Undefined when there is none.
 */
export function oneTick(chunks: ReadonlyArray<{ atMs: number; chunk: string }>): string | undefined {
  const bursts: string[] = [];
  let prevMs = -Infinity;
  for (const c of chunks) {
    if (c.atMs - prevMs >= 300) bursts.push('');
    bursts[bursts.length - 1] += c.chunk;
    prevMs = c.atMs;
  }
  const whole = bursts.slice(1, -1).filter((b) => b.endsWith('\n'));
  whole.sort((a, b) => a.length - b.length);
  return whole[Math.floor((whole.length - 1) / 2)];
}

// ---------------------------------------------------------------------------------------------
/**
 * The release's standalone executable EXE laid out in DIR as install.sh installs it: a copy of the
 * launcher (./systemdunits.plugin) beside systemdunits/systemdunits-plugin. Benches run the
 * launcher, which execs the executable (same pid) with the launcher's malloc settings: the
 * figures are what an installed release gives.
 */
export function standaloneAsInstalled(exe: string, dir: string): { launcher: string; exe: string } {
  mkdirSync(path.join(dir, 'systemdunits'), { recursive: true });
  const out = { launcher: path.join(dir, 'systemdunits.plugin'), exe: path.join(dir, 'systemdunits/systemdunits-plugin') };
  copyFileSync(path.join(repoRoot, 'systemdunits.plugin'), out.launcher); // (copyFile keeps the mode)
  copyFileSync(exe, out.exe);
  return out;
}

// ---------------------------------------------------------------------------------------------
/** The node flags of the launcher (./systemdunits.plugin), read from it so that the floor runs the same node. */
export function launcherNodeFlags(): string[] {
  const text = readFileSync(path.join(repoRoot, 'systemdunits.plugin'), 'utf8');
  const m = /exec "\$\{NODE:-node\}" ((?:--\S+ )+)"\$entry"/.exec(text);
  if (!m) throw new Error('cannot find the node flags in ./systemdunits.plugin');
  return m[1]!.trim().split(' ');
}

/** scripts/perf/bench/floor.mjs: a pre-rendered batch written once a second (or, with no batch, idle). */
export class FloorProc {
  readonly child: ChildProcessWithoutNullStreams;
  readonly stream: PluginStream;
  readonly execMs = performance.now();
  private exited = false;

  constructor(opts: { batchFile: string | undefined; pidFile?: string }) {
    this.stream = new PluginStream(new Set(), () => false, 0);
    const script = path.join(repoRoot, 'scripts/perf/bench/floor.mjs');
    this.child = spawn(process.execPath, [...launcherNodeFlags(), script, opts.batchFile ?? '--idle'], {
      env: { PATH: process.env.PATH, MALLOC_ARENA_MAX: '1' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    recordPid(opts.pidFile, this.child.pid, opts.batchFile ? 'floor.mjs' : 'floor.mjs --idle');
    // read as the plugin's stdout is read
    this.child.stdout.setEncoding('utf8').on('data', (d: string) => this.stream.push(d));
    this.child.stderr.setEncoding('utf8').on('data', (d: string) => process.stderr.write(`floor.mjs: ${d}`));
    this.child.stdin.on('error', () => {});
    this.child.on('exit', () => (this.exited = true));
  }

  get pid(): number {
    return this.child.pid!;
  }

  async stop(): Promise<void> {
    if (!this.exited) await terminate(this.child);
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

export interface Scrape {
  wallMs: number;
  bytesGz: number;
  /** bench units it reported, and how many of them failed */
  units: number;
  failed: number;
}

export class NodeExporter {
  errors = 0;
  lastError = '';
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  private exited = false;

  private constructor(
    readonly child: ChildProcess,
    readonly port: number,
    private readonly isBenchUnit: (n: string) => boolean,
  ) {
    child.on('exit', () => (this.exited = true));
  }

  static async start(opts: { bus: string; logFile: string; pidFile?: string; include: string; isBenchUnit: (n: string) => boolean }): Promise<NodeExporter> {
    const port = await freePort();
    const log = openSync(opts.logFile, 'a');
    const child = spawn(
      NODE_EXPORTER,
      ['--collector.disable-defaults', '--collector.systemd', `--collector.systemd.unit-include=${opts.include}`, `--web.listen-address=127.0.0.1:${port}`],
      { env: { ...process.env, DBUS_SYSTEM_BUS_ADDRESS: opts.bus }, stdio: ['ignore', log, log] },
    );
    closeSync(log);
    recordPid(opts.pidFile, child.pid, 'node_exporter');
    const ne = new NodeExporter(child, port, opts.isBenchUnit);
    for (let i = 0; ; i++) {
      if (ne.exited) throw new Error(`node_exporter exited at start; see ${opts.logFile}`);
      if (await ne.listening()) return ne;
      if (i > 200) throw new Error(`node_exporter does not listen on ${port}; see ${opts.logFile}`);
      await sleep(50);
    }
  }

  private listening(): Promise<boolean> {
    return new Promise((resolve) => {
      const s = net.connect(this.port, '127.0.0.1');
      s.on('connect', () => (s.destroy(), resolve(true)));
      s.on('error', () => resolve(false));
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** One scrape, as Prometheus makes it; undefined (and errors++) if it failed. */
  scrape(): Promise<Scrape | undefined> {
    const start = performance.now();
    return new Promise((resolve) => {
      const fail = (why: string) => {
        this.errors++;
        this.lastError = why;
        resolve(undefined);
      };
      const req = http.get(
        {
          host: '127.0.0.1',
          port: this.port,
          path: '/metrics',
          agent: this.agent,
          headers: { 'Accept-Encoding': 'gzip', Accept: 'text/plain;version=0.0.4;q=1,*/*;q=0.1' },
          timeout: 300_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const wallMs = performance.now() - start;
            if (res.statusCode !== 200) return fail(`HTTP ${res.statusCode}`);
            let body = Buffer.concat(chunks);
            const bytesGz = body.length;
            if (res.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
            let units = 0;
            let failed = 0;
            // node_systemd_unit_state{name="x.socket",state="failed",type=""} 1
            for (const m of body.toString('utf8').matchAll(/^node_systemd_unit_state\{name="([^"]+)",state="(\w+)"[^}]*\} 1$/gm)) {
              if (!this.isBenchUnit(m[1]!)) continue;
              units++;
              if (m[2] === 'failed') failed++;
            }
            resolve({ wallMs, bytesGz, units, failed });
          });
          res.on('error', (e) => fail(e.message));
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (e) => fail(e.message));
    });
  }

  async stop(): Promise<void> {
    this.agent.destroy();
    if (!this.exited) await terminate(this.child);
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

export interface ExecRun {
  /** the command's own wall time, taken inside the sandbox */
  wallMs: number;
  /** CPU of the run: sandbox exec wrapper + nsenter + the command and its children, s */
  cpuS: number;
  /** largest peak RSS of any one process of the run, KiB */
  maxRssKb: number;
  rc: number;
  output: string;
}

export class SandboxExec {
  private readonly running = new Set<ChildProcess>();

  constructor(private readonly sandboxDir: string) {}

  run(argv: readonly string[]): Promise<ExecRun> {
    const start = performance.now();
    return new Promise((resolve, reject) => {
      // The command's own wall time is taken inside the sandbox: the way in (python, bash, nsenter)
      // takes longer than a list-units at 100 units.
      const timed = ['sh', '-c', 's=$(date +%s%N); "$@"; rc=$?; e=$(date +%s%N); echo "__WALL__ $((e - s))" >&2; exit $rc', 'sh', ...argv];
      const child = spawn('/usr/bin/python3', ['-c', RUSAGE_WRAPPER, 'bash', SANDBOX_SCRIPT, 'exec', this.sandboxDir, ...timed], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      this.running.add(child);
      let out = '';
      let err = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
      child.on('error', (e) => {
        this.running.delete(child);
        reject(e);
      });
      child.on('close', () => {
        this.running.delete(child);
        const m = /__RUSAGE__ (\S+) (\S+) (\d+) (-?\d+)/.exec(err);
        if (!m) return reject(new Error(`${argv.join(' ')}: ${err.trim().slice(-300)}`));
        const wall = /__WALL__ (\d+)/.exec(err);
        resolve({ wallMs: wall ? Number(wall[1]) / 1e6 : performance.now() - start, cpuS: Number(m[1]) + Number(m[2]), maxRssKb: Number(m[3]), rc: Number(m[4]), output: out });
      });
    });
  }

  stop(): void {
    for (const c of this.running) c.kill('SIGKILL');
  }
}
