// Benchmark of issue 4: systemdunits.plugin against node_exporter's systemd collector (and the
// floor of one D-Bus round trip) on one real systemd, at several N, in one run. Started by
// scripts/perf/bench.sh (installs the peers, builds the plugin, passes --state); see there for options.
//
// One sandbox; for each N in ascending order it grows the bench sockets to N (scripts/perf/bench/units.mts),
// then, one tool at a time:
//   idle       no tool: systemd and dbus-daemon CPU per second (subtracted from every window below)
//   plugin     states only, then with socket counters; each at update_every 1:
//                start-up   exec → first complete batch (all N units, every defined chart sent)
//                steady     S s untouched: plugin CPU and RSS from /proc, systemd + dbus-daemon CPU
//                latency    f@flip.socket failed K times at random phases: its StateChangeTimestamp
//                           → arrival of `SET f@flip.socket = 5` on the plugin's stdout
//                resync     systemctl daemon-reload: the plugin's CPU for it, RSS afterwards
//   node_exporter  only its systemd collector, the bench sockets only: per scrape wall, CPU, RSS,
//              systemd + dbus-daemon CPU; ×4 for a 15 s scrape interval
//   floor      systemctl list-units --type=socket --all as an unprivileged user (over dbus-daemon)
//   check_systemd  one run as root (it uses systemctl's private socket), when installed
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startSandbox, type Sandbox } from '../../harness/sandbox.js';
import { repoRoot, run } from '../../harness/run.js';
import { CLK_TCK, childNamed, cpuOf, loadAvg, median, rssOf, sleep } from './bench/proc.mjs';
import {
  buildRows, fmt, SETTLE_S, headerLines, renderMarkdown, renderText,
  type ExecFigures, type Measured, type NeFigures, type PerN, type PluginFigures, type RunInfo,
} from './bench/report.mjs';
import { CHECK_SYSTEMD, NODE_EXPORTER, NodeExporter, PluginProc, SandboxExec } from './bench/tools.mjs';
import { BENCH_GLOBS, BenchUnits, FLIP_UNIT, NODE_EXPORTER_INCLUDE, isBenchUnit } from './bench/units.mjs';

// ---- options ----------------------------------------------------------------------------------
const USAGE = `usage: bash scripts/perf/bench.sh [--n LIST] [--quick] [--json FILE] [--markdown] [more options]
  --n LIST        socket counts, comma-separated (default 100,1000,5000,10000; --quick 100,1000)
  --seconds S     steady window per plugin run (default 60; --quick 10)
  --flips K       failures timed per plugin run (default 20; --quick 10)
  --scrapes K     node_exporter scrapes per N (default 3; --quick 1)
  --baseline S    idle window per N (default 10; --quick 5)
  --json FILE     also write every figure as JSON
  --markdown      print the table as markdown (for the README's Performance section)
  --resync-counters  force a resync (daemon-reload) in the counters run too: minutes at 10,000`;
