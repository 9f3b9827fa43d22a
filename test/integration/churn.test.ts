// Unit churn and signal storms against real systemd: 10,000 transient units created and removed
// (5,000 transient timers with their services, as `systemd-run --on-active` makes them, created
// with the same D-Bus call systemd-run uses, without a process per unit), Accept=yes instances
// coming and going, and 2,000 template instances started and stopped in one systemctl call each.
// The plugin must retire what goes, give its memory back, keep its match rules, and sample on time.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MATCH_RULES } from '../../plugin/systemd/manager.js';
import { acceptConnections, procStats, settleVsSystemd, writeAcceptSocket, writeStormTemplate } from '../../harness/faults.js';
import { sleep } from '../../harness/wait.js';
import { PluginRun } from '../../harness/plugin.js';
import { startSandbox, type Sandbox } from '../../harness/sandbox.js';
import { SystemdClient, pluginMatchRules } from '../../harness/systemd-client.js';
import { startSockets } from '../../harness/units.js';

const SOCKETS = 'systemdunits_service_units.socket_unit_state';
const TARGETS = 'systemdunits_service_units.target_unit_state';
const CHURN_TIMERS = 'systemdunits_churn.timer_unit_state';
const CHURN_SERVICES = 'systemdunits_churn.service_unit_state';
/** Units in the storm: thousands at once, few enough to keep the suite's time modest (the soak runs more). */
const STORM = 2000;
/** Transient timers per round of the churn (2 units each live at once at most). */
const ROUND = 500;

let sb: Sandbox;
let client: SystemdClient;
let run: PluginRun;

beforeAll(async () => {
  sb = await startSandbox();
  await writeAcceptSocket(sb, 'acc');
  await writeStormTemplate(sb);
  await startSockets(sb, ['steady'], { alsoStart: ['acc.socket'] });
  client = await SystemdClient.connect(sb.busAddress);
  // The default job with transient units skipped, and one that charts the transient units and
  // each Accept=yes instance on its own, so that their dimensions are created and retired.
  const dir = mkdtempSync(join(tmpdir(), 'sdu-churn-'));
  writeFileSync(
    join(dir, 'systemdunits.conf'),
    'jobs:\n  - name: service_units\n    skip_transient: true\n' +
      '  - name: churn\n    include: ["churn-*", "acc@*"]\n    skip_transient: false\n    aggregate_instances: false\n',
  );
  run = new PluginRun(['1'], { DBUS_SYSTEM_BUS_ADDRESS: sb.busAddress, NETDATA_USER_CONFIG_DIR: dir });
  await run.waitForValue(SOCKETS, 'steady.socket', 1, 20_000);
}, 120_000);

afterAll(async () => {
  client?.close();
  await run?.stop();
  await sb?.stop({ removeDir: true });
});

/** Creates and removes `timers` transient timers (2 transient units each) in rounds of `round`. */
async function churnTransient(prefix: string, timers: number, round = ROUND): Promise<void> {
  for (let start = 0; start < timers; start += round) {
    const names = Array.from({ length: Math.min(round, timers - start) }, (_, i) => `churn-${prefix}-${start + i}`);
    await client.startTransientTimers(names);
    await client.unitJobs('StopUnit', names.map((n) => `${n}.timer`));
  }
}

/** The plugin's connection names on the bus with their rule counts. */
async function ruleCounts(): Promise<Array<[string, number]>> {
  return [...(await pluginMatchRules(client))].map(([name, rules]) => [name, rules.length]);
}

/** Waits until no unit of the churn is loaded in systemd any more. */
async function churnGone(): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if ((await client.listUnitNames(['churn-*', 'acc@*'])).length === 0) return;
    await sleep(200);
  }
  throw new Error(`churn units still loaded: ${(await client.listUnitNames(['churn-*', 'acc@*'])).slice(0, 5).join(', ')}…`);
}

/** Live (not obsolete) dimensions of a chart, by name. */
function liveDims(chart: string): string[] {
  const info = run.charts.get(chart);
  if (!info || info.obsolete) return [];
  return [...info.dims.values()].filter((d) => !d.obsolete).map((d) => d.name);
}

