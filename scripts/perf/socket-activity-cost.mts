// What socket activity costs: N Accept=yes socket units in a private systemd, the plugin with
// socket_activity on, and the CPU of its rounds (the plugin's own figure per round, and systemd's
// and dbus-daemon's CPU over the window minus an idle window of the same plugin with
// socket_activity off). Counters are read only when they may have moved (see
// plugin/systemd/socket-poller.ts): on these idle sockets the first rounds read each socket once,
// the window (after the first round) then shows what idle sockets cost. Needs root (boots systemd
// in a namespace, like the tests).
//   npx tsx scripts/perf/socket-activity-cost.mts [--sockets 1000] [--seconds 60] [--every 10] [--max N]
// --max: socket_activity_max_sockets (default: --sockets, so the first round reads every socket and
// its figures are per round of all of them; 40 to see the default's rounds).
// Ctrl-C (or SIGTERM) stops the sandbox before exiting.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { PluginRun } from '../../harness/plugin.js';
import type { Sandbox } from '../../harness/sandbox.js';
import { sleep } from '../../harness/wait.js';
import { cpuOf } from './bench/proc.mjs';
import { startScriptSandbox } from './bench/session.mjs';

if (process.argv.includes('--help') || process.argv.includes('-h')) {
  console.log('usage: npx tsx scripts/perf/socket-activity-cost.mts [--sockets 1000] [--seconds 60] [--every 10] [--max N]   (root)');
  process.exit(0);
}

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const SOCKETS = arg('sockets', 1000);
const SECONDS = arg('seconds', 60);
const EVERY = arg('every', 10);
const MAX = arg('max', SOCKETS);

/** A process in the sandbox's namespaces, by command name. */
function pidOf(sb: Sandbox, comm: string): number | undefined {
  const out = execFileSync('pgrep', ['-x', '--ns', String(sb.pid), comm], { encoding: 'utf8' }).trim();
  return out ? Number(out.split('\n')[0]) : undefined;
}

/** CPU seconds of systemd (PID 1 of the sandbox) and dbus-daemon while `fn` runs. */
async function during(sb: Sandbox, dbus: number, fn: () => Promise<void>): Promise<{ systemd: number; dbus: number }> {
  const s0 = cpuOf(sb.pid)!.self;
  const d0 = cpuOf(dbus)!.self;
  await fn();
  return { systemd: cpuOf(sb.pid)!.self - s0, dbus: cpuOf(dbus)!.self - d0 };
}

function startPlugin(sb: Sandbox, activity: boolean): PluginRun {
  const file = path.join(sb.dir, `cost-${activity}.conf`);
  writeFileSync(file, `jobs:\n  - name: sockets\n    include: ['*.socket']\n    socket_activity: ${activity}\n    socket_activity_every: ${EVERY}\n    socket_activity_max_sockets: ${MAX}\n`);
  return new PluginRun(['1', '--config', file], { DBUS_SYSTEM_BUS_ADDRESS: sb.busAddress, DEBUG: 'systemdunits:activity,systemdunits:sockets' });
}

const sb = await startScriptSandbox();
try {
  const root = `/proc/${sb.pid}/root/run/systemd/system`;
  for (let i = 0; i < SOCKETS; i++) {
    writeFileSync(`${root}/act${i}.socket`, `[Socket]\nListenStream=/run/act${i}.sock\nAccept=yes\n`);
    writeFileSync(`${root}/act${i}@.service`, `[Service]\nExecStart=/bin/cat\nStandardInput=socket\n`);
  }
  await sb.daemonReload();
  await sb.execOk('sh', '-c', `systemctl start $(seq -f 'act%g.socket' 0 ${SOCKETS - 1})`);
  const dbus = pidOf(sb, 'dbus-daemon')!;
  console.log(`${SOCKETS} Accept=yes sockets started; measuring ${SECONDS} s with socket_activity off, then on (every ${EVERY} s)`);

  const idle = startPlugin(sb, false);
  await idle.waitFor('first samples', () => idle.samples.length > 0, 60_000);
  await sleep(3000); // past the start-up listing, so that the idle window measures the steady state
  const base = await during(sb, dbus, () => sleep(SECONDS * 1000));
  await idle.stop();

  const run = startPlugin(sb, true);
  await run.waitFor('first activity round', () => /read \d+ of \d+ sockets/.test(run.stderr), 60_000 + EVERY * 1000);
  const accept = /read Accept of (\d+) sockets in (\d+) ms/.exec(run.stderr);
  const first = [...run.stderr.matchAll(/read (\d+) of \d+ sockets \(\d+ changed or at their limit, \d+ wait; (\d+) failed\) in (\d+) ms, (\d+) ms CPU/g)];
  const on = await during(sb, dbus, () => sleep(SECONDS * 1000));
  const all = [...run.stderr.matchAll(/read (\d+) of \d+ sockets \(\d+ changed or at their limit, \d+ wait; (\d+) failed\) in (\d+) ms, (\d+) ms CPU/g)];
  // Per-read figures from the rounds that read (the first ones); the window's from all of its rounds.
  const reading = all.filter((r) => Number(r[1]) > 0);
  const rounds = all.slice(first.length);
  const skipped = (run.stderr.match(/tick skipped/g) ?? []).length;
  await run.stop();

  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
  const n = rounds.length;
  console.log(`Accept read once for ${accept?.[1]} sockets in ${accept?.[2]} ms (background, 4 at a time)`);
  console.log(`rounds in ${SECONDS} s: ${n} (sockets read in them: ${rounds.reduce((s, r) => s + Number(r[1]), 0)}, failed reads: ${rounds.reduce((s, r) => s + Number(r[2]), 0)}, ticks skipped: ${skipped})`);
  console.log(`a round that read (${reading.length}; sockets per round: ${reading[0]?.[1]}): wall ${med(reading.map((r) => Number(r[3])))} ms median, plugin CPU ${med(reading.map((r) => Number(r[4])))} ms median`);
  console.log(`a round in the window: plugin CPU ${med(rounds.map((r) => Number(r[4])))} ms median`);
  const per = (x: number) => (n ? ((x * 1000) / n).toFixed(0) : 'n/a');
  console.log(`systemd CPU: ${per(on.systemd - base.systemd)} ms per round (on ${on.systemd.toFixed(2)} s, idle ${base.systemd.toFixed(2)} s in ${SECONDS} s)`);
  console.log(`dbus-daemon CPU: ${per(on.dbus - base.dbus)} ms per round (on ${on.dbus.toFixed(2)} s, idle ${base.dbus.toFixed(2)} s in ${SECONDS} s)`);
} finally {
  await sb.stop({ removeDir: true });
}