const { values: argv } = parseArgs({
  options: {
    n: { type: 'string' },
    seconds: { type: 'string' },
    flips: { type: 'string' },
    scrapes: { type: 'string' },
    baseline: { type: 'string' },
    quick: { type: 'boolean', default: false },
    json: { type: 'string' },
    markdown: { type: 'boolean', default: false },
    'resync-counters': { type: 'boolean', default: false },
    state: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
});
if (argv.help) {
  console.log(USAGE);
  process.exit(0);
}
const int = (v: string | undefined, dflt: number, name: string, min = 1): number => {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name}: expected a whole number >= ${min}, got '${v}'`);
  return n;
};
const quick = argv.quick!;
const NS = (argv.n ?? (quick ? '100,1000' : '100,1000,5000,10000')).split(',').map((x) => int(x.trim(), 0, 'n', 10)).sort((a, b) => a - b);
const S = int(argv.seconds, quick ? 10 : 60, 'seconds', 5);
const FLIPS = int(argv.flips, quick ? 10 : 20, 'flips');
const SCRAPES = int(argv.scrapes, quick ? 1 : 3, 'scrapes');
const B = int(argv.baseline, quick ? 5 : 10, 'baseline', 2);
const TICK_MS = 1000 / CLK_TCK;

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
function estimateS(n: number, newUnits: number): number {
  const plugin = 1 + n * 0.0004 + 3 + S + FLIPS * 1.8 + 4;
  const resyncs = argv['resync-counters'] ? 2 : 1;
  return 3 + newUnits * 0.002 + B + 2 * plugin + resyncs * reloadEstimateS(n) + SCRAPES * (1.5 + n * 0.0012) + 4 + 3 + 2 * (0.5 + n * 0.0003);
}
const estimates = NS.map((n, i) => estimateS(n, n - (i ? NS[i - 1]! : 0)));
const remainingMin = (from: number) => (estimates.slice(from).reduce((a, b) => a + b, 0) / 60).toFixed(0);

// ---- measurement -------------------------------------------------------------------------------
interface Bus {
  t: number;
  systemd: number;
  dbus: number;
}

async function main(): Promise<void> {
  const loadStart = loadAvg();
  say(`N = ${NS.join(', ')}; steady ${S} s, ${FLIPS} flips, ${SCRAPES} scrapes, idle ${B} s per N; estimated ~${remainingMin(0)} min; load ${loadStart}`);

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

  const bus = (): Bus => ({ t: performance.now(), systemd: cpuOf(sb.pid)!.self, dbus: cpuOf(dbusPid)!.self });
  let idleRate = 0; // systemd + dbus-daemon CPU s per s, no tool running
  /** systemd + dbus-daemon CPU between two snapshots, minus the idle rate, ms */
  const busCostMs = (a: Bus, z: Bus): Measured => ({
    value: Math.max(0, (z.systemd - a.systemd + z.dbus - a.dbus - idleRate * ((z.t - a.t) / 1000)) * 1000),
    resolution: TICK_MS,
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
    flips: FLIPS,
    scrapes: SCRAPES,
    quick,
  };

  const configFor = (counters: boolean) => {
    const file = path.join(stateDir!, counters ? 'counters.conf' : 'states.conf');
    // Only the bench sockets: ~N SET lines a second, and the same units the peers read.
    // States only turns socket activity off; the counters run is the default job's (on, every 10 s,
    // at most 40 sockets a round): no socket key at all.
    writeFileSync(file, `update_every: 1\njobs:\n  - name: bench\n    include: [${BENCH_GLOBS.map((g) => `'${g}'`).join(', ')}]\n` +
      (counters ? '' : '    socket_activity: false\n'));
    return file;
  };

  const results: PerN[] = [];
  /** odd things seen on the way, printed under the table */
  const problems: string[] = [];
  let statesCharts: string[] = [];

  async function measurePlugin(n: number, label: string, counters: boolean): Promise<PluginFigures | { notMeasured: string }> {
    const p = new PluginProc({ bus: sb.busAddress, configFile: configFor(counters), pidFile, watched: new Set([FLIP_UNIT]), isBenchUnit, units: n });
    return using(p, async () => {
      say(`N=${n} plugin (${label}): start-up`);
      await p.waitFor('the first complete batch', () => p.stream.firstCompleteUs, 180_000);
      const startupMs = (p.stream.firstCompleteUs! - p.execUs) / 1000;
      if (counters) {
        const refused = p.messages.filter((l) => l.includes('socket_activity') && /ignored|unknown|not supported|skipped|invalid|must/i.test(l));
        if (refused.length) {
          say(`  the plugin does not take the socket counter keys: ${refused.join(' | ')}`);
          return { notMeasured: `the plugin ignored or rejected socket_activity/socket_activity_every ("${refused[0]!.replace(/^systemdunits\.plugin: \S+: /, '')}")` };
        }
      }
      say(`  first complete batch after ${startupMs.toFixed(0)} ms; steady ${S} s`);
      // Counters: first every socket's Accept is read (once, in the background), then the Accept=yes
      // ones are read in turns; the steady window starts once every one of them has its charts.
      let activity: PluginFigures['activity'];
      if (counters) {
        const want = units.mix.accept;
        // one `…_connections` chart per charted socket (besides …_accepted_ and …_refused_connections)
        const charted = () => [...p.stream.charts.keys()].filter((c) => c.endsWith('_connections') && !/_(accepted|refused)_connections$/.test(c)).length;
        const cpu0 = cpuOf(p.pid)!.self;
        const t0 = performance.now();
        say(`  waiting for the activity charts of all ${want} Accept=yes sockets`);
        const done = await p.waitFor('every Accept=yes socket charted', () => (charted() >= want ? true : undefined), 600_000).then(() => true, () => false);
        activity = { wallS: (performance.now() - t0) / 1000 + startupMs / 1000, cpuMs: { value: (cpuOf(p.pid)!.self - cpu0) * 1000, resolution: TICK_MS }, complete: done, charted: charted() };
        say(`  ${activity.charted} of ${want} charted after ${activity.wallS.toFixed(1)} s from exec (plugin CPU ${activity.cpuMs.value.toFixed(0)} ms since the first batch)`);
      }
      await sleep(3000);

      // steady
      const c0 = cpuOf(p.pid)!.self;
      const b0 = bus();
      const sets0 = p.stream.setLines;
      const rss: number[] = [];
      const firstAtMs = p.stream.firstCompleteUs! / 1000 - performance.timeOrigin;
      let rssSettledMb: number | undefined;
      for (let i = 0; i < S; i++) {
        await sleep(1000);
        const r = rssOf(p.pid);
        if (r) rss.push(r.rssKb);
        if (rssSettledMb === undefined && r && performance.now() - firstAtMs >= SETTLE_S * 1000) rssSettledMb = r.rssKb / 1024;
      }
      const b1 = bus();
      const c1 = cpuOf(p.pid)!.self;
      const secs = (b1.t - b0.t) / 1000;
      const cpuRate = (c1 - c0) / secs;
      const setLinesPerS = (p.stream.setLines - sets0) / secs;
      const busCost = busCostMs(b0, b1);

      // detection latency
      say(`  ${FLIPS} flips of ${FLIP_UNIT}`);
      const latencyMs: number[] = [];
      let missed = 0;
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

      // resync, forced by a daemon-reload. systemd's reload itself grows with N² here (~2 s at 1,000
      // instances, minutes at 10,000, with or without a client), hence once per N unless asked.
      let resync: PluginFigures['resync'];
      let rssAfterResyncMb: number | undefined;
      if (!counters || argv['resync-counters']) {
        await sleep(1500);
        say(`  resync: daemon-reload (~${Math.ceil(reloadEstimateS(n))} s at this N)`);
        const before = p.resyncs.length;
        const r0 = cpuOf(p.pid)!.self;
        const rb0 = bus();
        // busctl rather than systemctl: systemctl gives up after 180 s, the reload goes on
        const reload = await run('bash', [path.join(repoRoot, 'scripts/sandbox/systemd-sandbox.sh'), 'exec', sb.dir, 'busctl', 'call', '--timeout=1200',
          'org.freedesktop.systemd1', '/org/freedesktop/systemd1', 'org.freedesktop.systemd1.Manager', 'Reload'], { timeoutMs: 1_300_000 });
        const rb1 = bus();
        const reloadMs = rb1.t - rb0.t;
        if (reload.code === 0) {
          // Once systemd has reloaded, a resync is a listing and a few lookups: seconds.
          const done = await p.waitFor('the resync after daemon-reload', () => p.resyncs[before], 120_000).catch(() => undefined);
          if (!done) {
            const tail = p.stderr.trim().split('\n').slice(-6).join('\n    ');
            say(`  WARNING: no "resync:" line from the plugin within 120 s of the reload; resync figures left out. Its stderr ends:\n    ${tail}`);
            problems.push(`N=${fmt(n)} ${label}: the plugin reported no resync within 120 s after the daemon-reload returned (${(reloadMs / 1000).toFixed(0)} s); its stderr ended: ${tail.replace(/\n\s*/g, ' | ')}`);
          }
          await sleep(2000);
          const r1 = cpuOf(p.pid)!.self;
          const el = (performance.now() - rb0.t) / 1000;
          if (done) {
            resync = {
              reloadMs,
              reloadBusCpuS: busCostMs(rb0, rb1).value / 1000,
              pluginReportedMs: done.completedMs,
              cpuMs: { value: Math.max(0, (r1 - r0 - cpuRate * el) * 1000), resolution: TICK_MS },
            };
            await sleep(Math.max(0, SETTLE_S * 1000 - (performance.now() - done.atMs)));
            rssAfterResyncMb = (rssOf(p.pid)?.rssKb ?? NaN) / 1024;
            say(`  daemon-reload took ${(reloadMs / 1000).toFixed(1)} s (systemd+dbus ${resync.reloadBusCpuS.toFixed(1)} s CPU); plugin resync ${done.completedMs} ms, CPU ${resync.cpuMs.value.toFixed(0)} ms`);
          }
        } else say(`  daemon-reload failed: ${reload.stderr.trim()}`);
      }
      const peak = rssOf(p.pid)?.hwmKb;
      const charts = [...p.stream.charts.keys()];
      if (!counters) statesCharts = charts;
      const fig: PluginFigures = {
        startupMs,
        startupCpuMs: p.atFirst?.cpuS === undefined ? undefined : { value: p.atFirst.cpuS * 1000, resolution: TICK_MS },
        latencyMs,
        latencyMissed: missed,
        cpuPct: { value: cpuRate * 100, resolution: (TICK_MS / 1000 / secs) * 100 },
        setLinesPerS,
        rssFirstMb: p.atFirst?.rss && p.atFirst.rss.rssKb / 1024,
        rssSettledMb,
        rssSteadyMb: median(rss) === undefined ? undefined : median(rss)! / 1024,
        rssAfterResyncMb,
        rssPeakMb: peak && peak / 1024,
        resync,
        busCostMsPerMin: { value: (busCost.value * 60) / secs, resolution: (TICK_MS * 60) / secs },
        charts,
        stray: p.stream.strayLines,
        activity,
      };
      say(`  latency median ${median(latencyMs)?.toFixed(0)} ms; CPU ${fig.cpuPct.value.toFixed(2)}% of a core; RSS ${fig.rssSteadyMb?.toFixed(1)} MB; ` +
        `systemd+dbus ${fig.busCostMsPerMin.value.toFixed(0)} ms/min; ${setLinesPerS.toFixed(0)} SET lines/s`);
      if (counters) {
        const extra = charts.filter((c) => !statesCharts.includes(c));
        if (extra.length === 0) {
          return { notMeasured: `the keys were accepted, but no chart beyond the states-only run's appeared in ${S + FLIPS} s: counters not collected` };
        }
      }
      if (fig.stray.length) say(`  WARNING: lines the agent would reject: ${fig.stray.join(' | ')}`);
      return fig;
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
        const c0 = cpuOf(ne.pid)!.self;
        const s = await ne.scrape();
        const c1 = cpuOf(ne.pid)!.self;
        const b1 = bus();
        if (s) {
          fig.scrapes++;
          fig.wallMs.push(s.wallMs);
          fig.cpuMs.push({ value: (c1 - c0) * 1000, resolution: TICK_MS });
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
    say(`  ${n} bench sockets up in ${growS.toFixed(1)} s`);
    await sleep(2000);

    say(`N=${n} idle ${B} s`);
    const i0 = bus();
    await sleep(B * 1000);
    const i1 = bus();
    const idleS = (i1.t - i0.t) / 1000;
    idleRate = (i1.systemd - i0.systemd + i1.dbus - i0.dbus) / idleS;
    const idle = { seconds: idleS, systemdMsPerMin: ((i1.systemd - i0.systemd) / idleS) * 60_000, dbusMsPerMin: ((i1.dbus - i0.dbus) / idleS) * 60_000 };

    const states = await measurePlugin(n, 'states only', false);
    if ('notMeasured' in states) throw new Error(states.notMeasured);
    const counters = await measurePlugin(n, 'socket counters on', true);
    await sleep(1000);
    const ne = await measureNodeExporter(n);
    await sleep(2000);
    say(`N=${n} floor: systemctl list-units over dbus-daemon, 5 calls`);
    const floor = await measureExec('systemctl list-units', ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups',
      'systemctl', 'list-units', '--type=socket', '--all', '--no-pager', '--no-legend'], 5, (rc, out) => rc === 0 && out.split('\n').length > n);
    let checkSystemd: ExecFigures | undefined;
    if (existsSync(CHECK_SYSTEMD)) {
      say(`N=${n} check_systemd: 2 runs`);
      checkSystemd = await measureExec('check_systemd', ['/usr/bin/python3', CHECK_SYSTEMD], 2, (rc, out) => rc <= 2 && /^SYSTEMD (OK|WARNING|CRITICAL)/.test(out));
    }
    results.push({ n, mix: units.mix, growS, idle, states, counters, ne, floor, checkSystemd, loadAvg: [la0, loadAvg()] });
  }

  const fullInfo: RunInfo = { ...info, loadEnd: loadAvg(), durationS: (performance.now() - t0) / 1000 };
  const rows = buildRows(results);
  const head = headerLines(fullInfo);
  const notes = [
    `- Bench sockets: instances of t@.socket (plain), a@.socket (Accept=yes, one connection each) and f@.socket (fail on demand), ListenStream under /run;`,
    `  the plugin's job includes only ${BENCH_GLOBS.join(', ')} (~N SET lines a second); node_exporter --collector.systemd.unit-include='${NODE_EXPORTER_INCLUDE}'.`,
    `- Latency: ${FLIP_UNIT}'s StateChangeTimestamp (systemd, wall clock µs) → arrival of \`SET ${FLIP_UNIT} = 5\` on the plugin's stdout pipe.`,
    `- CPU from /proc/PID/stat (one tick = ${TICK_MS} ms; "<x" = below one tick over the window); systemd = the sandbox's PID 1, dbus-daemon = its`,
    `  system bus, both minus their idle rate (measured per N with no tool). RSS from /proc/PID/status.`,
    `- The plugin's periodic resync (every 5 min) is not in the ${S} s window; its cost is the "resync" row, forced by a daemon-reload`,
    `  (Manager.Reload) once per N, in the states-only run${argv['resync-counters'] ? ' and the counters run' : ' (--resync-counters: in the counters run too)'}. The reload's own wall and`,
    `  systemd CPU are systemd's: they grow with N² for instances of a few templates, with or without a client on the bus.`,
  ];
  for (const r of results) {
    for (const [label, f] of [['states only', r.states], ['counters on', r.counters]] as const) {
      if ('notMeasured' in f) {
        notes.push(`- N=${fmt(r.n)} ${label}: NOT MEASURED: ${f.notMeasured}.`);
        continue;
      }
      if (f.stray.length) notes.push(`- WARNING N=${r.n} ${label}: lines the agent would reject: ${f.stray.join(' | ')}`);
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