describe('unit churn', () => {
  it('10,000 transient units and 1,000 Accept=yes instances come and go: dimensions retired, memory back, match rules constant', async () => {
    const pid = run.child.pid!;
    const cold = procStats(pid);
    // Warm-up: one round as big as the rounds below sizes the heap for the units live at once
    // (V8 keeps what it grew to for a while); the baseline is taken once that has settled. What
    // must not happen is growth with the number of units that came and went.
    await churnTransient('warm', ROUND);
    await acceptConnections(sb, 'acc', 100);
    await churnGone();
    await sleep(3000); // the heap settling after the warm-up: no condition to wait on but time
    const rulesBefore = await ruleCounts();
    const base = procStats(pid);
    let sawDims = 0;
    const t0 = performance.now();
    const watch = setInterval(() => (sawDims = Math.max(sawDims, liveDims(CHURN_TIMERS).length + liveDims(CHURN_SERVICES).length)), 200);
    try {
      await churnTransient('main', Number(process.env.CHURN_TIMERS ?? 5000));
      await acceptConnections(sb, 'acc', 1000);
      await churnGone();
    } finally {
      clearInterval(watch);
    }
    const churnS = (performance.now() - t0) / 1000;
    const peak = procStats(pid);
    const goneAt = performance.now();
    // Every churned unit's dimension retired (a chart left without units goes as a whole).
    await run
      .waitFor('churn dimensions retired', () => liveDims(CHURN_TIMERS).length + liveDims(CHURN_SERVICES).length === 0, 120_000)
      .catch((err: Error) => {
        const left = [...liveDims(CHURN_TIMERS), ...liveDims(CHURN_SERVICES)];
        throw new Error(`${left.length} churn dimensions still live (${left.slice(0, 8).join(', ')}…)\n${err.message.slice(0, 2000)}`);
      });
    const lagS = (performance.now() - goneAt) / 1000;
    let after = procStats(pid);
    for (let i = 0; i < 30 && after.rssKb > base.rssKb * 1.1; i++) {
      await sleep(1000);
      after = procStats(pid);
    }
    const rulesAfter = await ruleCounts();
    console.log(
      `churn: 10,000 transient units + 1,000 Accept=yes instances in ${churnS.toFixed(0)} s; up to ${sawDims} churn dimensions live at once, the last retired ${lagS.toFixed(1)} s after systemd unloaded it; ` +
        `RSS at start ${(cold.rssKb / 1024).toFixed(1)} MB, baseline after warm-up ${(base.rssKb / 1024).toFixed(1)} MB, end of churn ${(peak.rssKb / 1024).toFixed(1)} MB, ` +
        `then ${(after.rssKb / 1024).toFixed(1)} MB; ` +
        `fds ${base.fds} → ${after.fds}; match rules ${JSON.stringify(rulesBefore)} → ${JSON.stringify(rulesAfter)}`,
    );
    expect(sawDims, 'the churned units were charted at all').toBeGreaterThan(0);
    expect(after.rssKb, 'RSS back within 10% of its baseline').toBeLessThanOrEqual(base.rssKb * 1.1);
    expect(after.fds).toBeLessThanOrEqual(base.fds + 1);
    expect(rulesBefore).toEqual([[rulesBefore[0]![0], MATCH_RULES.length]]);
    expect(rulesAfter, 'the same one connection, with the same rules').toEqual(rulesBefore);
    expect(await settleVsSystemd(run, SOCKETS, sb, 'socket')).toEqual([]);
    expect(run.protocolErrors).toEqual([]);
    expect(run.stderr).not.toMatch(/internal error|lost the system bus/);
  }, 300_000);
});

describe('a signal storm', () => {
  it('2,000 units started, then stopped, in one call each: samples stay on time, states right after', async () => {
    const instances = Array.from({ length: STORM }, (_, i) => `storm@${i}.target`);
    const from = performance.now();
    await sb.execOk('systemctl', 'start', ...instances);
    await run.waitFor(`${STORM} storm dimensions`, () => liveDims(TARGETS).filter((n) => n.startsWith('storm@')).length === STORM, 60_000);
    await sb.execOk('systemctl', 'stop', ...instances);
    await run.waitFor('storm dimensions retired', () => liveDims(TARGETS).filter((n) => n.startsWith('storm@')).length === 0, 60_000);
    const to = performance.now();
    const samples = run.samplesOf(SOCKETS).filter((s) => s.at >= from && s.at <= to);
    const gaps = samples.slice(1).map((s, i) => s.at - samples[i]!.at);
    const elapsed = samples.slice(1).map((s) => (s.elapsedUs ?? 0) / 1000);
    const sorted = [...gaps].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)] ?? NaN;
    console.log(
      `storm: ${((to - from) / 1000).toFixed(1)} s, ${samples.length} samples; interval between samples median ${median.toFixed(0)} ms, ` +
        `max ${Math.max(...gaps).toFixed(0)} ms; BEGIN elapsed ${Math.min(...elapsed).toFixed(0)}-${Math.max(...elapsed).toFixed(0)} ms`,
    );
    expect(samples.length).toBeGreaterThanOrEqual(3);
    expect(median).toBeGreaterThan(700);
    expect(median).toBeLessThan(1300);
    expect(Math.max(...gaps), 'no sample more than 2 intervals late').toBeLessThan(3000);
    for (const e of elapsed) expect(e).toBeLessThan(3000);
    expect(await settleVsSystemd(run, TARGETS, sb, 'target')).toEqual([]);
    expect(run.protocolErrors).toEqual([]);
  }, 180_000);
});
