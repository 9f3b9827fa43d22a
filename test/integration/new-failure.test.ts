// The new-failure variable and label against real systemd 252 (what systemd_<type>_unit_new_failure
// reads): a unit failed before the plugin starts is not announced as new; each later entry into
// failed shows as new_failures > 0 for exactly one sample and is named in new_failed_units, while
// the old one stays failed; sockets failing in one transaction are one batch.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PluginRun } from '../../harness/plugin.js';
import { startSandbox, type Sandbox } from '../../harness/sandbox.js';
import { failSocket, startSockets } from '../../harness/units.js';
import { failSockets } from '../../harness/e2e.js';

const COUNTS = 'systemdunits_service_units.socket_units_by_state';
const SOCKETS = ['old', 'second', 'third', 'fourth'];

let sb: Sandbox;
let plugin: PluginRun;

const newFailures = (): number[] => plugin.samplesOf(COUNTS).map((s) => s.variables.new_failures ?? Number.NaN);
const label = () => plugin.charts.get(COUNTS)?.labels.new_failed_units;

beforeAll(async () => {
  sb = await startSandbox();
  await startSockets(sb, SOCKETS, { noStartLimit: true });
  await failSocket(sb, 'old');
  plugin = new PluginRun(['1'], { DBUS_SYSTEM_BUS_ADDRESS: sb.busAddress });
  await plugin.waitFor('three samples of units by state', () => plugin.samplesOf(COUNTS).length >= 3, 20_000);
}, 60_000);

afterAll(async () => {
  await plugin?.stop();
  await sb?.stop({ removeDir: true });
});

describe('new failures on units by state', () => {
  it('does not announce a unit failed before the plugin started', () => {
    expect(plugin.samplesOf(COUNTS).at(-1)!.values.failed).toBe(1);
    expect(newFailures().every((n) => n === 0)).toBe(true);
    expect(label()).toBe('none');
  });

  it('shows a later failure for exactly one sample, named, while the old one stays failed', async () => {
    const from = plugin.samplesOf(COUNTS).length;
    await failSockets(sb, ['second']);
    await plugin.waitFor('two samples after the failure', () => {
      const after = newFailures().slice(from);
      const at = after.findIndex((n) => n > 0);
      return at >= 0 && after.length >= at + 3;
    }, 15_000);
    const after = newFailures().slice(from);
    expect(after.filter((n) => n > 0)).toEqual([1]); // one sample, one unit
    expect(label()).toBe('second.socket (exit-code)');
    expect(plugin.samplesOf(COUNTS).at(-1)!.values.failed).toBe(2);
  });

  it('makes sockets failing in one transaction one batch naming both', async () => {
    const from = plugin.samplesOf(COUNTS).length;
    await failSockets(sb, ['third', 'fourth']);
    await plugin.waitFor('two samples after the failures', () => {
      const after = newFailures().slice(from);
      const at = after.findIndex((n) => n > 0);
      return at >= 0 && after.length >= at + 3;
    }, 15_000);
    // One systemd transaction: both normally land in one sample (two samples would still name each).
    const batches = newFailures().slice(from).filter((n) => n > 0);
    expect(batches.reduce((a, b) => a + b, 0)).toBe(2);
    expect(label()).toMatch(/^(fourth\.socket \(exit-code\); third\.socket \(exit-code\)|third\.socket \(exit-code\); fourth\.socket \(exit-code\)|fourth\.socket \(exit-code\)|third\.socket \(exit-code\))$/);
    if (batches.length === 1) expect(label()).toContain('; ');
  });
});
