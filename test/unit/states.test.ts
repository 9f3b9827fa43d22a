import { describe, expect, it } from 'vitest';
import { isKnownState, stateValue } from '../../plugin/units/states.js';
import { decodeUnitName, unitNameFromPath, unitPath, unitType } from '../../plugin/units/names.js';
import { UNIT_STATE_CHARTS } from '../../charts/unit-state.js';
import { parseConfig } from '../../plugin/config/index.js';
import { UNIT_TYPE_NAMES } from '../../plugin/units/types.js';

describe('state mapping', () => {
  it('maps the five charted states to 1..5', () => {
    expect(['active', 'inactive', 'activating', 'deactivating', 'failed'].map(stateValue)).toEqual([1, 2, 3, 4, 5]);
  });

  it('maps the other systemd states to the nearest of the five, never to failed', () => {
    expect(stateValue('reloading')).toBe(1);
    expect(stateValue('refreshing')).toBe(1);
    expect(stateValue('maintenance')).toBe(2);
    expect(stateValue('some-future-state')).toBe(2);
    expect(stateValue('')).toBe(2);
    expect(isKnownState('maintenance')).toBe(true);
    expect(isKnownState('bogus')).toBe(false);
  });
});

describe('unit names', () => {
  it('takes the type from the suffix', () => {
    expect(unitType('ssh.socket')).toBe('socket');
    expect(unitType('getty@tty1.service')).toBe('service');
    expect(unitType('noext')).toBe('');
  });

  it('decodes systemd escapes', () => {
    expect(decodeUnitName('my\\x2dapp@1.socket')).toBe('my-app@1.socket');
    expect(decodeUnitName('dev-disk-by\\x2duuid-1234.swap')).toBe('dev-disk-by-uuid-1234.swap');
    expect(decodeUnitName('plain.socket')).toBe('plain.socket');
  });

  it('reads the unit name back from systemd object paths', () => {
    expect(unitNameFromPath('/org/freedesktop/systemd1/unit/foo_2esocket')).toBe('foo.socket');
    expect(unitNameFromPath('/org/freedesktop/systemd1/unit/my_5cx2dapp_401_2esocket')).toBe('my\\x2dapp@1.socket');
    expect(unitNameFromPath('/org/freedesktop/systemd1/unit/getty_40tty1_2eservice')).toBe('getty@tty1.service');
    expect(unitNameFromPath('/org/freedesktop/systemd1')).toBeUndefined();
    expect(unitNameFromPath('/org/freedesktop/systemd1/unit/')).toBeUndefined();
  });

  it('derives the object paths systemd 252 gives units (read with busctl GetUnit)', () => {
    const systemd: Record<string, string> = {
      't@1.socket': '/org/freedesktop/systemd1/unit/t_401_2esocket',
      'dbus.socket': '/org/freedesktop/systemd1/unit/dbus_2esocket',
      '9x\\x2dy.service': '/org/freedesktop/systemd1/unit/_39x_5cx2dy_2eservice', // leading digit
    };
    for (const [name, path] of Object.entries(systemd)) {
      expect(unitPath(name)).toBe(path);
      expect(unitNameFromPath(path)).toBe(name);
    }
    for (const name of ['-.mount', 'sys-devices-x\\x2dy.device', 'caf\u00e9@ü.service', 'a_b.socket']) {
      expect(unitNameFromPath(unitPath(name))).toBe(name);
    }
  });
});

describe('unit types', () => {
  it('are listed once: the charts cover them, the config takes them in include patterns', () => {
    expect(UNIT_STATE_CHARTS.map((k) => k.unitType)).toEqual(UNIT_TYPE_NAMES);
    // Each type is a unit type the config takes in an include pattern; a made-up one is refused.
    for (const t of UNIT_TYPE_NAMES) expect(parseConfig(`jobs:\n  - name: a\n    include: ['*.${t}']\n`, 'F', 1).problems).toEqual([]);
    expect(parseConfig(`jobs:\n  - name: a\n    include: ['*.sokcet']\n`, 'F', 1).problems.join()).toMatch(/not a unit type/);
  });
});
