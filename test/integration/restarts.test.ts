// Issue 13 items 1 and 4 against real systemd 252: a crash loop counted from systemd's NRestarts
// signals (every restart, several between two samples), named with why it crashed, and exits as
// an operator reads them (status=203/EXEC, SIGSEGV, core dumped) in the failure line and the label.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PluginRun } from '../../harness/plugin.js';
import { startSandbox, type Sandbox } from '../../harness/sandbox.js';
import { until } from '../../harness/wait.js';

const JOB = 'systemdunits_service_units';
const RESTARTS = `${JOB}.service_unit_restarts`;
const SERVICES = `${JOB}.service_unit_state`;

let sb: Sandbox;
let plugin: PluginRun;

function failureLines(p: PluginRun, unit: string): string[] {
  return p.stderr.split('\n').filter((l) => l.startsWith(`systemdunits.plugin: ${unit} failed `));
}

async function nRestarts(unit: string): Promise<number> {
  const { stdout } = await sb.execOk('systemctl', 'show', '-p', 'NRestarts', '--value', unit);
  return Number(stdout.trim());
}

beforeAll(async () => {
  sb = await startSandbox();
  // Exits 1 every 200 ms and is restarted, with no start limit, until /run/crashy.ok exists.
  await sb.writeUnit(
    'crashy.service',
    '[Unit]\nStartLimitIntervalSec=0\n[Service]\nExecStart=/bin/sh -c "test -e /run/crashy.ok && exec sleep infinity; sleep 0.2; exit 1"\nRestart=always\nRestartSec=200ms\n',
  );
  await sb.writeUnit('noexec.service', '[Service]\nExecStart=/nonexistent\n');
  await sb.writeUnit('segv.service', '[Service]\nExecStart=/bin/sh -c "kill -SEGV $$$$"\nLimitCORE=0\n');
  // core_pattern is the kernel's (`core` on this machine: a file in the working directory)
  await sb.writeUnit('segvcore.service', '[Service]\nExecStart=/bin/sh -c "kill -SEGV $$$$"\nLimitCORE=infinity\nWorkingDirectory=/tmp\n');
  // Its main process exits 7; then it fails in ExecStartPre: the main process never ran in that
  // run, so no exit may be named (not the previous run's status=7).
  await sb.writeUnit('prefail.service', '[Service]\nExecStartPre=/bin/sh -c "test ! -e /run/prefail.fail"\nExecStart=/bin/sh -c "exit 7"\n');
  await sb.daemonReload();
  plugin = new PluginRun(['1'], { DBUS_SYSTEM_BUS_ADDRESS: sb.busAddress });
  await plugin.waitFor('the restarts chart', () => plugin.samplesOf(RESTARTS).length > 0, 20_000);
}, 60_000);

afterAll(async () => {
  await plugin?.stop();
  await sb?.stop({ removeDir: true });
});

describe('exits as an operator reads them', () => {
  const cases: [unit: string, line: string, label: string][] = [
    ['noexec.service', '(Result=exit-code, status=203/EXEC)', '(exit-code status 203/EXEC)'],
    ['segv.service', '(Result=signal, SIGSEGV)', '(signal SIGSEGV)'],
    ['segvcore.service', '(Result=core-dump, SIGSEGV, core dumped)', '(signal SIGSEGV core dumped)'],
  ];

  it.each(cases)('%s: in the failure line and the failed_units label', async (unit, line, label) => {
    await sb.exec('systemctl', 'start', unit);
    await until(`${unit} failed`, async () => (await sb.exec('systemctl', 'is-failed', '--quiet', unit)).code === 0);
    const written = await plugin.waitFor(`the failure line of ${unit}`, () => failureLines(plugin, unit)[0], 10_000);
    expect(written).toBe(`systemdunits.plugin: ${unit} failed ${line}`);
    const labelled = await plugin.waitFor('the label', () => plugin.charts.get(SERVICES)?.labels.failed_units?.match(new RegExp(`${unit.replace('.', '\\.')} \\([^)]*\\)`))?.[0], 10_000);
    expect(labelled).toBe(`${unit} ${label}`);
  });

  it('names no exit for a run whose main process never started (ExecStartPre failed), not the previous run\'s', async () => {
    await sb.exec('systemctl', 'start', 'prefail.service');
    const first = await plugin.waitFor('the first failure line of prefail.service', () => failureLines(plugin, 'prefail.service')[0], 10_000);
    expect(first).toBe('systemdunits.plugin: prefail.service failed (Result=exit-code, status=7)');
    await sb.execOk('touch', '/run/prefail.fail');
    await sb.exec('systemctl', 'start', 'prefail.service'); // fails in ExecStartPre, as intended
    const second = await plugin.waitFor('the second failure line of prefail.service', () => failureLines(plugin, 'prefail.service')[1], 10_000);
    expect(second).toBe('systemdunits.plugin: prefail.service failed (Result=exit-code)');
  });

  it('reads the exit of a service that was failed before the plugin started', async () => {
    const late = new PluginRun(['1'], { DBUS_SYSTEM_BUS_ADDRESS: sb.busAddress });
    try {
      const written = await late.waitFor('the failure line of noexec.service', () => failureLines(late, 'noexec.service')[0], 20_000);
      expect(written).toBe('systemdunits.plugin: noexec.service failed (Result=exit-code, status=203/EXEC)');
      const first = await late.waitFor('a sample of the service chart', () => late.charts.get(SERVICES)?.labels.failed_units, 10_000);
      expect(first).toContain('noexec.service (exit-code status 203/EXEC)');
    } finally {
      await late.stop();
    }
  });
});

// Last: each crash of the loop is a failure line too, and lines are rate-limited per minute.
describe('a crash loop', () => {
  it('counts every restart systemd made (several between two samples), naming the service with its exit', async () => {
    const before = plugin.samplesOf(RESTARTS).length;
    await sb.execOk('systemctl', 'start', 'crashy.service');
    const looping = await plugin.waitFor(
      'max_unit_restarts above 3',
      () => plugin.samplesOf(RESTARTS).find((s) => (s.variables.max_unit_restarts ?? 0) > 3),
      20_000,
    );
    expect(looping.variables.restart_loop_threshold).toBe(3);
    expect(plugin.charts.get(RESTARTS)!.labels.restarting_units).toMatch(/^crashy\.service \d+ restarts \(exit-code status 1\/FAILURE\)$/);
    // Stable from the next start on; then every restart systemd made is in the chart, once.
    await sb.execOk('touch', '/run/crashy.ok');
    await until('crashy.service running', async () => (await sb.exec('systemctl', 'is-active', '--quiet', 'crashy.service')).code === 0 && (await sb.execOk('systemctl', 'show', '-p', 'SubState', '--value', 'crashy.service')).stdout.trim() === 'running');
    const made = await nRestarts('crashy.service');
    expect(made).toBeGreaterThan(3);
    const counted = () => plugin.samplesOf(RESTARTS).slice(before).reduce((sum, s) => sum + (s.values.restarts ?? 0), 0);
    await plugin.waitFor(`the chart to count ${made} restarts`, () => counted() >= made, 5000).catch(() => undefined);
    expect(counted()).toBe(made);
    // More restarts than samples: some came between two samples and still counted.
    expect(plugin.samplesOf(RESTARTS).slice(before).some((s) => (s.values.restarts ?? 0) > 1)).toBe(true);
    await sb.execOk('systemctl', 'stop', 'crashy.service');
  });
});
