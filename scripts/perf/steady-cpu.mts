// The plugin's steady CPU, before/after in one sitting: one sandboxed systemd with N bench sockets
// (scripts/perf/bench/units.mts; their services are loaded too), one or more builds of the plugin
// running side by side with the default job (update_every 1), and a floor program (Node writing
// the same number of bytes, pre-rendered, to a pipe once a second). Each one's CPU is the sum of
// its threads' /proc/PID/task/*/schedstat time on CPU over one window that starts ≥ --skip seconds
// after the youngest was launched (V8's memory reducer compacts ~10 s after launch).
// Needs root (boots systemd in a namespace, like the tests).
//   npx tsx scripts/perf/steady-cpu.mts [--units 1000] [--seconds 60] [--skip 15]
//       [--plugin label=path/to/systemdunits.plugin ...] [--prof DIR] [--no-floor] [--debug WHAT]
//       [--no-activity] [--node-flag F ...] [--windows K]
// --windows K: K windows one after the other (each --seconds long), each printed: whether the CPU
// of a young process (V8 still compiling its once-a-second code) is that of a settled one.
// Default plugin: this checkout's ./systemdunits.plugin (build it first). A second build to
// compare with: `node scripts/build/build.mjs /tmp/base/dist/systemdunits.mjs` from the other
// checkout, copy systemdunits.plugin beside dist/, pass --plugin base=/tmp/base/systemdunits.plugin.
// --prof DIR: each plugin writes a V8 CPU profile there when stopped (--cpu-prof).
// --debug WHAT: the plugins' DEBUG (e.g. systemdunits:activity), their stderr kept in $TMPDIR/steady-cpu-LABEL.stderr.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repoRoot } from '../../harness/run.js';
import { defaultJob } from '../../plugin/config/index.js';
import { sleep, until } from '../../harness/wait.js';
import { LAUNCHER_FLAGS, buildCommand, growBenchUnits, startScriptSandbox } from './bench/session.mjs';
import { cpuNsOf, loadAvg, statusOf } from './bench/proc.mjs';
import { wholeOption } from './bench/options.mjs';

const argv = process.argv.slice(2);
if (argv.includes('--help') || argv.includes('-h')) {
  console.log(readFileSync(new URL(import.meta.url), 'utf8').split('\n').filter((l) => l.startsWith('//')).map((l) => l.slice(3)).join('\n'));
  process.exit(0);
}
const num = (name: string, fallback: number): number => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : fallback;
};
const UNITS = num('units', 1000);
const SECONDS = num('seconds', 60);
const SKIP = num('skip', 15);
const PROF = argv.includes('--prof') ? path.resolve(argv[argv.indexOf('--prof') + 1]!) : undefined;
const DEBUG = argv.includes('--debug') ? argv[argv.indexOf('--debug') + 1] : undefined;
/** --node-flag F (repeatable): more node flags for the plugins (e.g. --trace-gc, which writes to stdout). */
const NODE_FLAGS = argv.flatMap((a, i) => (a === '--node-flag' ? [argv[i + 1]!] : []));
const NO_ACTIVITY = argv.includes('--no-activity');
const WINDOWS = argv.includes('--windows') ? wholeOption(argv[argv.indexOf('--windows') + 1] ?? '', 'windows') : 1;
const FLOOR = !argv.includes('--no-floor');
const plugins = argv.flatMap((a, i) => (a === '--plugin' ? [argv[i + 1]!] : [])).map((s) => {
  const eq = s.indexOf('=');
  return eq > 0 ? { label: s.slice(0, eq), file: path.resolve(s.slice(eq + 1)) } : { label: path.basename(path.dirname(path.resolve(s))), file: path.resolve(s) };
});
if (plugins.length === 0) plugins.push({ label: 'this', file: path.join(repoRoot, 'systemdunits.plugin') });

const cpuNs = cpuNsOf;

/** Own memory (RssAnon + RssShmem) and RSS, MB. */
function memOf(pid: number): { own: number; rss: number } {
  const kb = statusOf(pid) ?? (() => NaN);
  return { own: (kb('RssAnon') + kb('RssShmem')) / 1024, rss: kb('VmRSS') / 1024 };
}

interface Proc {
  label: string;
  child: ChildProcess;
  startedMs: number;
  /** bytes read from its stdout, and the latest ones (a copy of a real batch for the floor) */
  bytes: number;
  tail: Buffer[];
  stderr: string;
}

/** Reads stdout as the agent does: every chunk as it comes, nothing kept but a count. */
function watch(label: string, child: ChildProcess): Proc {
  const p: Proc = { label, child, startedMs: performance.now(), bytes: 0, tail: [], stderr: '' };
  child.stdout!.on('data', (d: Buffer) => {
    if (NODE_FLAGS.includes('--trace-gc')) for (const m of d.toString('latin1').matchAll(/^\[\d+:0x[0-9a-f]+\]\s+\d+ ms: .*$/gm)) console.log(`${label}: ${m[0]}`);
    p.bytes += d.length;
    p.tail.push(d);
    if (p.tail.length > 64) p.tail.shift();
  });
  child.stderr!.on('data', (d: Buffer) => (p.stderr = (p.stderr + d.toString()).slice(-200_000)));
  child.stdin!.on('error', () => {});
  return p;
}


const FLOOR_PROGRAM = `
const { readFileSync } = require('node:fs');
const batch = readFileSync(process.argv[2]);
setInterval(() => process.stdout.write(batch), 1000);
`;

