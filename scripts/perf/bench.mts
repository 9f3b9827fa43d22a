// Benchmark of issues 4 and 14: systemdunits.plugin against a floor program, node_exporter's systemd
// collector and systemctl, on one real systemd, at several N, in one sitting. Started by
// scripts/perf/bench.sh (installs the peers, builds the plugin, passes --state); see there for options.
//
// One sandbox; for each N in ascending order it grows the bench sockets to N (scripts/perf/bench/units.mts:
// N sockets and, loaded with them, about as many services), then, one tool at a time:
//   idle        no tool: systemd and dbus-daemon CPU per second (subtracted from every window below)
//   default     the plugin with the default job (every unit type: the bench sockets AND their services;
//               socket activity at its defaults), update_every 1, as the agent runs it:
//                 start-up   exec → first complete batch (every bench socket and service charted)
//                 steady     a window from WARM s after exec (V8's memory reducer compacts ~10 s after
//                            launch), S s long: plugin CPU (per-thread schedstat, ns), own memory
//                            (RssAnon+RssShmem), RSS, VmHWM, systemd + dbus-daemon CPU; one tick of
//                            its stdout is kept for the floor program
//                 latency    f@flip.socket failed K times at random phases: its StateChangeTimestamp
//                            → arrival of `SET f@flip.socket = 5` on the plugin's stdout
//                 reload     (N ≤ 2,000, or --reload) systemctl daemon-reload: the plugin's CPU for
//                            the resync that follows, against one listing (the safety resync)
//   states      the same job with socket_activity: false; beside it, over the same window, floor.mjs
//               writing that tick once a second and an idle node waking once a second
//   resync      the default job with SYSTEMDUNITS_RESYNC_EVERY=R: the plugin's CPU for each safety
//               resync (no daemon-reload: systemd's reload is ~N² over template instances), own memory
//               before the first and SETTLE_S after each
//   standalone  the default job on dist/release/systemdunits.plugin, when it exists, as installed: through
//               the launcher beside it (its malloc settings; bench/tools.mts standaloneAsInstalled)
//   node_exporter  only its systemd collector, the bench sockets only: per scrape wall, CPU, RSS,
//               systemd + dbus-daemon CPU; ×4 for a 15 s scrape interval
//   systemctl   systemctl list-units --type=socket --all as an unprivileged user (over dbus-daemon)
//   check_systemd  one run as root (it uses systemctl's private socket), when installed
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startSandbox, type Sandbox } from '../../harness/sandbox.js';
import { repoRoot, run } from '../../harness/run.js';
import { CLK_TCK, childNamed, cpuNsOf, loadAvg, median, rssOf, sleep } from './bench/proc.mjs';
import {
  buildRows, fmt, measured, GROWTH_TOLERANCE_MB, SETTLE_S, headerLines, renderMarkdown, renderText,
  type ExecFigures, type FloorFigures, type Measured, type NeFigures, type NotMeasured, type PerN, type PluginFigures, type ResyncFigures, type RunInfo, type Window,
} from './bench/report.mjs';
import { CHECK_SYSTEMD, FloorProc, NODE_EXPORTER, NodeExporter, PluginProc, SandboxExec, standaloneAsInstalled } from './bench/tools.mjs';
import { firstAndLater, resyncCpu, windowOf } from './bench/resync-cpu.mjs';
import { BenchUnits, FLIP_UNIT, NODE_EXPORTER_INCLUDE, isBenchService, isBenchUnit, isBenchUnitOrService } from './bench/units.mjs';
import { wholeOption } from './bench/options.mjs';

// ---- options ----------------------------------------------------------------------------------
const USAGE = `usage: bash scripts/perf/bench.sh [--n LIST] [--quick] [--json FILE] [--markdown] [more options]
  --n LIST        socket counts, comma-separated (default 100,1000,10000: ~25 min; --quick 100,1000: ~6 min)
  --warm W        steady windows start W s after the plugin's exec (default 15; --quick 5)
  --seconds S     steady window length (default 60; --quick 10)
  --flips K       failures timed per run (default 20; --quick 10)
  --scrapes K     node_exporter scrapes per N (default 3; --quick 1)
  --baseline S    idle window per N (default 10; --quick 5)
  --resync-every R  SYSTEMDUNITS_RESYNC_EVERY in the resync run, at least (default 20; --quick 15; longer where the
                  start-up's reading of every socket takes longer: ~70 at 10,000)
  --resyncs K     safety resyncs timed per N (default 4: the first, and 3 after it; --quick 2)
  --reload        force a daemon-reload at every N (default: only N <= 2,000; minutes at 10,000)
  --no-standalone skip the standalone executable's run even if dist/release/systemdunits.plugin exists
  --json FILE     also write every figure as JSON
  --markdown      print the table as markdown (for the README's Performance section)`;
