// What a daemon-reload costs the plugin, before/after in one sitting: one sandboxed systemd with N
// bench sockets (and their services), one or more builds of the plugin side by side with the
// default job, then --reloads daemon-reloads one after the other. A reload's cost for a plugin is
// its CPU (schedstat, all threads) from the reload's start to --after seconds (10) after the resync
// that follows it (its `resync: N units` debug line), less its steady rate over the same time; and
// the same to --total seconds (40) after the resync: the sockets' Accept is read again after a
// reload, spread over the following seconds (50 a second from the first activity round that sees
// it, every 10 s by default), and at 1,000 sockets that is done by then (at 10,000 it is not).
// The steady rate is each plugin's over the --steady seconds (30) right before each reload, after
// the previous reload's --total: a rate taken once, over 20 s, swung by ±0.4% of a core between two
// copies of one build, which over a 50 s window is ±200 ms. Also counts the signals systemd sent.
// --burst K: each measured reload is K daemon-reloads --gap seconds (5) apart (a package manager
// reloads once per package), its windows counted from the last one's resync.
// Needs root (boots systemd in a namespace, like the tests).
//   npx tsx scripts/perf/reload-cpu.mts [--units 1000] [--reloads 3] [--steady 30] [--after 10]
//       [--total 40] [--burst 1] [--gap 5] [--plugin label=path/to/systemdunits.plugin ...]
//       [--prof DIR] [--debug WHAT]
// Default plugin: this checkout's ./systemdunits.plugin (build it first).
// --prof DIR: each plugin writes a V8 CPU profile there when stopped (--cpu-prof).
// --debug WHAT: more of the plugins' DEBUG (e.g. systemdunits:bus), their stderr kept in $TMPDIR/reload-cpu-LABEL.stderr.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { repoRoot } from '../../harness/run.js';
import { sleep, until } from '../../harness/wait.js';
import { buildCommand, growBenchUnits, startScriptSandbox } from './bench/session.mjs';
import { cpuNsOf, loadAvg } from './bench/proc.mjs';
import { wholeOption } from './bench/options.mjs';

