// The plugin's own memory and the CPU of its resyncs at N bench sockets (and their services), with
// the default job. Two runs of the plugin one after the other: one with no safety resync in its
// window, one resyncing every 5 s (SYSTEMDUNITS_RESYNC_EVERY); each measured over the same window
// from 15 s after launch. Figures: RssAnon + RssShmem (own), VmRSS and VmHWM (the peak: while
// listing) from /proc/PID/status; CPU as the sum of /proc/PID/task/*/schedstat first fields. The
// CPU of one safety resync is the difference of the two windows over the resyncs made: the
// plugin's other periodic work (socket counters, pings) evens out over the window rather than
// landing in or out of one resync's; beside it, each resync's CPU timed as the bench times it
// (bench/resync-cpu.mts), less noisy. Resyncs 5 s apart: the window begins at about the 3rd, when
// V8 has compiled the resync's code, so these are the later resyncs' figure; the first safety
// resync's (several times more at 20,000 units) is the bench's to time. Needs
// root (boots systemd in a namespace, like the tests); the built bundle (`npm run build` first).
//   npx tsx scripts/perf/memory.mts [--n 2000] [--window 60] [--reload] [--launcher PATH] [--snapshot]
// --launcher: another copy's systemdunits.plugin (e.g. a build of the code before a change).
// --reload: after the first run's window, one daemon-reload and the CPU of the resync after it
// (its window's CPU less the steady rate; slow at 10,000: systemd's reload grows with N²).
// Ctrl-C (or SIGTERM) stops the sandbox before exiting.
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { repoRoot } from '../../harness/run.js';
import { cpuNsOf, loadAvg, sleep, statusOf } from './bench/proc.mjs';
import { AFTER_MS, BEFORE_MS, firstAndLater, resyncCpu } from './bench/resync-cpu.mjs';
import { growBenchUnits, startScriptSandbox } from './bench/session.mjs';
import { wholeOption } from './bench/options.mjs';

