// The plugin's own marshaller of method calls (plugin/systemd/marshal.ts) against dbus-next's: the
// same bytes for every kind of call the plugin makes, and a call that would make dbus-daemon drop
// the connection refused before anything is written.

import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { canMarshal, marshalCall, MarshalError, type MethodCall } from '../../plugin/systemd/marshal.js';
import { MATCH_RULES } from '../../plugin/systemd/manager.js';
import { unitPath } from '../../plugin/units/names.js';

const require = createRequire(import.meta.url);
const { marshallMessage } = require('dbus-next/lib/marshall-compat.js') as { marshallMessage(m: object): [Buffer, unknown[]] };
const { Message } = require('dbus-next/lib/message-type.js') as { Message: new (m: object) => object };
const message = require('dbus-next/lib/message.js') as { unmarshall(b: Buffer): Record<string, unknown> };

/** The bytes dbus-next writes for the same call. */
const library = (call: MethodCall, serial: number): Buffer => marshallMessage(new Message({ type: 1, serial, ...call, body: call.body ? [...call.body] : [] }))[0];

const SYSTEMD = { destination: 'org.freedesktop.systemd1', path: '/org/freedesktop/systemd1' };
const CALLS: MethodCall[] = [
  { ...SYSTEMD, interface: 'org.freedesktop.DBus.Peer', member: 'Ping' },
  { ...SYSTEMD, interface: 'org.freedesktop.systemd1.Manager', member: 'Subscribe' },
  { ...SYSTEMD, path: unitPath('t@42.socket'), interface: 'org.freedesktop.DBus.Properties', member: 'Get', signature: 'ss', body: ['org.freedesktop.systemd1.Socket', 'Accept'] },
  { destination: 'org.freedesktop.DBus', path: '/org/freedesktop/DBus', interface: 'org.freedesktop.DBus', member: 'AddMatch', signature: 's', body: [MATCH_RULES[0]!] },
  { destination: 'org.freedesktop.DBus', path: '/org/freedesktop/DBus', interface: 'org.freedesktop.DBus', member: 'NameHasOwner', signature: 's', body: [''] },
  { ...SYSTEMD, interface: 'org.freedesktop.systemd1.Manager', member: 'ListUnitsByPatterns', signature: 'asas', body: [[], ['*.socket', 'caf\u00e9@*.service', 'x[*]', '\u{1F600}.target']] },
  { ...SYSTEMD, interface: 'org.freedesktop.systemd1.Manager', member: 'ListUnitsByPatterns', signature: 'asas', body: [['failed'], []] },
];

describe('the method call marshaller', () => {
  it('writes the bytes dbus-next writes, for every kind of call the plugin makes', () => {
    for (const call of CALLS) {
      for (const serial of [1, 7, 65_536, 2 ** 32 - 1]) expect(marshalCall(call, serial).toString('hex'), `${call.member} #${serial}`).toBe(library(call, serial).toString('hex'));
    }
  });

  it('is read back by dbus-next as the same call', () => {
    const call = CALLS[5]!;
    const m = message.unmarshall(marshalCall(call, 9));
    expect({ serial: m.serial, path: m.path, interface: m.interface, member: m.member, destination: m.destination, signature: m.signature }).toEqual({ serial: 9, path: call.path, interface: call.interface, member: call.member, destination: call.destination, signature: 'asas' });
  });

  it('refuses what dbus-daemon would drop the connection for, and bodies it does not write', () => {
    const get = CALLS[2]!;
    const bad: [MethodCall, number][] = [
      [{ ...get, body: ['org.freedesktop.systemd1.Socket', 'Acc\0ept'] }, 1],
      [{ ...get, body: ['org.freedesktop.systemd1.Socket'] }, 1],
      [{ ...get, body: ['org.freedesktop.systemd1.Socket', 42] }, 1],
      [{ ...get, path: '/org/freedesktop/systemd1/unit/t@42.socket' }, 1],
      [{ ...get, path: '/org/freedesktop/' }, 1],
      [{ ...get, interface: 'Properties' }, 1],
      [{ ...get, member: 'Get.All' }, 1],
      [{ ...get, destination: 'org..systemd1' }, 1],
      [{ ...get, signature: 'sv' }, 1],
      [{ ...CALLS[5]!, body: [[], 'a.socket'] }, 1],
      [get, 0],
      [get, 2 ** 32],
    ];
    for (const [call, serial] of bad) expect(() => marshalCall(call, serial), JSON.stringify(call)).toThrow(MarshalError);
    expect(canMarshal('sv')).toBe(false);
    expect(canMarshal(undefined)).toBe(true);
  });
});