const dir = mkdtempSync(path.join(os.tmpdir(), 'steady-cpu-'));
const sb = await startScriptSandbox();
const procs: Proc[] = [];
try {
  const { seconds: grew } = await growBenchUnits(sb, UNITS, (m) => console.log(m));
  console.log(`${UNITS} bench sockets up in ${grew.toFixed(0)} s`);
  const config = path.join(dir, 'steady.conf');
  // The built-in default job, every second; --no-activity: the same job without socket activity.
  const includes = defaultJob(1).include.map((g) => `'${g}'`).join(', ');
  writeFileSync(config, NO_ACTIVITY ? `update_every: 1\njobs:\n  - name: service_units\n    include: [${includes}]\n    socket_activity: false\n` : 'update_every: 1\n');

  for (const { label, file } of plugins) {
    const env: NodeJS.ProcessEnv = { ...process.env, DBUS_SYSTEM_BUS_ADDRESS: sb.busAddress };
    // --debug: its debug output (e.g. systemdunits:activity) kept in DIR/LABEL.stderr
    if (DEBUG) env.DEBUG = DEBUG;
    else delete env.DEBUG;
    // node refuses --cpu-prof in NODE_OPTIONS: then node is run as the launcher runs it, on its bundle.
    const prof = PROF ? ['--cpu-prof', `--cpu-prof-dir=${PROF}`, `--cpu-prof-name=${label}-${UNITS}.cpuprofile`] : [];
    const [cmd, args] = buildCommand(file, [...prof, ...NODE_FLAGS]);
    procs.push(watch(label, spawn(cmd, [...args, '1', '--config', config], { env, stdio: ['pipe', 'pipe', 'pipe'] })));
  }
  // Steady output: a few seconds of it, to size the floor's batch.
  const gone = () => procs.find((p) => p.child.exitCode !== null || p.child.signalCode !== null);
  await until('every plugin charting', () => procs.every((p) => p.bytes > 0), {
    timeoutMs: 300_000,
    abort: () => (gone() ? `${gone()!.label} exited: ${gone()!.stderr.slice(-2000)}` : undefined),
  });
  await sleep(5000);
  const before = procs.map((p) => p.bytes);
  await sleep(5000);
  const perTick = Math.round((procs[0]!.bytes - before[0]!) / 5);
  if (FLOOR) {
    const tail = Buffer.concat(procs[0]!.tail);
    const batch = Buffer.alloc(perTick);
    for (let i = 0; i < perTick; i += tail.length) tail.copy(batch, i, 0, Math.min(tail.length, perTick - i));
    writeFileSync(path.join(dir, 'batch'), batch);
    writeFileSync(path.join(dir, 'floor.cjs'), FLOOR_PROGRAM);
    const child = spawn(process.execPath, [...LAUNCHER_FLAGS, path.join(dir, 'floor.cjs'), path.join(dir, 'batch')], { stdio: ['pipe', 'pipe', 'pipe'] });
    procs.push(watch('floor', child));
  }
  const youngest = Math.max(...procs.map((p) => p.startedMs));
  await sleep(Math.max(0, youngest + SKIP * 1000 - performance.now()));

  for (let w = 0; w < WINDOWS; w++) {
    const load0 = loadAvg();
    const t0 = performance.now();
    const c0 = procs.map((p) => cpuNs(p.child.pid!));
    const b0 = procs.map((p) => p.bytes);
    await sleep(SECONDS * 1000);
    const c1 = procs.map((p) => cpuNs(p.child.pid!));
    const wallS = (performance.now() - t0) / 1000;
    const load1 = loadAvg();
    const fromS = (t0 - youngest) / 1000;
    const floorPct = FLOOR ? ((c1.at(-1)! - c0.at(-1)!) / 1e9 / wallS) * 100 : undefined;
    console.log(`\nN=${UNITS} sockets (+ their services), default job${NO_ACTIVITY ? ' without socket activity' : ''}, update_every 1; window ${w + 1}/${WINDOWS}: ${wallS.toFixed(1)} s from ${fromS.toFixed(0)} s after launch; load ${load0.toFixed(2)} → ${load1.toFixed(2)}; ${perTick} bytes a tick`);
    procs.forEach((p, i) => {
      if (c0[i] === undefined || c1[i] === undefined) return console.log(`${p.label}: exited early\n${p.stderr.slice(-2000)}`);
      const pct = ((c1[i]! - c0[i]!) / 1e9 / wallS) * 100;
      const m = memOf(p.child.pid!);
      const vsFloor = floorPct && p.label !== 'floor' ? ` (${(pct / floorPct).toFixed(2)}× floor)` : '';
      console.log(`${p.label.padEnd(8)} ${pct.toFixed(3)}% of a core${vsFloor}; ${((p.bytes - b0[i]!) / wallS / 1024).toFixed(1)} KiB/s out; own ${m.own.toFixed(1)} MB, RSS ${m.rss.toFixed(1)} MB`);
    });
  }
} finally {
  // stdin's EOF: the plugin exits by itself, and writes its profile (SIGTERM would kill it at once).
  const exited = (p: Proc) => (p.child.exitCode !== null || p.child.signalCode !== null ? Promise.resolve() : new Promise((r) => p.child.once('exit', r)));
  for (const p of procs) p.child.stdin!.end();
  await Promise.race([Promise.all(procs.map(exited)), sleep(5000)]);
  for (const p of procs) p.child.kill('SIGTERM');
  await Promise.all(procs.map(exited));
  if (DEBUG) for (const p of procs) writeFileSync(path.join(os.tmpdir(), `steady-cpu-${p.label}.stderr`), p.stderr);
  await sb.stop({ removeDir: true });
  rmSync(dir, { recursive: true, force: true });
}
