// The Result a failure line and the alarm label name is the failed run's, against real systemd 252:
// systemd signals Result on the type's interface just before the ActiveState change, and resets it
// to `success` as soon as the unit starts again (Restart= after RestartSec, or a `systemctl start`),
// which used to come before the line was written: `flap.service failed (Result=success)`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PluginRun } from '../../harness/plugin.js';
import { startSandbox, type Sandbox } from '../../harness/sandbox.js';
import { until } from '../../harness/wait.js';

const SERVICES = 'systemdunits_service_units.service_unit_state';

let sb: Sandbox;
let plugin: PluginRun;

/** Until systemd says the unit is failed (a slow machine may take a moment). */
async function waitFailed(unit: string): Promise<void> {
  await until(`${unit} failed in systemd`, async () => (await sb.exec('systemctl', 'is-failed', '--quiet', unit)).code === 0);
}

/** The failure lines the plugin wrote for `unit`. */
function failureLines(unit: string): string[] {
  return plugin.stderr.split('\n').filter((l) => l.startsWith(`systemdunits.plugin: ${unit} failed `));
}

beforeAll(async () => {
  sb = await startSandbox();
  // Fails every time and is restarted 20 ms later, with no start limit: it flaps for as long as it runs.
  await sb.writeUnit('flap.service', '[Unit]\nStartLimitIntervalSec=0\n[Service]\nExecStart=/bin/sh -c "exit 3"\nRestart=always\nRestartSec=20ms\n');
  // Restart=no: succeeds, then fails once its flag file exists.
  await sb.writeUnit('once.service', '[Service]\nType=oneshot\nExecStart=/bin/sh -c "test ! -e /run/once.fail"\n');
  await sb.writeUnit('again.service', '[Service]\nExecStart=/bin/sh -c "exit 1"\n');
  await sb.daemonReload();
  plugin = new PluginRun(['1'], { DBUS_SYSTEM_BUS_ADDRESS: sb.busAddress });
  await plugin.waitFor('the service chart', () => plugin.samplesOf(SERVICES).length > 0, 20_000);
}, 60_000);

afterAll(async () => {
  await plugin?.stop();
  await sb?.stop({ removeDir: true });
});

describe("the failed run's Result", () => {
  it('names the Result a flapping service failed with, not the success its restart reset it to', async () => {
    await sb.execOk('systemctl', 'start', 'flap.service');
    try {
      // Two: the first failure, and the first once it loops (then one a minute, see LoopingServices).
      await plugin.waitFor('two failure lines of flap.service', () => failureLines('flap.service').length >= 2, 15_000);
    } finally {
      await sb.exec('systemctl', 'stop', 'flap.service');
    }
    const lines = failureLines('flap.service');
    for (const l of lines) expect(l).toBe('systemdunits.plugin: flap.service failed (Result=exit-code, status=3)');
    // (What systemd says after the stop depends on where in its cycle the stop came: not checked.)
  });

  it('names exit-code for a Restart=no service that fails after a run that succeeded', async () => {
    await sb.execOk('systemctl', 'start', 'once.service');
    await sb.execOk('touch', '/run/once.fail');
    await sb.exec('systemctl', 'start', 'once.service'); // fails, as intended
    const line = await plugin.waitFor('the failure line of once.service', () => failureLines('once.service')[0], 10_000);
    expect(line).toBe('systemdunits.plugin: once.service failed (Result=exit-code, status=1/FAILURE)');
  });

  it('keeps the Result of a failure when the unit is started again at once, in the line and the label', async () => {
    await sb.exec('systemctl', 'start', 'again.service');
    // `start` returns once the process runs; it exits 1 just after. Start again only once it failed.
    await waitFailed('again.service');
    // …and only once the plugin has it (a unit that fails twice while its first lookup is under
    // way is one failure to the plugin: what this test is about is the start while it is failed).
    await plugin.waitFor('the first failure line of again.service', () => failureLines('again.service').length >= 1, 10_000);
    await sb.exec('systemctl', 'start', 'again.service'); // while failed: Result goes back to success
    await plugin.waitFor('two failure lines of again.service', () => failureLines('again.service').length >= 2, 10_000);
    for (const l of failureLines('again.service')) expect(l).toBe('systemdunits.plugin: again.service failed (Result=exit-code, status=1/FAILURE)');
    const labelled = await plugin.waitFor('the label', () => plugin.charts.get(SERVICES)?.labels.failed_units?.match(/again\.service \([^)]*\)/)?.[0], 10_000);
    expect(labelled).toBe('again.service (exit-code status 1/FAILURE)');
  });
});
