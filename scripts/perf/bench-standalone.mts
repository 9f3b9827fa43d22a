// The standalone executable (npm run release) against the node + bundle launcher, on one real
// systemd (a sandbox with N extra socket units): start-up (spawn to the first complete sample,
// the median of --runs), steady CPU (user+system over --seconds after a 5 s settle) and RSS at the
// end of that window (all of it, and the anonymous part alone: RssAnon+RssShmem, the plugin's own
// memory; the rest is pages of the executable file, shared with any other process mapping it),
// threads. Run through scripts/perf/bench.sh --standalone [--n N] [--seconds S] [--runs K]
// [--node24 BIN] [--exe NAME=PATH]…; needs root and dist/release/systemdunits.plugin.
// Variants: the launcher on the host's node, the launcher on the Node the executable is made of
// (--node24: the same V8, so the difference is the packaging alone), the executable, and any other
// executables to compare (--exe, e.g. one made with other flags).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { repoRoot, runOk } from '../../harness/run.js';

const { values } = parseArgs({
  options: {
    n: { type: 'string', default: '200' },
    seconds: { type: 'string', default: '30' },
    runs: { type: 'string', default: '5' },
    node24: { type: 'string' },
    exe: { type: 'string', multiple: true, default: [] },
  },
});
const N = Number(values.n);
const SECONDS = Number(values.seconds);
const RUNS = Number(values.runs);
if (!Number.isInteger(N) || N < 0) throw new Error(`--n wants a number of units, got '${values.n}'`);
const sea = path.join(repoRoot, 'dist/release/systemdunits.plugin');
if (!existsSync(sea)) throw new Error(`${sea} missing: npm run release first`);
const HZ = 100; // USER_HZ on Linux
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Variant { name: string; cmd: string; env: NodeJS.ProcessEnv }
const variants: Variant[] = [{ name: `launcher, node ${process.version}`, cmd: path.join(repoRoot, 'systemdunits.plugin'), env: {} }];
if (values.node24) {
  const v = (await runOk(values.node24, ['--version'])).stdout.trim();
  variants.push({ name: `launcher, node ${v}`, cmd: path.join(repoRoot, 'systemdunits.plugin'), env: { NODE: values.node24 } });
}
variants.push({ name: 'standalone executable', cmd: sea, env: {} });
for (const e of values.exe) {
  const eq = e.lastIndexOf('='); // a name may hold flags (--x=1); a path seldom has '='
  if (eq < 1 || !existsSync(e.slice(eq + 1))) throw new Error(`--exe wants NAME=PATH of an executable, got '${e}'`);
  variants.push({ name: e.slice(0, eq), cmd: path.resolve(e.slice(eq + 1)), env: {} });
}

const stat = async (pid: number) => {
  const s = await readFile(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return { ticks: Number(f[11]) + Number(f[12]) };
};
const status = async (pid: number) => {
  const s = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1]);
  return { rssKb: kb('VmRSS'), anonKb: kb('RssAnon') + kb('RssShmem'), threads: kb('Threads') };
};

/** Spawns the plugin; resolves with the process, the ms to its first END and the CPU ms it took. */
function start(v: Variant, bus: string): Promise<{ pid: number; ms: number; cpuMs: number; stop: () => Promise<void> }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    // The environment the agent gives its plugins that matters here: MALLOC_ARENA_MAX=1.
    const env = { PATH: process.env.PATH, DBUS_SYSTEM_BUS_ADDRESS: bus, MALLOC_ARENA_MAX: '1', LC_ALL: 'C', ...v.env };
    const child = spawn(v.cmd, ['1'], { env, stdio: ['pipe', 'pipe', 'inherit'] });
    let buf = '';
    let done = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      if (done) return;
      buf += d;
      if (/^END$/m.test(buf)) {
        done = true;
        buf = '';
        const ms = performance.now() - t0;
        child.stdout.resume();
        void stat(child.pid!).then((st) => resolve({
          pid: child.pid!,
          ms,
          cpuMs: (st.ticks / HZ) * 1000,
          stop: () => new Promise((r) => { child.once('exit', () => r()); child.kill('SIGTERM'); }),
        }), reject);
      }
    });
    child.on('exit', (code) => { if (!done) reject(new Error(`${v.name} exited ${code} before its first sample`)); });
  });
}

const state = await mkdtemp('/var/lib/systemdunits-tests/bench-sea-');
const sbx = path.join(repoRoot, 'scripts/sandbox/systemd-sandbox.sh');
try {
  const bus = (await runOk('bash', [sbx, 'start', path.join(state, 'sb')], { timeoutMs: 120_000 })).stdout.trim();
  // N socket units on unix sockets, started: a host with a few hundred units (or 10,000). Made by a
  // loop in the sandbox: a script naming every unit outgrows the kernel's limit on one argument.
  const script = `i=0; while [ $i -lt ${N} ]; do
  printf '[Socket]\\nListenStream=/run/bench$i.sock\\n' >/run/systemd/system/bench$i.socket
  printf '[Service]\\nExecStart=/bin/true\\n' >/run/systemd/system/bench$i.service
  i=$((i + 1)); done
systemctl daemon-reload && i=0 && while [ $i -lt ${N} ]; do echo bench$i.socket; i=$((i + 1)); done | xargs systemctl start`;
  await runOk('bash', [sbx, 'exec', path.join(state, 'sb'), 'sh', '-c', script], { timeoutMs: 900_000 });
  console.error(`bench: ${N} socket units; ${RUNS} start-ups and a ${SECONDS}s steady window per variant`);
  // Start-ups round-robin over the variants, so a busy moment of the machine hits all alike; CPU
  // time to the first sample is the figure the machine's load does not move.
  const startups = variants.map(() => [] as number[]);
  const startCpu = variants.map(() => [] as number[]);
  for (let i = 0; i < RUNS; i++) {
    for (const [k, v] of variants.entries()) {
      const p = await start(v, bus);
      startups[k]!.push(p.ms);
      startCpu[k]!.push(p.cpuMs);
      await p.stop();
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const rows: string[] = [];
  for (const [k, v] of variants.entries()) {
    const p = await start(v, bus);
    await sleep(5000);
    const a = await stat(p.pid);
    await sleep(SECONDS * 1000);
    const b = await stat(p.pid);
    const st = await status(p.pid);
    await p.stop();
    const cpu = ((b.ticks - a.ticks) / HZ / SECONDS) * 100;
    rows.push(`| ${v.name} | ${median(startups[k]!).toFixed(0)} ms | ${median(startCpu[k]!).toFixed(0)} ms | ${cpu.toFixed(2)} % | ${(st.rssKb / 1024).toFixed(1)} MB | ${(st.anonKb / 1024).toFixed(1)} MB | ${st.threads} |`);
    console.error(`bench: ${v.name} done`);
  }
  console.log(`| variant (${N} sockets) | start-up to first sample (median of ${RUNS}) | CPU time to first sample | steady CPU (${SECONDS}s) | RSS | of it anonymous | threads |`);
  console.log('|---|---|---|---|---|---|---|');
  for (const r of rows) console.log(r);
  console.log(`\nstandalone executable: ${((await readFile(sea)).length / 1024 / 1024).toFixed(1)} MB`);
} finally {
  await runOk('bash', [sbx, 'stop', path.join(state, 'sb')]).catch(() => undefined);
  await rm(state, { recursive: true, force: true });
}
