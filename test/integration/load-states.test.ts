// Units by load state against real systemd 252: a unit file systemd refuses (bad-setting) or a timer
// with an invalid OnCalendar= is listed with its LoadState, charted as such with the broken_units
// label naming it, and leaves the broken count once fixed and reloaded. The load states come from
// the listings the sync already makes (at start, after each daemon-reload): no call per unit.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PluginRun } from '../../harness/plugin.js';
import { startSandbox, type Sandbox } from '../../harness/sandbox.js';

const SERVICES = 'systemdunits_service_units.service_units_by_load_state';
const TIMERS = 'systemdunits_service_units.timer_units_by_load_state';

let sb: Sandbox;
let plugin: PluginRun;
let dir = '';

const latest = (chart: string) => plugin.samplesOf(chart).at(-1);
const label = (chart: string) => plugin.charts.get(chart)?.labels.broken_units;

beforeAll(async () => {
  sb = await startSandbox();
  // Loaded (and so listed) because an active target wants them; fine at first.
  await sb.writeUnit('holder.target', '[Unit]\nWants=typo.service cal.timer gone-missing.service\n');
  await sb.writeUnit('typo.service', '[Service]\nExecStart=/bin/true\n');
  await sb.writeUnit('cal.service', '[Service]\nExecStart=/bin/true\n');
  await sb.writeUnit('cal.timer', '[Timer]\nOnCalendar=daily\n');
  await sb.daemonReload();
  await sb.execOk('systemctl', 'start', 'holder.target');
  // Services and timers in one job (the default job charts services only).
  dir = mkdtempSync(join(tmpdir(), 'sdu-load-'));
  writeFileSync(join(dir, 'systemdunits.conf'), "jobs:\n  - name: service_units\n    include: ['*.service', '*.timer']\n");
  plugin = new PluginRun(['1'], { DBUS_SYSTEM_BUS_ADDRESS: sb.busAddress, NETDATA_USER_CONFIG_DIR: dir });
  await plugin.waitFor('the load state charts', () => latest(SERVICES) && latest(TIMERS), 20_000);
}, 60_000);

afterAll(async () => {
  await plugin?.stop();
  await sb?.stop({ removeDir: true });
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('units by load state', () => {
  it('charts loaded units and the not-found ones a target refers to, nothing broken', async () => {
    const s = latest(SERVICES)!;
    expect(s.values.loaded).toBeGreaterThan(0);
    expect(s.values.not_found).toBeGreaterThanOrEqual(1); // gone-missing.service
    expect(s.values.bad_setting).toBe(0);
    expect(s.variables.broken_units).toBe(0);
    expect(label(SERVICES)).toBe('none');
    expect(label(TIMERS)).toBe('none');
  });

  it('a unit file systemd refuses and a timer with an invalid OnCalendar= show as bad-setting after daemon-reload, named', async () => {
    // No ExecStart=: "Service has no ExecStart=… Refusing." An unparsable OnCalendar= leaves the timer without a trigger.
    await sb.writeUnit('typo.service', '[Service]\nExecStrat=/bin/true\n');
    await sb.writeUnit('cal.timer', '[Timer]\nOnCalendar=every tuesday-ish\n');
    await sb.daemonReload();
    expect((await sb.exec('systemctl', 'show', '-P', 'LoadState', 'typo.service', 'cal.timer')).stdout.split('\n').filter(Boolean)).toEqual(['bad-setting', 'bad-setting']);
    await plugin.waitFor('typo.service charted bad-setting', () => latest(SERVICES)?.values.bad_setting === 1 && latest(SERVICES)?.variables.broken_units === 1, 15_000);
    expect(label(SERVICES)).toBe('typo.service (bad-setting)');
    await plugin.waitFor('cal.timer charted bad-setting', () => latest(TIMERS)?.values.bad_setting === 1, 15_000);
    expect(latest(TIMERS)!.variables.broken_units).toBe(1);
    expect(label(TIMERS)).toBe('cal.timer (bad-setting)');
  });

  it('fixed and reloaded: gone from broken', async () => {
    await sb.writeUnit('typo.service', '[Service]\nExecStart=/bin/true\n');
    await sb.writeUnit('cal.timer', '[Timer]\nOnCalendar=daily\n');
    await sb.daemonReload();
    await plugin.waitFor('nothing broken', () => latest(SERVICES)?.variables.broken_units === 0 && latest(TIMERS)?.variables.broken_units === 0, 15_000);
    expect(latest(SERVICES)!.values.bad_setting).toBe(0);
    expect(label(SERVICES)).toBe('none');
    expect(label(TIMERS)).toBe('none');
  });
});
