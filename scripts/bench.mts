// Benchmark: systemdunits.plugin against real polling peers (node_exporter's systemd collector,
// check_systemd) on one real systemd, in one run. Started by scripts/bench.sh (which installs the
// peers, builds the plugin and passes --state); see there for the options.
//
// Phases, all in one sandbox with N socket units (+ their N services):
//   baseline   no tool: systemd and dbus-daemon CPU when nobody asks (subtracted below)
//   cost       each tool ALONE for S seconds at a 1 s interval, no unit changes: CPU of the tool,
//              of systemd (the sandbox's PID 1) and of dbus-daemon; RSS
//   events     all three together, seeing the same failures: detection latency of a socket that
//              fails and stays failed (repeated at random phases), and how many short
//              (~100-300 ms) failures each one reports at all
import { mkdirSync, mkdtempSync, writeFileSync, rmSync, unlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startSandbox, type Sandbox } from '../test/helpers/sandbox.js';
import { repoRoot, run } from '../test/helpers/run.js';
import { CLK_TCK, childNamed, cpuOf, loadAvg, median, quantile, rssOf, sleep, sum } from './bench/proc.mjs';
import { formatTable, tableJson, type Row } from './bench/report.mjs';
import { DEFAULT_INCLUDE } from '../plugin/config.js';
import { UnitSync } from '../plugin/systemd/sync.js';
import { UnitTable } from '../plugin/units/table.js';
import { CHECK_SYSTEMD, CheckSystemdTool, NODE_EXPORTER, NodeExporterTool, PluginTool, Ticker, type Observation } from './bench/tools.mjs';