const { values: opt } = parseArgs({
  options: {
    units: { type: 'string', default: '1000' },
    reloads: { type: 'string', default: '3' },
    steady: { type: 'string', default: '30' },
    after: { type: 'string', default: '10' },
    total: { type: 'string', default: '40' },
    burst: { type: 'string', default: '1' },
    gap: { type: 'string', default: '5' },
    plugin: { type: 'string', multiple: true, default: [] },
    prof: { type: 'string' },
    debug: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
});
if (opt.help) {
  console.log(readFileSync(new URL(import.meta.url), 'utf8').split('\n').filter((l) => l.startsWith('//')).map((l) => l.slice(3)).join('\n'));
  process.exit(0);
}
const UNITS = wholeOption(opt.units!, 'units');
const RELOADS = wholeOption(opt.reloads!, 'reloads');
const STEADY = wholeOption(opt.steady!, 'steady');
const AFTER = wholeOption(opt.after!, 'after');
const TOTAL = wholeOption(opt.total!, 'total');
const BURST = wholeOption(opt.burst!, 'burst');
const GAP = wholeOption(opt.gap!, 'gap');
if (TOTAL < AFTER) throw new Error(`--total (${TOTAL}) must be at least --after (${AFTER})`);
const PROF = opt.prof ? path.resolve(opt.prof) : undefined;
const plugins = opt.plugin!.map((s) => {
  const eq = s.indexOf('=');
  return eq > 0 ? { label: s.slice(0, eq), file: path.resolve(s.slice(eq + 1)) } : { label: path.basename(path.dirname(path.resolve(s))), file: path.resolve(s) };
});
if (plugins.length === 0) plugins.push({ label: 'this', file: path.join(repoRoot, 'systemdunits.plugin') });

interface Proc {
  label: string;
  child: ChildProcess;
  stderr: string;
  charted: boolean;
}
const resyncs = (p: Proc): number => (p.stderr.match(/resync: \d+ units, /g) ?? []).length;

const dir = mkdtempSync(path.join(os.tmpdir(), 'reload-cpu-'));
const sb = await startScriptSandbox();
const procs: Proc[] = [];
try {
  const { seconds: grew } = await growBenchUnits(sb, UNITS, (m) => console.log(m));
  console.log(`${UNITS} bench sockets up in ${grew.toFixed(0)} s`);
  const config = path.join(dir, 'reload.conf');
  writeFileSync(config, 'update_every: 1\n');
  for (const { label, file } of plugins) {
    const env: NodeJS.ProcessEnv = { ...process.env, DBUS_SYSTEM_BUS_ADDRESS: sb.busAddress, DEBUG: opt.debug ? `systemdunits:sync,${opt.debug}` : 'systemdunits:sync' };
    const prof = PROF ? ['--cpu-prof', `--cpu-prof-dir=${PROF}`, `--cpu-prof-name=${label}-reload-${UNITS}.cpuprofile`] : [];
    const [cmd, args] = buildCommand(file, prof);
    const child = spawn(cmd, [...args, '1', '--config', config], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const p: Proc = { label, child, stderr: '', charted: false };
    child.stdout!.on('data', () => (p.charted = true));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (p.stderr = (p.stderr + d).slice(-1_000_000)));
    child.stdin!.on('error', () => {});
    procs.push(p);
  }
  await until('every plugin charting', () => procs.every((p) => p.charted), { timeoutMs: 300_000 });
  await sleep(15_000); // past start-up and V8's memory reducer
  const costs: number[][] = procs.map(() => []);
  const totals: number[][] = procs.map(() => []);
  const rates: number[][] = procs.map(() => []);
  let signals = 0;
  for (let k = 0; k < RELOADS; k++) {
    // The steady rate right before this reload (the previous one's work done by now: see --total).
    const s0 = procs.map((p) => cpuNsOf(p.child.pid!)!);
    const t0 = performance.now();
    await sleep(STEADY * 1000);
    const rate = procs.map((p, i) => (cpuNsOf(p.child.pid!)! - s0[i]!) / (performance.now() - t0)); // ns per ms
    procs.forEach((_, i) => rates[i]!.push(rate[i]!));
    const before = procs.map(resyncs);
    const c0 = procs.map((p) => cpuNsOf(p.child.pid!)!);
    const r0 = performance.now();
    const mono0 = process.hrtime.bigint() / 1000n;
    const load = loadAvg();
    // Counted by a monitor of systemd's signals, for the run's line.
    const monitor = spawn('bash', [path.join(repoRoot, 'scripts/sandbox/systemd-sandbox.sh'), 'exec', sb.dir, 'busctl', 'monitor', '--match', "type='signal',sender='org.freedesktop.systemd1'"], { stdio: ['ignore', 'pipe', 'ignore'] });
    let seen = 0;
    monitor.stdout!.setEncoding('utf8').on('data', (d: string) => (seen += (d.match(/^‣ Type=signal/gm) ?? []).length));
    await sleep(500);
    for (let b = 0; b < BURST; b++) {
      if (b > 0) await sleep(GAP * 1000);
      await sb.execOk('systemctl', 'daemon-reload');
    }
    const reloadMs = performance.now() - r0 - 500 - (BURST - 1) * GAP * 1000;
    const ends = procs.map(() => 0);
    const c1 = procs.map(() => 0);
    await until('every plugin resynced', () => {
      procs.forEach((p, i) => {
        if (!ends[i] && resyncs(p) >= before[i]! + BURST) ends[i] = performance.now();
      });
      return ends.every((e) => e > 0);
    }, { timeoutMs: 300_000 });
    // Each plugin's CPU at its resync + AFTER and + TOTAL seconds.
    const c2 = procs.map(() => 0);
    const r1 = procs.map(() => 0);
    const r2 = procs.map(() => 0);
    await new Promise<void>((resolve) => {
      let pending = procs.length * 2;
      const at = (ms: number, f: () => void) => setTimeout(() => { f(); if (--pending === 0) resolve(); }, Math.max(0, ms - performance.now()));
      procs.forEach((p, i) => {
        at(ends[i]! + AFTER * 1000, () => { c1[i] = cpuNsOf(p.child.pid!)!; r1[i] = performance.now(); });
        at(ends[i]! + TOTAL * 1000, () => { c2[i] = cpuNsOf(p.child.pid!)!; r2[i] = performance.now(); });
      });
    });
    monitor.kill('SIGTERM');
    signals = seen;
    const line = procs.map((p, i) => {
      const ms = (c1[i]! - c0[i]! - rate[i]! * (r1[i]! - r0)) / 1e6;
      const total = (c2[i]! - c0[i]! - rate[i]! * (r2[i]! - r0)) / 1e6;
      costs[i]!.push(ms);
      totals[i]!.push(total);
      return `${p.label} ${ms.toFixed(0)} ms (${total.toFixed(0)} ms to +${TOTAL} s; steady ${(rate[i]! / 1e4).toFixed(3)}%)`;
    });
    // The window in CLOCK_MONOTONIC µs, the clock of V8's profiles: to pick the reload's samples out.
    if (PROF) console.log(`reload ${k + 1} window (monotonic µs): ${mono0}-${process.hrtime.bigint() / 1000n}`);
    console.log(`reload ${k + 1}: systemd ${reloadMs.toFixed(0)} ms, ~${signals} signals from systemd; plugin CPU above steady to its resync + ${AFTER} s: ${line.join(', ')} (load ${load.toFixed(2)} → ${loadAvg().toFixed(2)})`);
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  console.log(`\nN=${UNITS} sockets (+ their services), default job: a daemon-reload's plugin CPU, median of ${RELOADS}, to the resync + ${AFTER} s | + ${TOTAL} s:`);
  procs.forEach((p, i) => console.log(`${p.label.padEnd(8)} ${median(costs[i]!).toFixed(0)} ms (${costs[i]!.map((c) => c.toFixed(0)).join(', ')}) | ${median(totals[i]!).toFixed(0)} ms (${totals[i]!.map((c) => c.toFixed(0)).join(', ')}); steady ${(median(rates[i]!) / 1e4).toFixed(3)}% of a core (median)`));
} finally {
  const exited = (p: Proc) => (p.child.exitCode !== null || p.child.signalCode !== null ? Promise.resolve() : new Promise((r) => p.child.once('exit', r)));
  for (const p of procs) p.child.stdin!.end();
  await Promise.race([Promise.all(procs.map(exited)), sleep(5000)]);
  for (const p of procs) p.child.kill('SIGTERM');
  await Promise.all(procs.map(exited));
  if (opt.debug) for (const p of procs) writeFileSync(path.join(os.tmpdir(), `reload-cpu-${p.label}.stderr`), p.stderr);
  await sb.stop({ removeDir: true });
  rmSync(dir, { recursive: true, force: true });
}
