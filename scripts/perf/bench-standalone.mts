// The standalone executable (npm run release) against the node + bundle launcher, on one real
// systemd whose bench sockets (scripts/perf/bench/units.mts: template instances, and their
// services) grow to each N in turn, with the plugin's built-in default job. Per N and variant:
//   start-up   spawn to the first complete batch (every bench socket charted), and the CPU the
//              process took to get there; --startups rounds, the variants in turn (rotated order)
//   steady     CPU over --seconds starting --settle s after launch, and never before 3 s after
//              every Accept=yes bench socket is charted (at start the plugin reads every socket's
//              Accept once: ~50 s at 10,000, ~2 s of CPU, which is start-up, not steady), as the sum of its threads'
//              /proc/PID/task/*/schedstat run time (ns: precise, and little moved by other load);
//              --runs runs, the variants at once in each run (launched one after the other),
//              up to --together units, else in turn
//   memory     at the end of each window: RSS, of it the process's own (RssAnon + RssShmem) and
//              the file-backed pages of the executable (shared with every process mapping it)
// Every figure is the median over the runs; "vs" is against the first variant (the launcher on the
// host's node). The load average is printed beside each table. At 10,000 a steady plugin makes
// about one major GC (~25 ms with its marking) every few minutes against ~90 ms of CPU a minute:
// one in or out of a 60 s window moves that window by ~25 %, so to tell 10 % apart there, give
// --seconds 300 or more (8-minute windows, side by side: +3 % for the executable, README).
// An executable runs as installed (bench/tools.mts standaloneAsInstalled): a copy of the launcher
// beside it execs it with the launcher's malloc settings, as on both routes of an install.
// Each variant runs from its own copy of its binary (the node binary for a launcher), whose page
// cache is dropped before the first run: the kernel maps a file's pages in the folios its page
// cache holds them in, and a freshly written file (postject's output) sits in large folios that
// put ~15 MB more of the executable in RSS than the same bytes read from disk, as on a host.
// Run through scripts/perf/bench.sh --standalone [--n LIST] [--seconds S] [--settle S] [--runs K]
// [--startups K] [--together N] [--node BIN]… [--exe NAME=PATH]…; needs root and dist/release/systemdunits.plugin.
//   --node BIN       also the launcher on that node binary (e.g. the Node the executable is made
//                    of: the same V8, so the difference left is the packaging)
//   --exe NAME=PATH  also another executable (e.g. one made with other flags or another Node)
//   --together N     up to N units (default: every N) the variants' steady windows run at once;
//                    above, one variant at a time
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { repoRoot, run, runOk } from '../../harness/run.js';
import { startSandbox, SANDBOX_BASE, type Sandbox } from '../../harness/sandbox.js';
import { PluginStream } from '../../harness/plugin-stream.js';
import { BenchUnits, isBenchUnit } from './bench/units.mjs';
import { cpuNsOf, statusOf } from './bench/proc.mjs';
import { standaloneAsInstalled } from './bench/tools.mjs';

