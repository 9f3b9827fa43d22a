// Soak: the plugin under unit churn and repeated faults for a long time (default 30 min), on a
// real systemd, with its RSS and open file descriptors printed as it goes. Not part of CI.
// Started by scripts/perf/soak.sh (see there for the options). Fails (exit 1) when the plugin dies, stops
// reporting the right states after a fault, or its RSS or file descriptors grow.
//
// Each cycle: ~1000 transient units created and removed (500 transient timers with their
// services, as `systemd-run --on-active` makes them), Accept=yes connections (an instance unit
// each), a storm of template instances started and stopped in one call, then one fault in turn:
// dbus-daemon restarted; dbus-daemon gone for 10 s; systemd frozen (SIGSTOP) for 8 s;
// daemon-reexec; daemon-reload amid changes. After each: a socket failed and recovered must be
// charted 5 then 1, and the socket chart must match systemctl's listing. The plugin runs with a
// low message limit per connection, so it also replaces its connection on purpose again and again.
// Cycles are separated by an idle pause (--pause) so the machine is not saturated throughout; RSS
// and fds are read at the end of a pause (idle), at most every --report-every seconds.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { acceptConnections, busGoneFor, freezeSystemd, procStats, settleVsSystemd, writeAcceptSocket, writeStormTemplate } from '../../harness/faults.js';
import { sleep } from '../../harness/wait.js';
import { PluginRun } from '../../harness/plugin.js';
import { repoRoot } from '../../harness/run.js';
import { startSandbox, type Sandbox } from '../../harness/sandbox.js';
import { SystemdClient, pluginMatchRules } from '../../harness/systemd-client.js';
import { failSocket, recoverSocket, writeSocket } from '../../harness/units.js';