// ---- options ----------------------------------------------------------------------------------
const { values: argv } = parseArgs({
  options: {
    units: { type: 'string' },
    seconds: { type: 'string' },
    baseline: { type: 'string' },
    'latency-reps': { type: 'string' },
    'short-reps': { type: 'string' },
    quick: { type: 'boolean', default: false },
    json: { type: 'string' },
    state: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
});
if (argv.help) {
  console.log(`usage: bash scripts/bench.sh [--units N] [--seconds S] [--quick] [--json FILE]
  --units N          socket units in the sandbox (default 1000; --quick 200)
  --seconds S        cost window per tool (default 60; --quick 10)
  --baseline S       idle window for systemd/dbus-daemon (default min(S, 15))
  --latency-reps K   failures that stay failed, timed per tool (default 10; --quick 5)
  --short-reps K     short failures (~100-300 ms) (default 20; --quick 10)
  --json FILE        also write every figure as JSON`);
  process.exit(0);
}
const int = (v: string | undefined, dflt: number, name: string, min = 1): number => {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name}: expected a whole number >= ${min}, got '${v}'`);
  return n;
};
const quick = argv.quick!;
const N = int(argv.units, quick ? 200 : 1000, 'units');
const S = int(argv.seconds, quick ? 10 : 60, 'seconds', 5);
const B = int(argv.baseline, Math.min(S, 15), 'baseline', 3);
const LAT = int(argv['latency-reps'], quick ? 5 : 10, 'latency-reps');
const SHORT = int(argv['short-reps'], quick ? 10 : 20, 'short-reps');
const INTERVAL_MS = 1000;
if (LAT + SHORT > N) throw new Error(`--units ${N} is too few for ${LAT + SHORT} failure targets`);

const CHART = 'systemdunits_service_units.socket_unit_state';
const say = (msg: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
const ms = (x: number | undefined) => (x === undefined ? '-' : `${x.toFixed(0)} ms`);

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

// ---- state dir (scripts/bench.sh makes one and removes it; standalone runs get their own) -------
let stateDir = argv.state;
if (!stateDir) {
  mkdirSync(path.join(repoRoot, '.sandbox'), { recursive: true });
  const dir = (stateDir = mkdtempSync(path.join(repoRoot, '.sandbox', 'bench-')));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
}
const pidFile = path.join(stateDir, 'pids');

// ---- helpers ---------------------------------------------------------------------------------
interface Snap {
  t: number;
  systemd: number;
  dbus: number;
}
interface Window {
  seconds: number;
  systemdCpuS: number;
  dbusCpuS: number;
}

async function main(): Promise<void> {
  const loadStart = loadAvg();
  say(`${N} socket units, ${S} s per tool at a ${INTERVAL_MS / 1000} s interval, baseline ${B} s, ` +
    `${LAT} latency + ${SHORT} short-failure repetitions; ${os.cpus().length} CPUs, load ${loadStart}`);

  // ---- the sandbox and its units ----
  const sbDir = path.join(stateDir!, 'sandbox');
  let sandbox: Sandbox | undefined;
  const starting = startSandbox(sbDir);
  cleanups.push(async () => {
    // a Ctrl-C during the boot: wait for it to finish, then stop it
    const sb = sandbox ?? (await starting.catch(() => undefined));
    if (sb) await sb.stop();
    else await run('bash', [path.join(repoRoot, 'scripts/systemd-sandbox.sh'), 'stop', sbDir]);
  });
  sandbox = await starting;
  const sb = sandbox;
  say(`systemd sandbox up (pid ${sb.pid})`);

  const width = String(N).length;
  const names = Array.from({ length: N }, (_, i) => `bench${String(i + 1).padStart(width, '0')}`);
  const targets = names.slice(0, LAT + SHORT); // each failure uses its own unit: no cross-talk
  const watched = targets.map((n) => `${n}.socket`);
  const root = `/proc/${sb.pid}/root`;
  const unitDir = `${root}/run/systemd/system`;
  const flag = (n: string) => `/run/${n}.fail`;
  const targetSet = new Set(targets);
  for (const n of names) {
    // Targets fail on demand (ExecStartPre checks a flag file); the others are plain sockets.
    const pre = targetSet.has(n) ? `ExecStartPre=/bin/sh -c 'test ! -e ${flag(n)}'\n` : '';
    writeFileSync(`${unitDir}/${n}.socket`, `[Unit]\nDescription=bench socket ${n}\n[Socket]\nListenStream=/run/${n}.sock\n${pre}`);
    writeFileSync(`${unitDir}/${n}.service`, `[Unit]\nDescription=bench service ${n}\n[Service]\nExecStart=/bin/sleep infinity\n`);
  }
  writeFileSync(`${unitDir}/bench.target`, `[Unit]\nDescription=bench sockets\n${names.map((n) => `Wants=${n}.socket\n`).join('')}`);
  const t = performance.now();
  await sb.daemonReload();
  const started = await run('bash', [path.join(repoRoot, 'scripts/systemd-sandbox.sh'), 'exec', sb.dir, 'systemctl', 'start', 'bench.target'], { timeoutMs: 600_000 });
  if (started.code !== 0) throw new Error(`starting the sockets failed: ${started.stderr}`);
  const active = (await sb.exec('systemctl', 'list-units', '--no-legend', '--plain', '--state=active', 'bench*.socket')).stdout.trim().split('\n').filter(Boolean).length;
  if (active !== N) throw new Error(`${active} of ${N} bench sockets are active`);
  const unitsLoaded = (await sb.exec('systemctl', 'list-units', '--all', '--no-legend', '--plain')).stdout.trim().split('\n').length;
  say(`${N} sockets active in ${((performance.now() - t) / 1000).toFixed(1)} s; ${unitsLoaded} units loaded`);

  const systemdPid = sb.pid;
  const dbusPid = childNamed(systemdPid, 'dbus-daemon');
  if (!dbusPid) throw new Error('no dbus-daemon in the sandbox');
  const snap = (): Snap => ({ t: performance.now(), systemd: cpuOf(systemdPid)!.self, dbus: cpuOf(dbusPid)!.self });
  const versions = {
    node: process.version,
    systemd: (await sb.exec('systemctl', '--version')).stdout.split('\n')[0] ?? '?',
    node_exporter: (await run(NODE_EXPORTER, ['--version']).then((r) => r.stdout + r.stderr)).split('\n')[0] ?? '?',
    check_systemd: (await run('/usr/bin/python3', [CHECK_SYSTEMD, '--version'])).stdout.trim() || '?',
    kernel: os.release(),
  };

  // ---- idle baseline ----
  await sleep(2000); // let the start-up settle
  say(`idle baseline: ${B} s with no tool`);
  const b0 = snap();
  await sleep(B * 1000);
  const b1 = snap();
  const baseSec = (b1.t - b0.t) / 1000;
  const baseline = { seconds: baseSec, systemdCpuPerS: (b1.systemd - b0.systemd) / baseSec, dbusCpuPerS: (b1.dbus - b0.dbus) / baseSec };
  const windowOf = (a: Snap, z: Snap): Window => {
    const seconds = (z.t - a.t) / 1000;
    return {
      seconds,
      systemdCpuS: z.systemd - a.systemd - baseline.systemdCpuPerS * seconds,
      dbusCpuS: z.dbus - a.dbus - baseline.dbusCpuPerS * seconds,
    };
  };
  const rssSampler = (pid: () => number | undefined) => {
    const samples: number[] = [];
    let peak = 0;
    const timer = setInterval(() => {
      const p = pid();
      const r = p === undefined ? undefined : rssOf(p);
      if (r) {
        samples.push(r.rssKb);
        peak = Math.max(peak, r.hwmKb);
      }
    }, 1000);
    return () => {
      clearInterval(timer);
      const p = pid();
      const r = p === undefined ? undefined : rssOf(p);
      if (r) peak = Math.max(peak, r.hwmKb);
      return { steadyKb: median(samples), peakKb: peak || undefined };
    };
  };
  const inWindow = <O extends Observation>(obs: readonly O[], a: Snap, z: Snap) => obs.filter((o) => o.start >= a.t && o.start <= z.t);
  const durations = (obs: readonly Observation[]) => obs.map((o) => o.at - o.start);

  const configFile = path.join(stateDir!, 'systemdunits.conf');
  writeFileSync(configFile, 'update_every: 1\njobs:\n  - name: service_units\n');
  const pluginOpts = { bus: sb.busAddress, configFile, pidFile };
  const neOpts = { bus: sb.busAddress, logFile: path.join(stateDir!, 'node_exporter.log'), pidFile };

  // ---- cost: the plugin alone ----
  say(`plugin alone: ${S} s`);
  const p0 = snap();
  const plugin1 = new PluginTool(pluginOpts, CHART, watched);
  cleanups.push(() => plugin1.stop());
  await plugin1.waitFirstSample();
  const pluginFirstSampleMs = plugin1.firstSampleAt! - plugin1.spawnedAt;
  await sleep(1000);
  const pStartSnap = snap();
  const pStartCpu = cpuOf(plugin1.pid!)!.self;
  const startup = { ...windowOf(p0, pStartSnap), toolCpuS: pStartCpu, firstSampleMs: pluginFirstSampleMs };
  await sleep(1000);
  const pw0 = snap();
  const pc0 = cpuOf(plugin1.pid!)!.self;
  const pRss = rssSampler(() => plugin1.pid);
  await sleep(S * 1000);
  const pw1 = snap();
  const pc1 = cpuOf(plugin1.pid!)!.self;
  const pluginRss = pRss();
  const pluginProblems = plugin1.problems();
  const pluginCost = { ...windowOf(pw0, pw1), toolCpuS: pc1 - pc0, observations: inWindow(plugin1.observations, pw0, pw1).length, rss: pluginRss };
  say(`  plugin: ${pluginCost.observations} samples, CPU tool ${pluginCost.toolCpuS.toFixed(2)} s, systemd ${pluginCost.systemdCpuS.toFixed(2)} s, dbus ${pluginCost.dbusCpuS.toFixed(2)} s`);

  await plugin1.stop();

  // The plugin's one periodic cost outside the window: a full resync every 5 min (and after a
  // daemon-reload or a reconnect). Measured with the plugin's own code (UnitSync and UnitTable,
  // the same D-Bus library and calls), run here in the benchmark process: connect and take the
  // first snapshot as the plugin does, then time three resyncs.
  const sync = new UnitSync(new UnitTable(), {
    address: sb.busAddress,
    callTimeoutMs: 10_000,
    patterns: DEFAULT_INCLUDE,
    wants: () => true,
    needTransient: true,
    resyncEveryMs: 3_600_000,
  });
  cleanups.push(() => sync.stop());
  await sync.start();
  await sleep(500);
  const r0 = { cpu: process.cpuUsage(), snap: snap() };
  const RESYNCS = 3;
  for (let i = 0; i < RESYNCS; i++) await sync.resync();
  const r1 = { cpu: process.cpuUsage(r0.cpu), snap: snap() };
  sync.stop();
  const rw = windowOf(r0.snap, r1.snap);
  const resync = {
    pluginCpuS: (r1.cpu.user + r1.cpu.system) / 1e6 / RESYNCS,
    systemdCpuS: Math.max(0, rw.systemdCpuS / RESYNCS),
    dbusCpuS: Math.max(0, rw.dbusCpuS / RESYNCS),
    wallMs: ((r1.snap.t - r0.snap.t) / RESYNCS),
  };
  const resyncPerMin = (resync.pluginCpuS + resync.systemdCpuS + resync.dbusCpuS) / 5;
  say(`  plugin resync (every 5 min): ${(resync.pluginCpuS * 1000).toFixed(0)} ms plugin, ${(resync.systemdCpuS * 1000).toFixed(0)} ms systemd, ${(resync.dbusCpuS * 1000).toFixed(0)} ms dbus-daemon CPU, ${resync.wallMs.toFixed(0)} ms wall`);

  // ---- cost: node_exporter alone ----
  say(`node_exporter alone: ${S} s, scraped every ${INTERVAL_MS / 1000} s`);
  const ne1 = await NodeExporterTool.start(neOpts, watched);
  cleanups.push(() => ne1.stop());
  for (let i = 0; i < 2; i++) if (!(await ne1.scrape(false))) throw new Error(`node_exporter scrape failed: ${ne1.lastError}`);
  await sleep(1000);
  const nw0 = snap();
  const nc0 = cpuOf(ne1.pid!)!.self;
  const nRss = rssSampler(() => ne1.pid);
  const neTicker = new Ticker(INTERVAL_MS, () => ne1.scrape());
  neTicker.start();
  await sleep(S * 1000);
  await neTicker.stop(); // and the scrape in flight
  const nw1 = snap();
  const nc1 = cpuOf(ne1.pid!)!.self;
  const neRss = nRss();
  const neObs = inWindow(ne1.observations, nw0, nw1);
  const neCost = {
    ...windowOf(nw0, nw1),
    toolCpuS: nc1 - nc0,
    observations: neObs.length,
    ticks: neTicker.ticks,
    skipped: neTicker.skipped,
    errors: ne1.errors,
    wallMs: durations(neObs),
    bytesGz: median(neObs.map((o) => o.bytes)),
    rss: neRss,
  };
  await ne1.stop();
  say(`  node_exporter: ${neCost.observations} scrapes of ${neCost.ticks} ticks (${neCost.skipped} skipped: previous scrape still running), ` +
    `scrape ${ms(median(neCost.wallMs))}, CPU tool ${neCost.toolCpuS.toFixed(2)} s, systemd ${neCost.systemdCpuS.toFixed(2)} s, dbus ${neCost.dbusCpuS.toFixed(2)} s` +
    (ne1.errors ? `; ${ne1.errors} errors (${ne1.lastError})` : ''));

  // ---- cost: check_systemd alone ----
  const cs1 = new CheckSystemdTool(sb.dir, new Set(watched));
  cleanups.push(() => cs1.stop());
  // The wrapper that gets it into the sandbox (bash + nsenter) is measured alone and subtracted.
  const wrapper: number[] = [];
  for (let i = 0; i < 5; i++) {
    const r = await cs1.exec(['true']);
    if (r) wrapper.push(r.cpuS);
  }
  const wrapperCpuS = median(wrapper) ?? 0;
  const probe = await cs1.check(false);
  if (!probe || cs1.errors) throw new Error(`check_systemd does not run: ${cs1.lastError}`);
  say(`check_systemd alone: ${S} s, run every ${INTERVAL_MS / 1000} s (sandbox exec wrapper ${(wrapperCpuS * 1000).toFixed(0)} CPU-ms a run, subtracted)`);
  await sleep(1000);
  const cw0 = snap();
  const csTicker = new Ticker(INTERVAL_MS, () => cs1.check());
  csTicker.start();
  await sleep(S * 1000);
  await csTicker.stop();
  const cw1 = snap();
  const csRuns = inWindow(cs1.observations, cw0, cw1);
  const csCost = {
    ...windowOf(cw0, cw1),
    toolCpuS: sum(csRuns.map((r) => Math.max(0, r.cpuS - wrapperCpuS))),
    observations: csRuns.length,
    ticks: csTicker.ticks,
    skipped: csTicker.skipped,
    errors: cs1.errors,
    wallMs: durations(csRuns),
    maxRssKb: csRuns.map((r) => r.maxRssKb),
    rcs: [...new Set(csRuns.map((r) => r.rc))],
  };
  say(`  check_systemd: ${csCost.observations} runs of ${csCost.ticks} ticks (${csCost.skipped} skipped), run ${ms(median(csCost.wallMs))}, ` +
    `CPU tool ${csCost.toolCpuS.toFixed(2)} s, systemd ${csCost.systemdCpuS.toFixed(2)} s, dbus ${csCost.dbusCpuS.toFixed(2)} s` +
    (cs1.errors ? `; ${cs1.errors} errors (${cs1.lastError})` : ''));

  // ---- events: all three at once, the same failures for all ----
  say(`events: all three tools together; ${LAT} failures that stay failed, ${SHORT} short ones`);
  const plugin = new PluginTool(pluginOpts, CHART, watched);
  cleanups.push(() => plugin.stop());
  const ne = await NodeExporterTool.start(neOpts, watched);
  cleanups.push(() => ne.stop());
  const cs = new CheckSystemdTool(sb.dir, new Set(watched));
  cleanups.push(() => cs.stop());
  await plugin.waitFirstSample();
  await ne.scrape(false);
  const tickers = [new Ticker(INTERVAL_MS, () => ne.scrape()), new Ticker(INTERVAL_MS, () => cs.check())];
  tickers.forEach((tk) => tk.start());
  cleanups.push(() => Promise.all(tickers.map((tk) => tk.stop())));
  await sleep(2000);
  const tools = [plugin, ne, cs] as const;
  const seen = (obs: readonly Observation[], unit: string, from: number) => obs.find((o) => o.at >= from && o.failed.has(unit));
  // Long enough for the slowest poller to come round: its slowest observation so far, thrice.
  const slowest = () => Math.max(INTERVAL_MS, ...[...neCost.wallMs, ...csCost.wallMs, ...durations(ne.observations), ...durations(cs.observations)]);

  const latencyEvents: Array<{ unit: string; issued: number; returned: number }> = [];
  for (let i = 0; i < LAT; i++) {
    await sleep(300 + Math.random() * INTERVAL_MS); // a random phase against every tool's cycle
    const n = targets[i]!;
    const unit = `${n}.socket`;
    writeFileSync(root + flag(n), '');
    const issued = performance.now();
    await sb.exec('systemctl', 'restart', unit); // exits 1: the start fails, as intended
    const returned = performance.now();
    latencyEvents.push({ unit, issued, returned });
    const until = returned + 10_000 + 3 * slowest();
    while (performance.now() < until && !tools.every((tl) => seen(tl.observations, unit, issued))) await sleep(20);
    const got = tools.map((tl) => seen(tl.observations, unit, issued));
    say(`  latency ${i + 1}/${LAT} ${unit}: ` + tools.map((tl, k) => `${tl.name} ${got[k] ? ms(got[k]!.at - returned) : 'missed'}`).join(', '));
    unlinkSync(root + flag(n));
    await sb.exec('sh', '-c', `systemctl reset-failed ${unit}; systemctl start ${unit}`);
  }

  const shortEvents: Array<{ unit: string; issued: number; failedMs: number | undefined }> = [];
  for (let i = 0; i < SHORT; i++) {
    await sleep(500 + Math.random() * INTERVAL_MS);
    const n = targets[LAT + i]!;
    const unit = `${n}.socket`;
    const pause = (0.08 + Math.random() * 0.2).toFixed(3);
    const issued = performance.now();
    // failed from the end of the restart to the end of reset-failed: ~100-300 ms
    const r = await sb.exec('sh', '-c',
      `touch ${flag(n)}; systemctl restart ${unit}; a=$(date +%s%N); sleep ${pause}; rm -f ${flag(n)}; ` +
      `systemctl reset-failed ${unit}; b=$(date +%s%N); systemctl start ${unit}; echo $a $b`);
    const [a, b] = r.stdout.trim().split(' ').map(Number);
    const failedMs = a && b ? (b - a) / 1e6 : undefined;
    shortEvents.push({ unit, issued, failedMs });
  }
  await sleep(slowest() + 1500); // the last observations in flight
  await Promise.all(tickers.map((tk) => tk.stop()));
  await Promise.all([plugin.stop(), ne.stop()]);
  cs.stop();
  const eventProblems = plugin.problems();

  const latency = tools.map((tl) => {
    const lat = latencyEvents.map((e) => {
      const o = seen(tl.observations, e.unit, e.issued);
      return o ? o.at - e.returned : undefined;
    });
    const got = lat.filter((x): x is number => x !== undefined);
    return { name: tl.name, ms: lat, median: median(got), p95: quantile(got, 0.95), missed: lat.length - got.length };
  });
  const short = tools.map((tl) => {
    const caught = shortEvents.filter((e) => seen(tl.observations, e.unit, e.issued)).length;
    return { name: tl.name, caught, n: shortEvents.length };
  });
  const failedWindows = shortEvents.map((e) => e.failedMs).filter((x): x is number => x !== undefined);
  const loadEnd = loadAvg();

  // ---- figures ----
  const norm = (w: Window & { toolCpuS: number }) => {
    const f = S / w.seconds; // scaled to exactly S seconds (a poller's window ends with its last run)
    const tool = w.toolCpuS * f;
    const systemd = Math.max(0, w.systemdCpuS * f);
    const dbus = Math.max(0, w.dbusCpuS * f);
    return { tool, systemd, dbus, total: tool + systemd + dbus };
  };
  const pc = norm(pluginCost);
  const nc = norm(neCost);
  const cc = norm(csCost);
  const perObs = (w: Window & { toolCpuS: number; observations: number }) =>
    w.observations ? ((w.toolCpuS + Math.max(0, w.systemdCpuS) + Math.max(0, w.dbusCpuS)) / w.observations) * 1000 : undefined;
  const res = 1 / CLK_TCK; // /proc CPU times count in clock ticks
  const mb = (kb: number | undefined) => (kb === undefined ? undefined : kb / 1024);
  const pct = (k: number, n: number) => `${k}/${n} (${((100 * k) / n).toFixed(0)}%)`;
  const csPerRun = perObs(csCost);
  const nePerScrape = perObs(neCost);
  const pluginPerMin = (pc.total * 60) / S + resyncPerMin; // with its 5-min resync amortized
  const rows: Row[] = [
    { metric: `observations in ${S} s (samples/scrapes/runs)`, values: [pluginCost.observations, neCost.observations, csCost.observations], digits: 0 },
    { metric: 'ticks skipped: previous one still running', values: [0, neCost.skipped, csCost.skipped], digits: 0, noRatio: true },
    { metric: 'wall time of one observation, median ms', values: [undefined, median(neCost.wallMs), median(csCost.wallMs)], digits: 0, noRatio: true },
    { metric: `CPU s in ${S} s: the tool itself`, values: [pc.tool, nc.tool, cc.tool], resolution: res },
    { metric: `CPU s in ${S} s: systemd (PID 1)`, values: [pc.systemd, nc.systemd, cc.systemd], resolution: res },
    { metric: `CPU s in ${S} s: dbus-daemon`, values: [pc.dbus, nc.dbus, cc.dbus], resolution: res },
    { metric: `CPU s in ${S} s: total`, values: [pc.total, nc.total, cc.total], resolution: res },
    { metric: 'total, % of one core', values: [(100 * pc.total) / S, (100 * nc.total) / S, (100 * cc.total) / S], resolution: (100 * res) / S },
    { metric: 'total CPU ms per observation', values: [perObs(pluginCost), nePerScrape, csPerRun], digits: 1 },
    { metric: 'RSS steady, MB', values: [mb(pluginRss.steadyKb), mb(neRss.steadyKb), undefined], text: [undefined, undefined, '(exits)'], digits: 1 },
    { metric: 'RSS peak, MB (check_systemd: per run)', values: [mb(pluginRss.peakKb), mb(neRss.peakKb), mb(Math.max(0, ...csCost.maxRssKb))], digits: 1 },
    { metric: `failure detected after, median ms (n=${LAT})`, values: [latency[0]!.median, latency[1]!.median, latency[2]!.median], digits: 0 },
    { metric: 'failure detected after, p95 ms', values: [latency[0]!.p95, latency[1]!.p95, latency[2]!.p95], digits: 0 },
    { metric: 'failures never detected', values: [latency[0]!.missed, latency[1]!.missed, latency[2]!.missed], digits: 0, noRatio: true },
    {
      metric: `short failures reported (~${median(failedWindows)?.toFixed(0) ?? '?'} ms each)`,
      values: short.map((s) => s.caught / s.n) as [number, number, number],
      text: short.map((s) => pct(s.caught, s.n)) as [string, string, string],
    },
    {
      metric: 'CPU s per minute, usual intervals (1 s, 15 s, 60 s)',
      values: [pluginPerMin, nePerScrape === undefined ? undefined : (4 * nePerScrape) / 1000, csPerRun === undefined ? undefined : csPerRun / 1000],
      resolution: (60 * res) / S,
      digits: 3,
    },
  ];

  const table = formatTable(rows);
  const header = [
    `systemdunits.plugin vs polling peers: ${N} socket units (${unitsLoaded} units loaded), each tool alone for ${S} s at a ${INTERVAL_MS / 1000} s interval`,
    `host: ${os.cpus().length} CPUs, load average ${loadStart} at start, ${loadEnd} at end; ${versions.systemd}; node ${versions.node}; ` +
      `node_exporter ${versions.node_exporter.replace(/^node_exporter, version /, '').split(' ')[0]}; ${versions.check_systemd}`,
    `idle baseline (${baseSec.toFixed(0)} s, no tool), subtracted: systemd ${(baseline.systemdCpuPerS * 60).toFixed(3)}, dbus-daemon ${(baseline.dbusCpuPerS * 60).toFixed(3)} CPU-s/min`,
  ].join('\n');
  const notes = [
    `- CPU from /proc/PID/stat (resolution ${res * 1000} ms; "<${res}" = below it, and the ratio is then a lower bound ">N×").`,
    `  systemd = the sandbox's PID 1, dbus-daemon = its system bus; both minus the idle baseline.`,
    `  check_systemd: CPU of each run's whole process tree (python, systemctl, systemd-analyze) from getrusage,`,
    `  minus ${(wrapperCpuS * 1000).toFixed(0)} ms a run for the sandbox's exec wrapper; as root its systemctl talks to systemd directly, not via dbus-daemon.`,
    `- Latency: from \`systemctl restart\` of a socket whose ExecStartPre fails returning, to the first sample/scrape/run reporting it failed;`,
    `  the three ran together and saw the same ${LAT} failures at random phases. Short failures: failed for ${failedWindows.length ? `${Math.min(...failedWindows).toFixed(0)}-${Math.max(...failedWindows).toFixed(0)}` : '?'} ms, then reset and restarted.`,
    `  Wall time of one observation while the three ran together: node_exporter ${ms(median(durations(ne.observations)))}, check_systemd ${ms(median(durations(cs.observations)))} (median).`,
    `- "usual intervals": the plugin still at 1 s, plus its resync every 5 min amortized (${(resyncPerMin * 1000).toFixed(0)} CPU-ms/min; one resync, timed with the`,
    `  plugin's own UnitSync code: ${(resync.pluginCpuS * 1000).toFixed(0)} ms plugin, ${(resync.systemdCpuS * 1000).toFixed(0)} ms systemd, ${(resync.dbusCpuS * 1000).toFixed(0)} ms dbus-daemon);`,
    `  node_exporter per scrape × 4 (Prometheus' common 15 s); check_systemd one run (Nagios' common 60 s).`,
    `- plugin startup (once: node, ListUnitsByPatterns, a Transient lookup per unit, Subscribe, chart definitions): first sample after ${startup.firstSampleMs.toFixed(0)} ms,` +
      ` CPU ${startup.toolCpuS.toFixed(2)} s (node), systemd ${Math.max(0, startup.systemdCpuS).toFixed(2)} s, dbus-daemon ${Math.max(0, startup.dbusCpuS).toFixed(2)} s.`,
    `- Netdata's go.d systemdunits module (not packaged for Debian, not measured) calls ListUnitsByPatterns every update_every:`,
    `  the same polling class as node_exporter and check_systemd (cost grows with units × polls; a short failure is seen only if a poll lands in it).`,
  ];
  const problems = [...pluginProblems, ...eventProblems];
  if (problems.length) notes.push(`- WARNING: the plugin wrote lines the agent would reject: ${problems.join(' | ')}`);
  if (neCost.errors || ne.errors) notes.push(`- WARNING: node_exporter scrape errors: ${neCost.errors + ne.errors} (${ne.lastError || ne1.lastError})`);
  if (csCost.errors || cs.errors) notes.push(`- WARNING: check_systemd errors: ${csCost.errors + cs.errors} (${cs.lastError || cs1.lastError})`);

  process.stdout.write(`\n${header}\n\n${table}\n\n${notes.join('\n')}\n`);

  if (argv.json) {
    const out = {
      config: { units: N, seconds: S, baselineSeconds: B, intervalSeconds: INTERVAL_MS / 1000, latencyReps: LAT, shortReps: SHORT, quick },
      host: { cpus: os.cpus().length, loadAvgStart: loadStart, loadAvgEnd: loadEnd, unitsLoaded, versions, clockTicksPerSecond: CLK_TCK },
      baseline,
      table: tableJson(rows),
      cost: {
        plugin: { ...pluginCost, normalized: pc, cpuMsPerObservation: perObs(pluginCost) },
        node_exporter: { ...neCost, normalized: nc, cpuMsPerObservation: nePerScrape },
        check_systemd: { ...csCost, normalized: cc, cpuMsPerObservation: csPerRun, wrapperCpuSPerRunSubtracted: wrapperCpuS },
      },
      pluginStartup: startup,
      pluginResync: { ...resync, amortizedCpuSPerMinute: resyncPerMin },
      latency: Object.fromEntries(latency.map((l) => [l.name, { ...l, ms: l.ms.map((x) => x ?? null) }])),
      shortFailures: { failedMs: failedWindows, ...Object.fromEntries(short.map((s) => [s.name, s])) },
      notes,
    };
    writeFileSync(argv.json, JSON.stringify(out, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2) + '\n');
    say(`figures written to ${argv.json}`);
  }
}

main().then(
  () => cleanup().then(() => process.exit(0)),
  (err: Error) => {
    if (!cleaning) say(`failed: ${err.stack ?? err.message}`); // else a signal interrupted a step
    void cleanup().finally(() => process.exit(1));
  },
);