// Strict, like the other bench scripts: an unknown option (or --help) must not start a benchmark.
const { values: opt } = parseArgs({
  options: {
    n: { type: 'string', default: '2000' },
    window: { type: 'string', default: '60' },
    launcher: { type: 'string' },
    reload: { type: 'boolean', default: false },
    snapshot: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
});
if (opt.help) {
  console.log('usage: npx tsx scripts/perf/memory.mts [--n 2000] [--window 60] [--reload] [--launcher PATH] [--snapshot]');
  process.exit(0);
}
const N = wholeOption(opt.n!, 'n');
const WINDOW = wholeOption(opt.window!, 'window');
const LAUNCHER = opt.launcher ? path.resolve(opt.launcher) : path.join(repoRoot, 'systemdunits.plugin');
const RELOAD = opt.reload!;
/** SIGUSR2 after each memory figure: with a launcher whose node has --heapsnapshot-signal=SIGUSR2. */
const SNAPSHOT = opt.snapshot!;
const MB = 1024;

/** Memory figures of a process in MB, from /proc/PID/status. */
function memOf(pid: number): { own: number; anon: number; shmem: number; rss: number; hwm: number } {
  const kb = statusOf(pid) ?? (() => NaN);
  const anon = kb('RssAnon') / MB;
  const shmem = kb('RssShmem') / MB;
  return { own: anon + shmem, anon, shmem, rss: kb('VmRSS') / MB, hwm: kb('VmHWM') / MB };
}

/** ns on CPU of all the process's threads; NaN once it is gone. */
const cpuNs = (pid: number): number => cpuNsOf(pid) ?? NaN;

const f1 = (x: number) => x.toFixed(1);
const say = (line: string) => console.log(`${line}  (load ${loadAvg().toFixed(2)})`);
let snapshotOf: number | undefined;
const show = (what: string, m: ReturnType<typeof memOf>) => {
  if (SNAPSHOT && snapshotOf) process.kill(snapshotOf, 'SIGUSR2');
  say(`${what}: own ${f1(m.own)} MB (anon ${f1(m.anon)}, shmem ${f1(m.shmem)}), RSS ${f1(m.rss)} MB, HWM ${f1(m.hwm)} MB`);
};

const sb = await startScriptSandbox();
try {
  const { seconds } = await growBenchUnits(sb, N, (m) => process.stderr.write(`${m}\n`));
  say(`${N} bench sockets up in ${seconds.toFixed(0)} s`);

  const empty = mkdtempSync(path.join(os.tmpdir(), 'memory-'));

  /** Runs the plugin, with the default job: no config file anywhere it looks. */
  const launch = (every: number) => {
    const child = spawn(LAUNCHER, ['1'], {
      env: { PATH: process.env.PATH, NETDATA_USER_CONFIG_DIR: empty, NETDATA_STOCK_CONFIG_DIR: empty, DBUS_SYSTEM_BUS_ADDRESS: sb.busAddress, DEBUG: 'systemdunits:sync,systemdunits:memory', SYSTEMDUNITS_RESYNC_EVERY: String(every) },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const run = { child, pid: child.pid!, launched: performance.now(), firstBatchAt: 0, stderr: '' };
    snapshotOf = run.pid;
    child.stdout.on('data', (d: Buffer) => {
      if (!run.firstBatchAt && d.includes('BEGIN ')) run.firstBatchAt = performance.now();
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (run.stderr += d));
    return run;
  };
  type Run = ReturnType<typeof launch>;
  const completed = (r: Run) => [...r.stderr.matchAll(/resync: (\d+) units, (\d+) new \(listed in (\d+) ms, completed in (\d+) ms\)/g)];
  const stop = async (r: Run) => {
    const other = r.stderr.split('\n').filter((l) => l && !/systemdunits:(sync|memory)/.test(l) && !/ failed \(Result=/.test(l));
    other.slice(0, 5).forEach((l) => console.log(`  stderr: ${l.slice(0, 200)}`));
    const gcs = r.stderr.split('\n').filter((l) => /systemdunits:memory/.test(l));
    console.log(`  ${gcs.length} memory lines; the first and last: ${[gcs[0], gcs.at(-1)].map((l) => l?.replace(/^.*systemdunits:memory /, '')).join(' | ')}`);
    r.child.kill('SIGINT');
    await new Promise((resolve) => r.child.once('exit', resolve));
  };

  /** Start-up, then the window: CPU used in it (ms) and resyncs completed in it. */
  const measure = async (label: string, every: number): Promise<{ run: Run; cpuMs: number; resyncs: number }> => {
    const r = launch(every);
    while (!r.firstBatchAt && performance.now() - r.launched < 600_000) await sleep(20);
    const startCpu = cpuNs(r.pid) / 1e6;
    say(`${label}: first batch ${((r.firstBatchAt - r.launched) / 1000).toFixed(2)} s after launch, ${startCpu.toFixed(0)} ms of CPU; ${completed(r)[0]?.[0] ?? 'no resync line'}`);
    show(`${label}: at the first batch`, memOf(r.pid));
    // When the peak comes: RSS every 50 ms up to 15 s after launch.
    let peak = { rss: 0, at: 0 };
    while (performance.now() < r.launched + 15_000) {
      const rss = memOf(r.pid).rss;
      if (rss > peak.rss) peak = { rss, at: (performance.now() - r.launched) / 1000 };
      await sleep(50);
    }
    say(`${label}: RSS peaked at ${f1(peak.rss)} MB ${peak.at.toFixed(1)} s after launch`);
    show(`${label}: 15 s after launch`, memOf(r.pid));
    const [c0, n0] = [cpuNs(r.pid), completed(r).length];
    // The plugin's CPU every 10 ms, and when each resync's line came.
    const cpuAt: [number, number][] = [];
    const seen: number[] = [];
    const end = performance.now() + WINDOW * 1000;
    while (performance.now() < end) {
      cpuAt.push([performance.now(), cpuNs(r.pid)]);
      while (completed(r).length > n0 + seen.length) seen.push(performance.now());
      await sleep(10);
    }
    const cpuMs = (cpuNs(r.pid) - c0) / 1e6;
    const resyncs = completed(r).length - n0;
    // Each resync's CPU as the bench times it (bench/resync-cpu.mts): its window less the rate
    // outside every window; by place in the run (the first in this window is the n0-th safety resync).
    const lines = completed(r)
      .slice(n0, n0 + seen.length)
      .map((m, i) => ({ atMs: seen[i]!, listedMs: Number(m[3]), completedMs: Number(m[4]) }));
    const { cpuMs: own, rate } = resyncCpu(cpuAt.map(([t, ns]) => ({ t, ms: ns / 1e6 })), lines, cpuAt[0]?.[0] ?? 0);
    if (lines.length > 0) say(`${label}: each resync's CPU (${BEFORE_MS} ms before its listing to ${AFTER_MS / 1000} s after its line, less the rate outside those, ${(rate * 100).toFixed(3)}%): ${firstAndLater(own, n0)}`);
    show(`${label}: after the ${WINDOW} s window (${resyncs} resyncs in it)`, memOf(r.pid));
    say(`${label}: CPU ${cpuMs.toFixed(0)} ms in the window (${((cpuMs / WINDOW / 1000) * 100).toFixed(3)}% of a core)`);
    return { run: r, cpuMs, resyncs };
  };

  const quiet = await measure('no resync', 3600);
  if (RELOAD) {
    // systemd's reload at 10,000 instances outlasts the sandbox's exec timeout: started detached,
    // and timed by the plugin's own lines (Reloading(false) starts its resync).
    const r = quiet.run;
    const [before, begun] = [completed(r).length, (r.stderr.match(/resync: daemon-reload/g) ?? []).length];
    const steady = quiet.cpuMs / WINDOW / 1000; // ms per ms
    const c0 = cpuNs(r.pid);
    const t0 = performance.now();
    await sb.execOk('sh', '-c', 'setsid -f systemctl daemon-reload >/dev/null 2>&1');
    while ((r.stderr.match(/resync: daemon-reload/g) ?? []).length === begun) await sleep(20);
    const [c1, t1] = [cpuNs(r.pid), performance.now()];
    while (completed(r).length === before) await sleep(20);
    await sleep(3000);
    const [c2, t2] = [cpuNs(r.pid), performance.now()];
    const during = (c1 - c0) / 1e6 - steady * (t1 - t0);
    const after = (c2 - c1) / 1e6 - steady * (t2 - t1);
    say(`daemon-reload: systemd took ${((t1 - t0) / 1000).toFixed(0)} s; plugin CPU above steady ${during.toFixed(0)} ms while it reloaded, ${after.toFixed(0)} ms for the resync after it (to 3 s after: ${completed(r).at(-1)![0]})`);
    show('3 s after the reload\'s resync', memOf(r.pid));
  }
  await stop(quiet.run);
  const busy = await measure('resync every 5 s', 5);
  await stop(busy.run);
  const last = completed(busy.run).at(-1);
  say(`one safety resync: ${((busy.cpuMs - quiet.cpuMs) / Math.max(1, busy.resyncs)).toFixed(1)} ms of plugin CPU (${busy.resyncs} in the window; the last: ${last?.[0]})`);
} finally {
  await sb.stop({ removeDir: true });
}