const { values: argv } = parseArgs({
  options: {
    minutes: { type: 'string', default: '30' },
    'report-every': { type: 'string', default: '60' },
    'max-messages': { type: 'string', default: '10000' },
    pause: { type: 'string', default: '10' },
    state: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
});
if (argv.help) {
  console.log(`usage: bash scripts/perf/soak.sh [--minutes N] [--report-every S] [--max-messages M]
  --minutes N        how long (default 30)
  --report-every S   seconds between RSS/fd lines (default 60)
  --max-messages M   the plugin replaces its D-Bus connection after M messages (default 10000)
  --pause S          idle seconds between cycles (default 10)`);
  process.exit(0);
}
const MINUTES = Number(argv.minutes);
const REPORT_S = Number(argv['report-every']);
const PAUSE_S = Number(argv.pause);
if (!(MINUTES > 0) || !(REPORT_S > 0) || !(PAUSE_S >= 0)) throw new Error('--minutes, --report-every and --pause take positive numbers');

const SOCKETS = 'systemdunits_service_units.socket_unit_state';
const say = (msg: string) => process.stdout.write(`[soak ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

const cleanups: Array<() => unknown> = [];
async function cleanup(): Promise<void> {
  for (const c of cleanups.splice(0).reverse()) {
    try {
      await c();
    } catch (e) {
      say(`cleanup: ${(e as Error).message}`);
    }
  }
}
for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
  process.on(sig, () => void cleanup().finally(() => process.exit(code)));
}

interface Point {
  t: number;
  rssKb: number;
  fds: number;
}

async function main(): Promise<number> {
  let stateDir = argv.state;
  if (!stateDir) {
    mkdirSync(path.join(repoRoot, '.sandbox'), { recursive: true });
    const dir = (stateDir = mkdtempSync(path.join(repoRoot, '.sandbox', 'soak-')));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  }
  const sb: Sandbox = await startSandbox(path.join(stateDir, 'sandbox'));
  cleanups.push(() => sb.stop());
  for (let i = 0; i < 50; i++) await writeSocket(sb, `soak${i}`);
  await writeSocket(sb, 'probe');
  await writeAcceptSocket(sb, 'acc');
  await writeStormTemplate(sb);
  await sb.daemonReload();
  await sb.execOk('systemctl', 'start', 'probe.socket', 'acc.socket', ...Array.from({ length: 50 }, (_, i) => `soak${i}.socket`));

  const run = new PluginRun(['1'], {
    DBUS_SYSTEM_BUS_ADDRESS: sb.busAddress,
    SYSTEMDUNITS_MAX_MESSAGES_PER_CONNECTION: argv['max-messages']!,
  });
  cleanups.push(() => run.stop());
  await run.waitForValue(SOCKETS, 'probe.socket', 1, 30_000);
  const pid = run.child.pid!;
  say(`sandbox pid ${sb.pid}, plugin pid ${pid}; ${MINUTES} min, RSS/fds every ${REPORT_S} s`);

  const points: Point[] = [];
  const t0 = Date.now();
  const problems: string[] = [];
  let created = 0;
  let accepted = 0;
  let storms = 0;
  let faults = 0;
  let lastReport = 0;
  const report = (force = false) => {
    const t = (Date.now() - t0) / 1000;
    if (!force && t - lastReport < REPORT_S) return;
    lastReport = t;
    const s = procStats(pid);
    points.push({ t, ...s });
    const replaced = (run.stderr.match(/replacing the D-Bus connection/g) ?? []).length;
    say(
      `t=${t.toFixed(0).padStart(5)} s  RSS ${(s.rssKb / 1024).toFixed(1)} MB  fds ${s.fds}  ` +
        `transient units ${created}  accepted ${accepted}  storms ${storms}  faults ${faults}  connections replaced ${replaced}`,
    );
    // What the plugin holds in memory in the test harness is not the plugin's: drop it.
    run.samples.splice(0, Math.max(0, run.samples.length - 100));
    run.lines.splice(0);
    run.lineTimes.splice(0);
  };

  const faultsInTurn: Array<[string, (c: SystemdClient | undefined) => Promise<void>]> = [
    ['dbus-daemon restarted', async () => void (await sb.execOk('systemctl', 'restart', 'dbus.service'))],
    ['dbus-daemon gone for 10 s', async () => void (await busGoneFor(sb, 10_000))],
    ['systemd frozen for 8 s', async () => void (await freezeSystemd(sb, 8_000))],
    ['daemon-reexec', async () => void (await sb.execOk('systemctl', 'daemon-reexec'))],
    [
      'daemon-reload amid changes',
      async () => {
        await sb.writeUnit('reload-extra.socket', `[Socket]\nListenStream=/run/reload-extra-${faults}.sock\n`);
        await sb.writeUnit('reload-extra.service', '[Service]\nExecStart=/bin/sleep infinity\n');
        const reload = sb.execOk('systemctl', 'daemon-reload');
        await failSocket(sb, `soak${faults % 50}`);
        await reload;
        await sb.exec('systemctl', 'start', 'reload-extra.socket');
        await recoverSocket(sb, `soak${faults % 50}`);
      },
    ],
  ];

  let cycle = 0;
  while (Date.now() - t0 < MINUTES * 60_000) {
    if (run.child.exitCode !== null) {
      problems.push(`the plugin exited (${run.child.exitCode}): ${run.stderr.slice(-2000)}`);
      break;
    }
    cycle++;
    // Churn, on a fresh client connection (faults drop it).
    const client = await SystemdClient.connect(sb.busAddress);
    try {
      const names = Array.from({ length: 500 }, (_, i) => `churn-${cycle}-${i}`);
      await client.startTransientTimers(names);
      await client.unitJobs('StopUnit', names.map((n) => `${n}.timer`));
      created += 1000;
      await acceptConnections(sb, 'acc', 200);
      accepted += 200;
      const storm = Array.from({ length: 500 }, (_, i) => `storm@${cycle}-${i}.target`);
      await sb.execOk('systemctl', 'start', ...storm);
      await sb.execOk('systemctl', 'stop', ...storm);
      storms++;
    } catch (err) {
      problems.push(`cycle ${cycle} churn: ${(err as Error).message}`);
    } finally {
      client.close();
    }
    const [what, fault] = faultsInTurn[faults % faultsInTurn.length]!;
    faults++;
    try {
      await fault(undefined);
      await sb.execOk('systemctl', 'is-system-running', '--wait').catch(() => undefined);
      await failSocket(sb, 'probe');
      await run.waitForValue(SOCKETS, 'probe.socket', 5, 20_000);
      await recoverSocket(sb, 'probe');
      await run.waitForValue(SOCKETS, 'probe.socket', 1, 20_000);
      const diffs = await settleVsSystemd(run, SOCKETS, sb, 'socket', 20_000);
      if (diffs.length) problems.push(`after ${what}: socket chart differs from systemd: ${diffs.slice(0, 5).join('; ')}`);
      const checker = await SystemdClient.connect(sb.busAddress);
      try {
        // Match rules: one connection of the plugin, with its 5 rules (a replaced one may linger a moment).
        let rules = await pluginMatchRules(checker);
        for (let i = 0; i < 20 && (rules.size !== 1 || [...rules.values()][0]!.length !== 5); i++) {
          await sleep(250);
          rules = await pluginMatchRules(checker);
        }
        if (rules.size !== 1 || [...rules.values()][0]!.length !== 5) {
          problems.push(`after ${what}: plugin match rules ${JSON.stringify([...rules].map(([c, r]) => [c, r.length]))}`);
        }
      } finally {
        checker.close();
      }
    } catch (err) {
      problems.push(`after ${what}: ${(err as Error).message.split('\n')[0]}`);
    }
    if (problems.length) say(`problem: ${problems.at(-1)}`);
    if (problems.length > 5) break;
    await sleep(PAUSE_S * 1000);
    // Measured at the same point of every cycle, idle after the pause: comparable figures.
    report();
  }
  report(true);

  // Flat: the last third against the first third after the warm-up (the first report), by median.
  const steady = points.slice(1);
  const third = Math.max(1, Math.floor(steady.length / 3));
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const rssEarly = med(steady.slice(0, third).map((p) => p.rssKb));
  const rssLate = med(steady.slice(-third).map((p) => p.rssKb));
  const fdsEarly = med(steady.slice(0, third).map((p) => p.fds));
  const fdsLate = med(steady.slice(-third).map((p) => p.fds));
  const replaced = (run.stderr.match(/replacing the D-Bus connection/g) ?? []).length;
  say(
    `summary: ${((Date.now() - t0) / 60_000).toFixed(1)} min, ${cycle} cycles, ${created} transient units, ${accepted} accepted connections, ` +
      `${storms} storms of 500, ${faults} faults, ${replaced} connections replaced on purpose`,
  );
  say(`RSS: early median ${(rssEarly / 1024).toFixed(1)} MB, late median ${(rssLate / 1024).toFixed(1)} MB, max ${(Math.max(...points.map((p) => p.rssKb)) / 1024).toFixed(1)} MB`);
  say(`fds: early median ${fdsEarly}, late median ${fdsLate}, max ${Math.max(...points.map((p) => p.fds))}`);
  if (steady.length >= 3 && rssLate > rssEarly * 1.1) problems.push(`RSS grew: ${rssEarly} kB → ${rssLate} kB`);
  if (steady.length >= 3 && fdsLate > fdsEarly + 2) problems.push(`open fds grew: ${fdsEarly} → ${fdsLate}`);
  if (run.protocolErrors.length) problems.push(`protocol errors: ${run.protocolErrors.slice(0, 3).join('; ')}`);
  if (run.strayLines.length) problems.push(`stray stdout lines: ${run.strayLines.slice(0, 3).join('; ')}`);
  writeFileSync(path.join(stateDir, 'points.json'), JSON.stringify(points));
  for (const p of problems) say(`FAIL: ${p}`);
  say(problems.length ? 'soak FAILED' : 'soak passed');
  return problems.length ? 1 : 0;
}

main()
  .then(async (code) => {
    await cleanup();
    process.exit(code);
  })
  .catch(async (err) => {
    say(`error: ${(err as Error).stack ?? err}`);
    await cleanup();
    process.exit(1);
  });
