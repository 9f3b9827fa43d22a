// The sync notes on the table which sockets' connection counters may have moved (the socket
// poller reads only those): on every signal about an Accept=yes socket itself (systemd signals it
// on each connection it accepts) and on every signal about one of its per-connection instances,
// wanted by a job or not; never on other units' signals, nor on a resync's listing.
import { describe, expect, it } from 'vitest';
import { unitPath } from '../../plugin/units/names.js';
import { FakeSystemd, advance, harness, settle, useSyncHarnesses, type Harness } from './sync-fake.js';

let h: Harness | undefined;
useSyncHarnesses();

const INSTANCE = 'web@3-127.0.0.1:80-127.0.0.1:5566.service';

describe('socket activity marks', () => {
  it('marks a socket on its own signals and on every signal of its instances, even ones no job wants', async () => {
    // The job wants sockets only: the instances are never in the table.
    h = harness(new FakeSystemd().unit('web.socket').unit('other.socket').unit('a.service'), { wants: (n) => n.endsWith('.socket') });
    await h.sync.start();
    const t = h.table;
    const marks = () => [t.socketActivityOf('web.socket'), t.socketActivityOf('other.socket')];
    expect(marks()).toEqual([0, 0]);
    let last = 0;
    const moved = (what: string) => {
      const now = t.socketActivityOf('web.socket');
      expect(now, what).toBeGreaterThan(last);
      expect(t.socketActivityOf('other.socket'), what).toBe(0);
      last = now;
    };
    // An accepted connection: the socket's Socket interface (Result, sent with every change).
    h.fake.emit({ sender: h.fake.owner, path: unitPath('web.socket'), interface: 'org.freedesktop.DBus.Properties', member: 'PropertiesChanged', body: ['org.freedesktop.systemd1.Socket', { Result: { value: 'success' } }, []] });
    moved('the socket signalled');
    h.fake.add(INSTANCE);
    moved('UnitNew of an instance');
    h.fake.set(INSTANCE, 'deactivating');
    moved('an instance changes state');
    h.fake.remove(INSTANCE);
    moved('UnitRemoved of an instance');
    await advance(1000);
    expect(t.get(INSTANCE)).toBeUndefined();
    // Nothing else marks it: another unit's signals, a resync.
    h.fake.set('a.service', 'failed');
    h.fake.add('b@1.service');
    await h.sync.resync();
    await settle();
    expect(marks()).toEqual([last, 0]);
  });

  it('marks the socket when one of its instances enters or leaves the table', async () => {
    h = harness(new FakeSystemd().unit('web.socket'));
    await h.sync.start();
    const before = h.table.socketActivityOf('web.socket');
    h.table.upsert({ name: INSTANCE, loadState: 'loaded', activeState: 'active', subState: 'running' });
    const added = h.table.socketActivityOf('web.socket');
    expect(added).toBeGreaterThan(before);
    h.table.remove(INSTANCE);
    expect(h.table.socketActivityOf('web.socket')).toBeGreaterThan(added);
    h.table.remove('web.socket');
    expect(h.table.socketActivityOf('web.socket')).toBe(0); // forgotten with its socket
  });
});