const { values } = parseArgs({
  options: {
    n: { type: 'string', default: '200,10000' },
    seconds: { type: 'string', default: '60' },
    settle: { type: 'string', default: '15' },
    runs: { type: 'string', default: '3' },
    startups: { type: 'string', default: '5' },
    together: { type: 'string', default: '1000000' },
    node: { type: 'string', multiple: true, default: [] },
    exe: { type: 'string', multiple: true, default: [] },
  },
});
const count = (name: string, v: string, min: number) => {
  const x = Number(v);
  if (!Number.isInteger(x) || x < min) throw new Error(`--${name} wants a whole number ≥ ${min}, got '${v}'`);
  return x;
};
const NS = values.n.split(',').map((v) => count('n', v.trim(), 4)).sort((a, b) => a - b);
const SECONDS = count('seconds', values.seconds, 1);
const SETTLE = count('settle', values.settle, 0);
const RUNS = count('runs', values.runs, 1);
const STARTUPS = count('startups', values.startups, 1);
const TOGETHER = count('together', values.together, 0);
const sea = path.join(repoRoot, 'dist/release/systemdunits.plugin');
if (!existsSync(sea)) throw new Error(`${sea} missing: npm run release first`);
const launcher = path.join(repoRoot, 'systemdunits.plugin');
const bundle = path.join(repoRoot, 'dist/systemdunits.mjs');
const say = (msg: string) => console.error(`bench: ${msg}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MB = (kb: number) => kb / 1024;

interface Variant {
  name: string;
  /** what is spawned */
  cmd: string;
  env: NodeJS.ProcessEnv;
  /** bytes on disk: the executable, or node + the bundle */
  size: number;
}

/** FILE out of the page cache: its first run reads it as from disk. */
async function dropFromCache(file: string): Promise<void> {
  await runOk('sync', [file]); // dirty pages cannot be dropped
  await runOk('dd', [`if=${file}`, 'iflag=nocache', 'count=0', 'status=none']);
}

/** A private copy of a binary, out of the page cache. */
async function privateCopy(src: string, name: string): Promise<string> {
  const dst = path.join(bin, name.replace(/[^\w.-]+/g, '_'));
  copyFileSync(src, dst);
  await dropFromCache(dst);
  return dst;
}

async function nodeVersion(node: string): Promise<string> {
  return (await runOk(node, ['--version'])).stdout.trim();
}

const variants: Variant[] = [];
async function addLauncher(node: string): Promise<void> {
  const v = await nodeVersion(node);
  const copy = await privateCopy(node, `node-${v}-${variants.length}`);
  variants.push({ name: `launcher, node ${v}`, cmd: launcher, env: { NODE: copy }, size: statSync(node).size + statSync(bundle).size });
}
async function addExe(name: string, file: string): Promise<void> {
  const installed = standaloneAsInstalled(file, path.join(bin, `exe-${variants.length}`));
  await dropFromCache(installed.exe);
  variants.push({ name, cmd: installed.launcher, env: {}, size: statSync(file).size });
}
const extraExes = values.exe.map((e) => {
  const eq = e.lastIndexOf('='); // a name may hold flags (--x=1); a path seldom has '='
  if (eq < 1 || !existsSync(e.slice(eq + 1))) throw new Error(`--exe wants NAME=PATH of an executable, got '${e}'`);
  return { name: e.slice(0, eq), file: path.resolve(e.slice(eq + 1)) };
});
const hostNode = (await run('sh', ['-c', 'command -v node'])).stdout.trim();
if (!hostNode) throw new Error('no node on PATH: the launcher needs one');
mkdirSync(SANDBOX_BASE, { recursive: true });
const state = mkdtempSync(path.join(SANDBOX_BASE, 'bench-sea-'));
const bin = path.join(state, 'bin');
mkdirSync(bin);
const noConfig = path.join(state, 'no-config'); // an empty config dir: the built-in default job
mkdirSync(noConfig);

async function addVariants(): Promise<void> {
  await addLauncher(hostNode);
  for (const n of values.node) await addLauncher(path.resolve(n));
  await addExe('standalone executable', sea);
  for (const e of extraExes) await addExe(e.name, e.file);
}

/** ns on CPU so far, all threads; NaN once it is gone. */
const cpuNs = (pid: number): number => cpuNsOf(pid) ?? NaN;
function memory(pid: number) {
  const kb = statusOf(pid) ?? (() => NaN);
  return { rssKb: kb('VmRSS'), ownKb: kb('RssAnon') + kb('RssShmem'), fileKb: kb('RssFile'), hwmKb: kb('VmHWM'), threads: kb('Threads') };
}
const load1 = () => Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);

class Plugin {
  readonly child: ChildProcessWithoutNullStreams;
  readonly t0 = performance.now();
  /** ms from spawn to the first complete batch, and the CPU ms taken by then */
  first: { ms: number; cpuMs: number } | undefined;
  /** performance.now() when every Accept=yes bench socket had its connections chart */
  acceptsCharted: number | undefined;
  private readonly stream: PluginStream;
  private stderr = '';

  constructor(readonly v: Variant, bus: string, n: number, acceptSockets: number) {
    this.stream = new PluginStream(new Set(), isBenchUnit, n);
    this.stream.onFirstComplete = () => {
      this.first = { ms: performance.now() - this.t0, cpuMs: cpuNs(this.child.pid!) / 1e6 };
    };
    // What the agent gives its plugins that matters here: MALLOC_ARENA_MAX=1 (and no config file).
    const env = { PATH: process.env.PATH, DBUS_SYSTEM_BUS_ADDRESS: bus, MALLOC_ARENA_MAX: '1', LC_ALL: 'C', NETDATA_USER_CONFIG_DIR: noConfig, ...v.env };
    this.child = spawn(v.cmd, ['1'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    // Once every Accept=yes socket is charted the output is drained unread: parsing 20,000 lines a
    // second for every variant at once would load the machine the figures are taken on.
    // (one `…_connections` chart per charted socket, besides …_accepted_ and …_refused_connections)
    const charted = () => [...this.stream.charts.keys()].filter((c) => c.endsWith('_connections') && !/_(accepted|refused)_connections$/.test(c)).length;
    this.child.stdout.setEncoding('utf8').on('data', (d: string) => {
      if (this.acceptsCharted !== undefined) return;
      this.stream.push(d);
      if (this.first && charted() >= acceptSockets) this.acceptsCharted = performance.now();
    });
    this.child.stderr.setEncoding('utf8').on('data', (d: string) => { this.stderr = (this.stderr + d).slice(-4000); });
    this.child.stdin.on('error', () => {});
  }

  get pid(): number {
    return this.child.pid!;
  }

  async started(timeoutMs: number): Promise<{ ms: number; cpuMs: number }> {
    const until = performance.now() + timeoutMs;
    while (!this.first) {
      if (this.child.exitCode !== null || this.child.signalCode !== null) throw new Error(`${this.v.name} exited before its first complete batch:\n${this.stderr}`);
      if (performance.now() > until) throw new Error(`${this.v.name}: no complete batch after ${timeoutMs / 1000} s:\n${this.stderr}`);
      await sleep(20);
    }
    return this.first;
  }

  async acceptsDone(timeoutMs: number): Promise<number> {
    const until = performance.now() + timeoutMs;
    while (this.acceptsCharted === undefined) {
      if (this.child.exitCode !== null || this.child.signalCode !== null) throw new Error(`${this.v.name} exited before charting every Accept=yes socket:\n${this.stderr}`);
      if (performance.now() > until) throw new Error(`${this.v.name}: not every Accept=yes socket charted after ${timeoutMs / 1000} s:\n${this.stderr}`);
      await sleep(100);
    }
    return this.acceptsCharted;
  }

  stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return Promise.resolve();
    return new Promise((r) => { this.child.once('exit', () => r()); this.child.kill('SIGTERM'); });
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const vs = (x: number, base: number) => `${x >= base ? '+' : '−'}${Math.abs((x / base - 1) * 100).toFixed(0)} %`;
const rotate = <T,>(xs: T[], k: number) => xs.map((_, i) => xs[(i + k) % xs.length]!);

type Steady = { cpu: number[]; rss: number[]; own: number[]; file: number[]; hwm: number[]; threads: number };
/** One steady window for the variants in `group`, launched in that order; figures appended to `steady`. */
async function steadyRun(n: number, group: number[], steady: Steady[], loads: number[]): Promise<void> {
  // Launched one after the other, each once the one before has charted everything: six listing
  // 10,000 units at once on 2 busy cores made one time out on the bus and wait for its resync.
  const ps: Array<{ k: number; p: Plugin }> = [];
  try {
    for (const k of group) {
      const p = new Plugin(variants[k]!, sb!.busAddress, n, units!.mix.accept);
      live.add(p);
      ps.push({ k, p });
      await p.started(180_000);
      await p.acceptsDone(600_000);
    }
    const last = Math.max(...ps.map(({ p }) => Math.max(p.t0 + SETTLE * 1000, p.acceptsCharted! + 3000)));
    await sleep(Math.max(0, last - performance.now()));
    loads.push(load1());
    const a = ps.map(({ p }) => cpuNs(p.pid));
    const tA = performance.now();
    await sleep(SECONDS * 1000);
    const b = ps.map(({ p }) => cpuNs(p.pid));
    const tB = performance.now();
    loads.push(load1());
    for (const [i, { k, p }] of ps.entries()) {
      const m = memory(p.pid);
      const s = steady[k]!;
      s.cpu.push(((b[i]! - a[i]!) / 1e6 / (tB - tA)) * 100);
      s.rss.push(m.rssKb);
      s.own.push(m.ownKb);
      s.file.push(m.fileKb);
      s.hwm.push(m.hwmKb);
      s.threads = m.threads;
    }
  } finally {
    await Promise.all(ps.map(({ p }) => p.stop()));
    for (const { p } of ps) live.delete(p);
  }
}

let sb: Sandbox | undefined;
let units: BenchUnits | undefined;
const live = new Set<Plugin>();
const cleanup = async () => {
  await Promise.all([...live].map((p) => p.stop()));
  await sb?.stop().catch(() => undefined);
  rmSync(state, { recursive: true, force: true });
};
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => void cleanup().finally(() => process.exit(130)));

try {
  await addVariants();
  sb = await startSandbox(path.join(state, 'sandbox'));
  units = new BenchUnits(sb);
  if (units.fdLimit() < NS.at(-1)! + 1000) throw new Error(`the sandbox's PID 1 may open ${units.fdLimit()} files: too few for ${NS.at(-1)} sockets`);
  await units.install();
  say(`variants: ${variants.map((v) => v.name).join('; ')}`);
  say(`per N: ${STARTUPS} start-ups per variant, then ${RUNS} runs of ${SECONDS} s from ${SETTLE} s after launch (${NS.every((n) => n <= TOGETHER) ? 'the variants at once' : `the variants at once up to ${TOGETHER} units, else in turn`})`);
  const out: string[] = [];
  for (const n of NS) {
    const grown = await units.growTo(n, say);
    say(`N=${n}: bench sockets up in ${grown.toFixed(0)} s`);
    const startup = variants.map(() => ({ ms: [] as number[], cpuMs: [] as number[] }));
    for (let r = 0; r < STARTUPS; r++) {
      for (const k of rotate([...variants.keys()], r)) {
        const p = new Plugin(variants[k]!, sb.busAddress, n, units.mix.accept);
        live.add(p);
        const f = await p.started(180_000);
        await p.stop();
        live.delete(p);
        startup[k]!.ms.push(f.ms);
        startup[k]!.cpuMs.push(f.cpuMs);
      }
    }
    const steady: Steady[] = variants.map(() => ({ cpu: [], rss: [], own: [], file: [], hwm: [], threads: 0 }));
    const loads: number[] = [];
    // Up to --together units (default: always) every variant runs at once in each run: the same
    // minutes of the machine for all. In turn, a variant's 60 s window and the next one's saw
    // different loads: at 10,000 the standalone's steady CPU came out +26 %, −4 % and +15 % against
    // the launcher in three sittings, while side by side in one window (steady-cpu.mts, two copies
    // of each) the two were as far apart as two copies of the same one. Running them together used
    // to put one's start-up into another's window; no longer: they are launched one after the other
    // (steadyRun) and the window waits for every one's Accept reads.
    const together = n <= TOGETHER;
    for (let r = 0; r < RUNS; r++) {
      const order = rotate([...variants.keys()], r);
      for (const group of together ? [order] : order.map((k) => [k])) {
        say(`N=${n}: steady run ${r + 1} of ${RUNS}${together ? '' : `, ${variants[group[0]!]!.name}`}`);
        await steadyRun(n, group, steady, loads);
      }
    }
    const base = { ms: median(startup[0]!.ms), cpuMs: median(startup[0]!.cpuMs), cpu: median(steady[0]!.cpu), rss: median(steady[0]!.rss), own: median(steady[0]!.own) };
    out.push(`| variant, ${n.toLocaleString('en')} sockets + services | start-up | CPU to first batch | steady CPU | RSS | own (anon+shmem) | file-backed | peak RSS | threads |`);
    out.push('|---|---|---|---|---|---|---|---|---|');
    for (const [k, v] of variants.entries()) {
      const st = startup[k]!;
      const s = steady[k]!;
      const c = (x: number, b: number, text: string) => (k === 0 ? text : `${text} (${vs(x, b)})`);
      out.push(`| ${v.name} | ${c(median(st.ms), base.ms, `${median(st.ms).toFixed(0)} ms`)} | ${c(median(st.cpuMs), base.cpuMs, `${median(st.cpuMs).toFixed(0)} ms`)} | ` +
        `${c(median(s.cpu), base.cpu, `${median(s.cpu).toFixed(3)} %`)} | ${c(median(s.rss), base.rss, `${MB(median(s.rss)).toFixed(1)} MB`)} | ` +
        `${c(median(s.own), base.own, `${MB(median(s.own)).toFixed(1)} MB`)} | ${MB(median(s.file)).toFixed(1)} MB | ${MB(median(s.hwm)).toFixed(1)} MB | ${s.threads} |`);
    }
    out.push('', `load average (1 min) over the steady windows: ${Math.min(...loads).toFixed(2)}–${Math.max(...loads).toFixed(2)} (${os.cpus().length} cores); ` +
      `start-up: median of ${STARTUPS}; steady: median of ${RUNS} runs of ${SECONDS} s from ${SETTLE} s after launch (and ≥ 3 s after every Accept=yes socket is charted), ${together ? 'the variants at once' : 'one variant at a time'}; ` +
      // each run's figure too: a median of 3 hides how far a 60 s window swings
      `steady CPU run by run: ${variants.map((v, k) => `${v.name} ${steady[k]!.cpu.map((x) => x.toFixed(3)).join(', ')} %`).join('; ')}`, '');
    console.error(out.slice(-variants.length - 5).join('\n'));
  }
  out.push('| variant | on disk |', '|---|---|');
  for (const v of variants) out.push(`| ${v.name} | ${MB(v.size / 1024).toFixed(1)} MB${v.cmd === launcher ? ' (node + bundle)' : ''} |`);
  console.log(out.join('\n'));
} finally {
  await cleanup();
}