const { values: argv } = parseArgs({
  options: {
    n: { type: 'string' },
    warm: { type: 'string' },
    seconds: { type: 'string' },
    flips: { type: 'string' },
    scrapes: { type: 'string' },
    baseline: { type: 'string' },
    'resync-every': { type: 'string' },
    resyncs: { type: 'string' },
    reload: { type: 'boolean', default: false },
    'no-standalone': { type: 'boolean', default: false },
    quick: { type: 'boolean', default: false },
    json: { type: 'string' },
    markdown: { type: 'boolean', default: false },
    state: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
});
if (argv.help) {
  console.log(USAGE);
  process.exit(0);
}
const int = (v: string | undefined, dflt: number, name: string, min = 1, max = Infinity): number =>
  v === undefined ? dflt : wholeOption(v, name, min, max);
const quick = argv.quick!;
const NS = (argv.n ?? (quick ? '100,1000' : '100,1000,10000')).split(',').map((x) => int(x.trim(), 0, 'n', 10)).sort((a, b) => a - b);
const WARM = int(argv.warm, quick ? 5 : 15, 'warm', 3);
const S = int(argv.seconds, quick ? 10 : 60, 'seconds', 5);
const FLIPS = int(argv.flips, quick ? 10 : 20, 'flips');
const SCRAPES = int(argv.scrapes, quick ? 1 : 3, 'scrapes');
const B = int(argv.baseline, quick ? 5 : 10, 'baseline', 2);
// The contract of SYSTEMDUNITS_RESYNC_EVERY: 5..3600 s. Above SETTLE_S, so that memory can be read
// after each resync before the next.
const RESYNC_EVERY = int(argv['resync-every'], quick ? 15 : 20, 'resync-every', SETTLE_S + 2, 3600);
const RESYNCS = int(argv.resyncs, quick ? 2 : 4, 'resyncs', 1, 20);
const RELOAD_MAX_N = 2000;
/**
 * The resync run's interval: the first safety resync must come after the start-up's work is over,
 * which with socket activity on is reading every socket's Accept (~50 s at 10,000 here): so past
 * the default job's time to chart every Accept=yes socket at this N, with a margin.
 */
const resyncEvery = (activityS: number | undefined) => Math.min(3600, Math.max(RESYNC_EVERY, Math.ceil((activityS ?? 0) * 1.2) + 10));
const TICK_MS = 1000 / CLK_TCK;
const STANDALONE = path.join(repoRoot, 'dist/release/systemdunits.plugin');
const standalone = argv['no-standalone'] ? 'skipped (--no-standalone)' : existsSync(STANDALONE) ? undefined : 'dist/release/systemdunits.plugin absent (npm run release builds it)';

const t0 = performance.now();
const clock = () => {
  const s = Math.round((performance.now() - t0) / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
};
const say = (msg: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)} +${clock()}] ${msg}\n`);
// ---- cleanup: everything this process starts is registered here, undone in reverse -------------
const cleanups: Array<() => Promise<unknown> | unknown> = [];
let cleaning: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const c of cleanups.reverse()) {
      try {
        await c();
      } catch (e) {
        say(`cleanup: ${(e as Error).message}`);
      }
    }
  })();
  return cleaning;
}
for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]] as const) {
  process.on(sig, () => {
    say(`${sig}: cleaning up`);
    void cleanup().finally(() => process.exit(code));
  });
}
/** Runs fn with `stop` registered for a Ctrl-C meanwhile, then stops. */
async function using<T extends { stop(): unknown }, R>(thing: T, fn: (t: T) => Promise<R>): Promise<R> {
  const stop = () => thing.stop();
  cleanups.push(stop);
  try {
    return await fn(thing);
  } finally {
    await stop();
    const i = cleanups.indexOf(stop);
    if (i >= 0) cleanups.splice(i, 1);
  }
}

let stateDir = argv.state;
if (!stateDir) {
  mkdirSync(path.join(repoRoot, '.sandbox'), { recursive: true });
  const dir = (stateDir = mkdtempSync(path.join(repoRoot, '.sandbox', 'bench-')));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
}
const pidFile = path.join(stateDir, 'pids');

// ---- time estimate (rough, from runs on the 2-core test machine) --------------------------------
/** systemd 252's daemon-reload over N instances of a few templates: ~2 s at 1,000, ~N² beyond */
const reloadEstimateS = (n: number) => 2e-6 * n * n + 0.5;
const reloads = (n: number) => argv.reload || n <= RELOAD_MAX_N;
function estimateS(n: number, newUnits: number): number {
  const flips = FLIPS * 1.8;
  const activity = 2 + n * 0.005; // reading every socket's Accept at start
  const dflt = Math.max(WARM, activity + 3) + S + flips + (reloads(n) ? reloadEstimateS(n) + SETTLE_S + 4 : 0) + 3;
  const states = WARM + S + 3; // no flips: latency is the default job's
  const resync = 1 + n * 0.0001 + RESYNCS * (resyncEvery(activity) + 1) + SETTLE_S + 2;
  const alone = standalone ? 0 : WARM + S + 3;
  return 3 + newUnits * 0.002 + B + dflt + states + resync + alone + SCRAPES * (2.5 + n * 0.0012) + 4 + 3 + 2 * (0.5 + n * 0.0003);
}
const estimates = NS.map((n, i) => estimateS(n, n - (i ? NS[i - 1]! : 0)));
const remainingMin = (from: number) => (estimates.slice(from).reduce((a, b) => a + b, 0) / 60).toFixed(0);

// ---- measurement -------------------------------------------------------------------------------
interface Bus {
  t: number;
  /** CPU so far, s (schedstat) */
  systemd: number;
  dbus: number;
}

const cpuS = (pid: number): number => {
  const ns = cpuNsOf(pid);
  if (ns === undefined) throw new Error(`process ${pid} is gone`);
  return ns / 1e9;
};
const mb = (kb: number | undefined) => (kb === undefined || !Number.isFinite(kb) ? undefined : kb / 1024);
const medianMb = (kbs: number[]) => mb(median(kbs));

/** The plugin's CPU every 100 ms and its memory every second, to time what happens between (a resync). */
class Trace {
  readonly cpu: Array<{ t: number; s: number }> = [];
  readonly mem: Array<{ t: number; ownKb: number; rssKb: number }> = [];
  private readonly timer: NodeJS.Timeout;
  private ticks = 0;

  constructor(private readonly pid: number) {
    this.timer = setInterval(() => this.sample(), 100);
    this.sample();
  }

  private sample(): void {
    const ns = cpuNsOf(this.pid);
    const t = performance.now();
    if (ns !== undefined) this.cpu.push({ t, s: ns / 1e9 });
    if (this.ticks++ % 10 === 0) {
      const m = rssOf(this.pid);
      if (m) this.mem.push({ t, ownKb: m.ownKb, rssKb: m.rssKb });
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

async function main(): Promise<void> {
  const loadStart = loadAvg();
  say(`N = ${NS.join(', ')}; windows from ${WARM} s after exec, ${S} s long; ${FLIPS} flips, ${SCRAPES} scrapes, idle ${B} s per N; ` +
    `resync every ≥ ${RESYNC_EVERY} s ×${RESYNCS}; standalone: ${standalone ?? 'yes'}; estimated ~${remainingMin(0)} min; load ${loadStart}`);
  if (WARM < 15 || S < 60) say(`${quick ? 'quick: ' : ''}not the issue's windows (≥ 15 s after launch, ≥ 60 s long)`);

  const sbDir = path.join(stateDir!, 'sandbox');
  let sandbox: Sandbox | undefined;
  const starting = startSandbox(sbDir);
  cleanups.push(async () => {
    const sb = sandbox ?? (await starting.catch(() => undefined)); // a Ctrl-C during the boot
    if (sb) await sb.stop();
    else await run('bash', [path.join(repoRoot, 'scripts/sandbox/systemd-sandbox.sh'), 'stop', sbDir]);
  });
  sandbox = await starting;
  const sb = sandbox;
  const dbusPid = childNamed(sb.pid, 'dbus-daemon');
  if (!dbusPid) throw new Error('no dbus-daemon in the sandbox');
  const units = new BenchUnits(sb);
  await units.install();
  const noFile = units.fdLimit();
  say(`systemd sandbox up (pid ${sb.pid}, dbus-daemon ${dbusPid}); PID 1's fd limit ${noFile}`);
  // one fd per listening socket, plus the ~100 systemd needs for itself
  if (NS.at(-1)! + 200 > noFile) throw new Error(`PID 1's fd limit (${noFile}) is too low for ${NS.at(-1)} sockets`);

  const bus = (): Bus => ({ t: performance.now(), systemd: cpuS(sb.pid), dbus: cpuS(dbusPid) });
  let idleRate = 0; // systemd + dbus-daemon CPU s per s, no tool running
  /** systemd + dbus-daemon CPU between two snapshots, minus the idle rate, ms */
  const busCostMs = (a: Bus, z: Bus): Measured => ({
    value: Math.max(0, (z.systemd - a.systemd + z.dbus - a.dbus - idleRate * ((z.t - a.t) / 1000)) * 1000),
  });

  const sh = (...cmd: string[]) => execFileSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8' }).trim();
  const dirty = (() => {
    try {
      return sh('git', '-C', repoRoot, 'status', '--porcelain', '--untracked-files=no') !== '';
    } catch {
      return false;
    }
  })();
  const info: Omit<RunInfo, 'loadEnd' | 'durationS'> = {
    date: new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC',
    commit: (() => {
      try {
        return sh('git', '-C', repoRoot, 'rev-parse', '--short', 'HEAD') + (dirty ? ' + uncommitted changes' : '');
      } catch {
        return '?';
      }
    })(),
    cpus: `${os.cpus().length} × ${os.cpus()[0]?.model.trim() ?? '?'}`,
    kernel: os.release(),
    systemd: (await sb.exec('systemctl', '--version')).stdout.split('\n')[0] ?? '?',
    node: process.version,
    nodeExporter: (await run(NODE_EXPORTER, ['--version']).then((r) => r.stdout + r.stderr)).split('\n')[0]?.replace(/^node_exporter, version (\S+).*/, 'node_exporter $1') ?? '?',
    checkSystemd: existsSync(CHECK_SYSTEMD) ? (await run('/usr/bin/python3', [CHECK_SYSTEMD, '--version'])).stdout.trim() : 'check_systemd not installed',
    pid1NoFile: noFile,
    loadStart,
    seconds: S,
    warmS: WARM,
    resyncEveryS: RESYNC_EVERY,
    flips: FLIPS,
    scrapes: SCRAPES,
    quick,
  };

  const configFor = (job: 'default' | 'states') => {
    const file = path.join(stateDir!, `${job}.conf`);
    // The default job as a user has it: no jobs key at all (every unit type, so the bench sockets
    // and their services, ~2N dimensions; socket activity at its defaults). States only: the same
    // include, socket activity off.
    writeFileSync(file, job === 'default' ? 'update_every: 1\n' : 'update_every: 1\njobs:\n  - name: states\n    socket_activity: false\n');
    return file;
  };

  const results: PerN[] = [];
  /** odd things seen on the way, printed under the table */
  const problems: string[] = [];

  /** Dimensions of bench sockets, of their services, and of everything, over every chart defined. */
  const dimsOf = (p: PluginProc) => {
    const d = { sockets: 0, services: 0, total: 0 };
    for (const dims of p.stream.charts.values()) {
      for (const name of dims.values()) {
        d.total++;
        if (isBenchUnit(name)) d.sockets++;
        else if (isBenchService(name)) d.services++;
      }
    }
    return d;
  };

  /** Sleeps until performance.now() reaches `at` (ms). */
  const until = (at: number) => sleep(Math.max(0, at - performance.now()));

  interface RunOpts {
    label: string;
    job: 'default' | 'states';
    exe?: string;
    flips?: boolean;
    /** keep one tick of stdout (for the floor program) */
    capture?: boolean;
    reload?: boolean;
    /** run floor.mjs with this batch, and an idle node, over the same window */
    floorBatch?: string;
  }
  interface RunOut {
    fig: PluginFigures | NotMeasured;
    tick?: string;
    floor?: FloorFigures;
  }

  async function measurePlugin(n: number, expected: number, o: RunOpts): Promise<RunOut> {
    const p = new PluginProc({ bus: sb.busAddress, configFile: configFor(o.job), pidFile, watched: new Set([FLIP_UNIT]), isBenchUnit: isBenchUnitOrService, units: expected, exe: o.exe });
    // the floor programs start with the plugin, so that the one window is as far from each launch
    const floors = o.floorBatch === undefined ? [] : [new FloorProc({ batchFile: o.floorBatch, pidFile }), new FloorProc({ batchFile: undefined, pidFile })];
    const stopFloors = () => Promise.all(floors.map((f) => f.stop()));
    if (floors.length) cleanups.push(stopFloors);
    try {
      return await using(p, async (): Promise<RunOut> => {
        say(`N=${n} ${o.label}: start-up${floors.length ? ' (with floor.mjs and an idle node beside it)' : ''}`);
        await p.waitFor('the first complete batch', () => p.stream.firstCompleteUs, 180_000);
        const startupMs = (p.stream.firstCompleteUs! - p.execUs) / 1000;
        if (o.job === 'default') {
          const refused = p.messages.filter((l) => l.includes('socket_activity') && /ignored|unknown|not supported|skipped|invalid|must/i.test(l));
          if (refused.length) {
            say(`  the plugin does not take the socket counter keys: ${refused.join(' | ')}`);
            return { fig: { notMeasured: `the plugin ignored or rejected socket_activity ("${refused[0]!.replace(/^systemdunits\.plugin: \S+: /, '')}")` } };
          }
        }
        say(`  first complete batch after ${startupMs.toFixed(0)} ms (${expected} bench sockets and services)`);
        // Socket activity: first every socket's Accept is read (once, in the background), then the
        // Accept=yes ones are read in turns; the window starts once every one of them has its charts.
        let activity: PluginFigures['activity'];
        let windowAt = p.execMs + WARM * 1000;
        if (o.job === 'default') {
          const want = units.mix.accept;
          // one `…_connections` chart per charted socket (besides …_accepted_ and …_refused_connections)
          const charted = () => [...p.stream.charts.keys()].filter((c) => c.endsWith('_connections') && !/_(accepted|refused)_connections$/.test(c)).length;
          const cpu0 = cpuS(p.pid);
          const t0 = performance.now();
          const done = await p.waitFor('every Accept=yes socket charted', () => (charted() >= want ? true : undefined), 600_000).then(() => true, () => false);
          activity = { wallS: (performance.now() - t0) / 1000 + startupMs / 1000, cpuMs: { value: (cpuS(p.pid) - cpu0) * 1000 }, complete: done, charted: charted() };
          say(`  ${activity.charted} of ${want} Accept=yes sockets charted after ${activity.wallS.toFixed(1)} s from exec (plugin CPU ${activity.cpuMs.value.toFixed(0)} ms since the first batch)`);
          windowAt = Math.max(windowAt, performance.now() + 3000);
        }
        await until(windowAt);

        // steady
        say(`  steady ${S} s from ${((performance.now() - p.execMs) / 1000).toFixed(1)} s after exec`);
        const la0 = loadAvg();
        const c0 = cpuS(p.pid);
        const f0 = floors.map((f) => cpuS(f.pid));
        const fs0 = floors[0]?.stream.setLines ?? 0;
        const b0 = bus();
        const sets0 = p.stream.setLines;
        const bytes0 = p.stream.bytes;
        const startS = (b0.t - p.execMs) / 1000;
        const rss: number[] = [];
        const own: number[] = [];
        const capturing = o.capture ? p.captureTick() : undefined;
        const perSecond: Array<{ sets: number; batches: number; cpuMs: number }> = [];
        let last = { sets: sets0, batches: p.stream.batches, cpu: c0 };
        for (let i = 0; i < S; i++) {
          await until(b0.t + (i + 1) * 1000);
          const r = rssOf(p.pid);
          if (r) rss.push(r.rssKb), own.push(r.ownKb);
          const now = { sets: p.stream.setLines, batches: p.stream.batches, cpu: cpuS(p.pid) };
          perSecond.push({ sets: now.sets - last.sets, batches: now.batches - last.batches, cpuMs: (now.cpu - last.cpu) * 1000 });
          last = now;
        }
        const b1 = bus();
        const c1 = cpuS(p.pid);
        const sets1 = p.stream.setLines;
        const bytes1 = p.stream.bytes;
        const f1 = floors.map((f) => cpuS(f.pid));
        const secs = (b1.t - b0.t) / 1000;
        const window: Window = { startS, seconds: secs, loadAvg: [la0, loadAvg()] };
        const cpuRate = (c1 - c0) / secs;
        const tick = await capturing;
        const peakMb = mb(rssOf(p.pid)?.hwmKb);
        let floor: FloorFigures | undefined;
        if (floors.length) {
          const batch = o.floorBatch!;
          const text = readFileSync(batch, 'utf8');
          floor = {
            window,
            batchBytes: Buffer.byteLength(text),
            batchSetLines: text.split('\n').filter((l) => l.startsWith('SET ')).length,
            setLinesPerS: ((floors[0]!.stream.setLines - fs0) / secs),
            floorCpuPct: { value: ((f1[0]! - f0[0]!) / secs) * 100 },
            idleCpuPct: { value: ((f1[1]! - f0[1]!) / secs) * 100 },
            floorOwnMb: mb(rssOf(floors[0]!.pid)?.ownKb),
            idleOwnMb: mb(rssOf(floors[1]!.pid)?.ownKb),
          };
          await stopFloors();
          say(`  floor.mjs ${floor.floorCpuPct.value.toFixed(3)}%, idle node ${floor.idleCpuPct.value.toFixed(3)}% of a core`);
        }

        // detection latency
        let latencyMs: number[] | undefined;
        let missed = 0;
        if (o.flips) {
          say(`  ${FLIPS} flips of ${FLIP_UNIT}`);
          latencyMs = [];
          for (let k = 0; k < FLIPS; k++) {
            await sleep(Math.random() * 1000); // a random phase against the plugin's tick
            const { issuedUs, changedUs } = await units.fail();
            const seen = await p.waitFor('SET … = 5', () => p.stream.changeTo(FLIP_UNIT, 5, issuedUs), 10_000).catch(() => undefined);
            if (seen) latencyMs.push((seen.atUs - changedUs) / 1000);
            else missed++;
            const back = Math.round((performance.timeOrigin + performance.now()) * 1000);
            await units.recover();
            await p.waitFor('SET … = 1', () => p.stream.changeTo(FLIP_UNIT, 1, back), 10_000).catch(() => undefined);
            if ((k + 1) % 5 === 0) say(`    ${k + 1}/${FLIPS}: median ${median(latencyMs)?.toFixed(0)} ms so far${missed ? `, ${missed} missed` : ''}`);
          }
        }

        // resync forced by a daemon-reload: systemd's reload itself grows with N² here (~2 s at
        // 1,000 instances, minutes at 10,000, with or without a client), hence only where asked.
        let reload: PluginFigures['reload'];
        if (o.reload) {
          await sleep(1500);
          say(`  daemon-reload (~${Math.ceil(reloadEstimateS(n))} s at this N)`);
          const before = p.resyncs.length;
          const r0 = cpuS(p.pid);
          const rb0 = bus();
          // busctl rather than systemctl: systemctl gives up after 180 s, the reload goes on
          const rl = await run('bash', [path.join(repoRoot, 'scripts/sandbox/systemd-sandbox.sh'), 'exec', sb.dir, 'busctl', 'call', '--timeout=1200',
            'org.freedesktop.systemd1', '/org/freedesktop/systemd1', 'org.freedesktop.systemd1.Manager', 'Reload'], { timeoutMs: 1_300_000 });
          const rb1 = bus();
          const reloadMs = rb1.t - rb0.t;
          if (rl.code === 0) {
            // Once systemd has reloaded, a resync is a listing and a few lookups: seconds.
            const done = await p.waitFor('the resync after daemon-reload', () => p.resyncs[before], 120_000).catch(() => undefined);
            if (!done) {
              const tail = p.stderr.trim().split('\n').slice(-6).join('\n    ');
              say(`  WARNING: no "resync:" line from the plugin within 120 s of the reload; reload figures left out. Its stderr ends:\n    ${tail}`);
              problems.push(`N=${fmt(n)} ${o.label}: the plugin reported no resync within 120 s after the daemon-reload returned (${(reloadMs / 1000).toFixed(0)} s); its stderr ended: ${tail.replace(/\n\s*/g, ' | ')}`);
            } else {
              await until(done.atMs + 2500); // and the GC the plugin runs after a listing
              const r1 = cpuS(p.pid);
              const el = (performance.now() - rb0.t) / 1000;
              const pluginCpuMs = Math.max(0, (r1 - r0 - cpuRate * el) * 1000);
              await until(done.atMs + SETTLE_S * 1000);
              const m = rssOf(p.pid);
              reload = { reloadMs, reloadBusCpuS: busCostMs(rb0, rb1).value / 1000, pluginCpuMs, pluginReportedMs: done.listedMs + done.completedMs, ownAfterMb: mb(m?.ownKb), rssAfterMb: mb(m?.rssKb), peakAfterMb: mb(m?.hwmKb) };
              say(`  daemon-reload took ${(reloadMs / 1000).toFixed(1)} s (systemd+dbus ${reload.reloadBusCpuS.toFixed(1)} s CPU); plugin resync ${reload.pluginReportedMs} ms, CPU ${pluginCpuMs.toFixed(0)} ms`);
            }
          } else say(`  daemon-reload failed: ${rl.stderr.trim()}`);
        }

        const fig: PluginFigures = {
          startupMs,
          startupCpuMs: p.atFirst?.cpuS === undefined ? undefined : { value: p.atFirst.cpuS * 1000 },
          activity,
          window,
          cpuPct: { value: cpuRate * 100 },
          setLinesPerS: (sets1 - sets0) / secs,
          bytesPerS: (bytes1 - bytes0) / secs,
          dims: dimsOf(p),
          rssFirstMb: mb(p.atFirst?.rss?.rssKb),
          ownFirstMb: mb(p.atFirst?.rss?.ownKb),
          rssSteadyMb: medianMb(rss),
          ownSteadyMb: medianMb(own),
          rssPeakMb: peakMb,
          latencyMs,
          latencyMissed: missed,
          reload,
          busCostMsPerMin: { value: (busCostMs(b0, b1).value * 60) / secs },
          perSecond,
          charts: [...p.stream.charts.keys()],
          stray: p.stream.strayLines,
        };
        say(`  CPU ${fig.cpuPct.value.toFixed(3)}% of a core; own ${fig.ownSteadyMb?.toFixed(1)} MB, RSS ${fig.rssSteadyMb?.toFixed(1)} MB, peak ${fig.rssPeakMb?.toFixed(1)} MB; ` +
          `dims ${fig.dims.sockets}+${fig.dims.services}/${fig.dims.total}; systemd+dbus ${fig.busCostMsPerMin.value.toFixed(0)} ms/min; ${fig.setLinesPerS.toFixed(0)} SET lines/s` +
          (latencyMs ? `; latency median ${median(latencyMs)?.toFixed(0)} ms` : ''));
        if (fig.dims.sockets < n || fig.dims.services < expected - n) {
          problems.push(`N=${fmt(n)} ${o.label}: ${fig.dims.sockets} bench sockets and ${fig.dims.services} services charted, not ${n} and ${expected - n}`);
        }
        const usual = median(perSecond.map((x) => x.sets)) ?? 0;
        const odd = perSecond.map((x, i) => ({ ...x, i })).filter((x) => x.sets > usual * 1.5);
        if (odd.length) say(`  seconds of the window with more SET lines than usual (${usual}): ${odd.map((x) => `+${x.i + 1}s: ${x.sets} SET, ${x.batches} batches, ${x.cpuMs.toFixed(1)} ms`).join('; ')}`);
        if (fig.stray.length) say(`  WARNING: lines the agent would reject: ${fig.stray.join(' | ')}`);
        return { fig, tick, floor };
      });
    } finally {
      await stopFloors();
      const i = cleanups.indexOf(stopFloors);
      if (i >= 0) cleanups.splice(i, 1);
    }
  }

  /** The safety resync, made frequent: no daemon-reload (systemd's is ~N² over template instances). */
  async function measureResync(n: number, expected: number, activityS: number | undefined): Promise<ResyncFigures | NotMeasured> {
    const every = resyncEvery(activityS);
    const p = new PluginProc({
      bus: sb.busAddress, configFile: configFor('default'), pidFile, watched: new Set(), isBenchUnit: isBenchUnitOrService, units: expected,
      env: { SYSTEMDUNITS_RESYNC_EVERY: String(every) },
    });
    return using(p, async () => {
      const trace = new Trace(p.pid);
      try {
        say(`N=${n} safety resync: SYSTEMDUNITS_RESYNC_EVERY=${every}, ${RESYNCS} resyncs`);
        await p.waitFor('the first complete batch', () => p.stream.firstCompleteUs, 180_000);
        // the start-up's listing writes the first resync line; the safety resyncs are the ones after it
        await p.waitFor('the start-up listing\'s resync line', () => p.resyncs[0], 30_000);
        const seen: Array<PluginProc['resyncs'][number]> = [];
        for (let k = 1; k <= RESYNCS; k++) {
          const prev = p.resyncs[k - 1]!;
          const r = await p.waitFor(`safety resync ${k}`, () => p.resyncs[k], every * 1000 + 30_000 - (performance.now() - prev.atMs)).catch(() => undefined);
          if (!r) {
            if (k === 1) return { notMeasured: `the plugin ignores SYSTEMDUNITS_RESYNC_EVERY (no resync within ${every + 30} s of the start-up's listing)` };
            problems.push(`N=${fmt(n)} safety resync: only ${k - 1} of ${RESYNCS} resyncs came`);
            break;
          }
          seen.push(r);
          say(`  resync ${k}: ${r.units} units, listed in ${r.listedMs} ms, completed in ${r.completedMs} ms`);
          await until(r.atMs + SETTLE_S * 1000);
        }
        trace.stop();
        // Each resync's window and the rate subtracted: see bench/resync-cpu.mts (memory.mts times
        // its resyncs the same way). "before": the last seconds before the first resync (the
        // start-up's work is over by then).
        const first = windowOf(seen[0]!)[0];
        const from = Math.max(p.execMs + SETTLE_S * 1000, first - 6000);
        const { cpuMs, rate } = resyncCpu(trace.cpu.map((c) => ({ t: c.t, ms: c.s * 1000 })), seen, from);
        const before = trace.mem.filter((m) => m.t >= from && m.t < first);
        const after = seen.map((r) => trace.mem.filter((m) => m.t >= r.atMs + SETTLE_S * 1000 - 1000).at(0) ?? trace.mem.at(-1)!);
        const fig: ResyncFigures = {
          everyS: every,
          units: seen.at(-1)!.units,
          cpuMs,
          reportedMs: seen.map((r) => r.listedMs + r.completedMs),
          ownBeforeMb: medianMb(before.map((m) => m.ownKb)),
          ownAfterMb: after.map((m) => m.ownKb / 1024),
          rssBeforeMb: medianMb(before.map((m) => m.rssKb)),
          rssAfterMb: after.map((m) => m.rssKb / 1024),
          peakMb: mb(rssOf(p.pid)?.hwmKb),
        };
        say(`  resync CPU ${cpuMs.map((c) => c.toFixed(0)).join(', ')} ms: ${firstAndLater(cpuMs)} (rate between them ${(rate * 100).toFixed(3)}%); own memory ${fig.ownBeforeMb?.toFixed(1)} → ${fig.ownAfterMb.map((v) => v.toFixed(1)).join(', ')} MB`);
        return fig;
      } finally {
        trace.stop();
      }
    });
  }

  async function measureNodeExporter(n: number): Promise<NeFigures> {
    say(`N=${n} node_exporter: ${SCRAPES} scrapes`);
    const ne = await NodeExporter.start({ bus: sb.busAddress, logFile: path.join(stateDir!, 'node_exporter.log'), pidFile, include: NODE_EXPORTER_INCLUDE, isBenchUnit });
    return using(ne, async () => {
      const fig: NeFigures = { scrapes: 0, errors: 0, lastError: '', wallMs: [], cpuMs: [], busCostMs: [], rssMb: undefined, rssPeakMb: undefined, unitsSeen: 0, failedSeen: 0 };
      await sleep(500);
      for (let k = 0; k < SCRAPES; k++) {
        const b0 = bus();
        const c0 = cpuS(ne.pid);
        const s = await ne.scrape();
        const c1 = cpuS(ne.pid);
        const b1 = bus();
        if (s) {
          fig.scrapes++;
          fig.wallMs.push(s.wallMs);
          fig.cpuMs.push({ value: (c1 - c0) * 1000 });
          fig.busCostMs.push(busCostMs(b0, b1));
          fig.unitsSeen = s.units;
          fig.failedSeen = s.failed;
          say(`  scrape ${k + 1}: ${s.wallMs.toFixed(0)} ms, CPU ${((c1 - c0) * 1000).toFixed(0)} ms, systemd+dbus ${busCostMs(b0, b1).value.toFixed(0)} ms, ${s.units} sockets`);
        }
        await sleep(1000);
      }
      const r = rssOf(ne.pid);
      fig.rssMb = r && r.rssKb / 1024;
      fig.rssPeakMb = r && r.hwmKb / 1024;
      fig.errors = ne.errors;
      fig.lastError = ne.lastError;
      if (ne.errors) say(`  WARNING: ${ne.errors} scrape errors: ${ne.lastError}`);
      return fig;
    });
  }

  const ex = new SandboxExec(sb.dir);
  cleanups.push(() => ex.stop());
  async function measureExec(what: string, argv: string[], runs: number, ok: (rc: number, out: string) => boolean): Promise<ExecFigures> {
    // the way in (bash, nsenter, the timing shell) is measured alone and its CPU subtracted
    const base = [];
    for (let i = 0; i < 3; i++) base.push(await ex.run(['true']));
    const baseCpu = median(base.map((b) => b.cpuS))!;
    const fig: ExecFigures = { runs: 0, wallMs: [], cpuMs: [], busCostMs: [], maxRssMb: 0 };
    for (let k = 0; k < runs; k++) {
      const b0 = bus();
      const r = await ex.run(argv);
      const b1 = bus();
      if (!ok(r.rc, r.output)) throw new Error(`${what} failed (rc ${r.rc}): ${r.output.slice(0, 300)}`);
      fig.runs++;
      fig.wallMs.push(r.wallMs);
      fig.cpuMs.push(Math.max(0, (r.cpuS - baseCpu) * 1000));
      fig.busCostMs.push(busCostMs(b0, b1));
      fig.maxRssMb = Math.max(fig.maxRssMb, r.maxRssKb / 1024);
      await sleep(300);
    }
    return fig;
  }

  for (const [i, n] of NS.entries()) {
    const la0 = loadAvg();
    say(`N=${n} (${i + 1}/${NS.length}), ~${remainingMin(i)} min left: starting ${n - (i ? NS[i - 1]! : 0)} more sockets`);
    const growS = await units.growTo(n, say);
    const services = await units.services();
    const expected = n + services;
    say(`  ${n} bench sockets up in ${growS.toFixed(1)} s; ${services} of their services loaded`);
    await sleep(2000);

    say(`N=${n} idle ${B} s`);
    const i0 = bus();
    await sleep(B * 1000);
    const i1 = bus();
    const idleS = (i1.t - i0.t) / 1000;
    idleRate = (i1.systemd - i0.systemd + i1.dbus - i0.dbus) / idleS;
    const idle = { seconds: idleS, systemdMsPerMin: ((i1.systemd - i0.systemd) / idleS) * 60_000, dbusMsPerMin: ((i1.dbus - i0.dbus) / idleS) * 60_000 };

    const dflt = await measurePlugin(n, expected, { label: 'the default job', job: 'default', flips: true, capture: true, reload: reloads(n) });
    let batchFile: string | undefined;
    if (dflt.tick) writeFileSync((batchFile = path.join(stateDir!, `tick-${n}.txt`)), dflt.tick);
    else if (measured(dflt.fig)) problems.push(`N=${fmt(n)}: no whole tick of the plugin's stdout captured; floor not measured`);
    await sleep(1000);
    const states = await measurePlugin(n, expected, { label: 'states only', job: 'states', floorBatch: batchFile });
    await sleep(1000);
    const resync = await measureResync(n, expected, measured(dflt.fig) ? dflt.fig.activity?.wallS : undefined);
    await sleep(1000);
    const alone: PluginFigures | NotMeasured = standalone
      ? { notMeasured: standalone }
      : (await measurePlugin(n, expected, { label: 'standalone executable', job: 'default', exe: standaloneAsInstalled(STANDALONE, path.join(stateDir!, 'standalone')).launcher })).fig;
    await sleep(1000);
    const ne = await measureNodeExporter(n);
    await sleep(2000);
    say(`N=${n} systemctl list-units over dbus-daemon, 5 calls`);
    const systemctl = await measureExec('systemctl list-units', ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups',
      'systemctl', 'list-units', '--type=socket', '--all', '--no-pager', '--no-legend'], 5, (rc, out) => rc === 0 && out.split('\n').length > n);
    let checkSystemd: ExecFigures | undefined;
    if (existsSync(CHECK_SYSTEMD)) {
      say(`N=${n} check_systemd: 2 runs`);
      checkSystemd = await measureExec('check_systemd', ['/usr/bin/python3', CHECK_SYSTEMD], 2, (rc, out) => rc <= 2 && /^SYSTEMD (OK|WARNING|CRITICAL)/.test(out));
    }
    results.push({
      n, mix: units.mix, services, growS, idle,
      dflt: dflt.fig, states: states.fig,
      floor: states.floor ?? { notMeasured: batchFile ? 'the states-only run failed' : 'no tick of the default job captured' },
      resync, standalone: alone, ne, systemctl, checkSystemd, loadAvg: [la0, loadAvg()],
    });
  }

  const fullInfo: RunInfo = { ...info, loadEnd: loadAvg(), durationS: (performance.now() - t0) / 1000 };
  const rows = buildRows(results);
  const head = headerLines(fullInfo);
  const notes = [
    `- Bench sockets: instances of t@.socket (plain), a@.socket (Accept=yes, one connection each) and f@.socket (fail on demand), ListenStream under /run;`,
    `  each but an Accept=yes one loads its service (t@N.service, f@N.service: inactive). The plugin runs the default job as a user has it (no jobs key:`,
    `  every unit type, so the bench sockets, their services and the sandbox's own units), as the agent runs it (update_every 1, pipes, MALLOC_ARENA_MAX=1).`,
    `  node_exporter --collector.systemd.unit-include='${NODE_EXPORTER_INCLUDE}'.`,
    `- Windows: from ${WARM} s after the plugin's exec (V8's memory reducer compacts ~10 s after launch; with socket activity, also after every Accept=yes`,
    `  socket is charted), ${S} s long${WARM < 15 || S < 60 ? ` — ${quick ? 'quick: ' : ''}not the issue's windows (≥ 15 s after launch, ≥ 60 s)` : ''}.`,
    `- CPU of the plugin, floor.mjs, systemd (the sandbox's PID 1), dbus-daemon (its system bus) and node_exporter: the sum over the process's threads of`,
    `  /proc/PID/task/*/schedstat's first field (ns on CPU); systemd + dbus-daemon minus their idle rate, measured per N with no tool. systemctl and`,
    `  check_systemd: getrusage of the command (one tick = ${TICK_MS} ms; "<x" = below one tick). Own memory = RssAnon + RssShmem, from /proc/PID/status.`,
    `- Floor: scripts/perf/bench/floor.mjs on the launcher's node flags writes one tick of the default job's stdout (captured in the same sitting) once a`,
    `  second in one write, read as the plugin's stdout is; beside it an idle node waking once a second; both over the states-only run's window.`,
    `- Latency (the default job): ${FLIP_UNIT}'s StateChangeTimestamp (systemd, wall clock µs) → arrival of \`SET ${FLIP_UNIT} = 5\` on the plugin's stdout pipe.`,
    `- Safety resync: a run of its own with SYSTEMDUNITS_RESYNC_EVERY ≥ ${RESYNC_EVERY} (the first after the start-up's socket reads); each resync's CPU from 0.3 s before it began to 2.5 s after its line`,
    `  (the plugin's GC after a listing), less the plugin's rate in between; own memory ${SETTLE_S} s after each against the 6 s before the first (growth above`,
    `  ${GROWTH_TOLERANCE_MB} MB counts as lasting). No daemon-reload there: systemd's own reload grows with N² over template instances (minutes at 10,000).`,
    `  The first safety resync apart from the later ones (their median): V8 compiles the resync's code over the first few (scripts/perf/bench/resync-cpu.mts).`,
    `  The daemon-reload row (Manager.Reload, in the default job's run) runs at N ≤ ${fmt(RELOAD_MAX_N)}${argv.reload ? ' and, with --reload, at every N' : ' (--reload: at every N)'};`,
    `  its resync is the first of its run, compared with the first safety resync.`,
  ];
  for (const r of results) {
    for (const [label, f] of [['the default job', r.dflt], ['states only', r.states], ['standalone', r.standalone], ['safety resync', r.resync], ['floor', r.floor]] as const) {
      if ('notMeasured' in f) {
        notes.push(`- N=${fmt(r.n)} ${label}: not measured: ${f.notMeasured}.`);
        continue;
      }
      if ('stray' in f && f.stray.length) notes.push(`- WARNING N=${r.n} ${label}: lines the agent would reject: ${f.stray.join(' | ')}`);
    }
    if (r.ne.errors) notes.push(`- WARNING N=${r.n}: node_exporter scrape errors: ${r.ne.errors} (${r.ne.lastError})`);
    if (r.ne.unitsSeen !== r.n) notes.push(`- WARNING N=${r.n}: node_exporter reported ${r.ne.unitsSeen} bench sockets, not ${r.n}`);
  }
  for (const pr of problems) notes.push(`- WARNING ${pr}`);
  const table = argv.markdown ? renderMarkdown(rows, NS) : renderText(rows, NS);
  process.stdout.write(argv.markdown
    ? `${head.map((h) => `${h}  `).join('\n')}\n\n${table}\n\n${notes.join('\n')}\n`
    : `\n${head.join('\n')}\n\n${table}\n\n${notes.join('\n')}\n`);

  if (argv.json) {
    writeFileSync(argv.json, JSON.stringify({ info: fullInfo, results, rows, notes }, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2) + '\n');
    say(`figures written to ${argv.json}`);
  }
  say(`done in ${clock()}`);
}

main().then(
  () => cleanup().then(() => process.exit(0)),
  (err: Error) => {
    if (!cleaning) say(`failed: ${err.stack ?? err.message}`); // else a signal interrupted a step
    void cleanup().finally(() => process.exit(1));
  },
);
