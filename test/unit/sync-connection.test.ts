// UnitSync's connection rules against a fake systemd (sync-fake.ts) and a fake clock: whose signals
// count (systemd's current owner only), owner changes, reconnect backoff, and the watchdog.

import { describe, expect, it } from 'vitest';
import { BusCallError, TIMEOUT_ERROR } from '../../plugin/systemd/bus.js';
import { BACKOFF_MS, SHORT_LIVED_MS, UNREACHABLE_RETRY_MS } from '../../plugin/systemd/sync.js';
import { FakeSystemd, advance, harness, settle, useSyncHarnesses, type Harness } from './sync-fake.js';

let h: Harness | undefined;
useSyncHarnesses();

const timeout = (what: string) => () => new BusCallError(`${what}: no answer within 5000 ms`, TIMEOUT_ERROR);

/** Milliseconds between consecutive connection attempts from the `from`th on. */
function gaps(fake: FakeSystemd, from: number, lostAt: number): number[] {
  const at = [lostAt, ...fake.connects.slice(from)];
  return at.slice(1).map((t, i) => t - at[i]!);
}

describe('owner', () => {
  it("drops signals not sent by systemd's current owner, and says so", async () => {
    h = harness(new FakeSystemd().unit('a.service'));
    await h.sync.start();
    h.fake.set('a.service', 'failed', 'failed', ':1.99'); // forged by another client
    await advance(0);
    expect(h.table.get('a.service')?.activeState).toBe('active');
    expect(h.sync.droppedSignals).toBe(1);
    expect(h.stderr.some((l) => l.startsWith('ignored 1 D-Bus signal not sent by systemd') && l.includes(':1.99 (uid 1000, pid 4242)'))).toBe(true);
    // A NameOwnerChanged that is not from the bus daemon does not hand systemd's name over either.
    h.fake.changeOwner(':1.99', ':1.99');
    h.fake.set('a.service', 'failed', 'failed', ':1.99');
    expect(h.table.get('a.service')?.activeState).toBe('active');
    h.fake.set('a.service', 'failed'); // systemd itself
    expect(h.table.get('a.service')?.activeState).toBe('failed');
  });

  it('a new owner (daemon-reexec): subscribe again, resync, and take signals from it only', async () => {
    h = harness(new FakeSystemd().unit('a.service'));
    await h.sync.start();
    const generation = h.sync.generation;
    const listings = h.fake.listingsOf(['*']).length;
    const subscribes = h.fake.callsOf('subscribe').length;
    h.fake.units.get('a.service')!.activeState = 'failed'; // changed across the re-exec, unsaid
    h.fake.changeOwner(':1.2');
    await settle();
    expect(h.sync.generation).toBe(generation + 1);
    expect(h.fake.callsOf('subscribe')).toHaveLength(subscribes + 1);
    expect(h.fake.listingsOf(['*'])).toHaveLength(listings + 1);
    expect(h.table.get('a.service')?.activeState).toBe('failed');
    h.fake.set('a.service', 'active', 'running', ':1.1'); // the old owner is no one now
    expect(h.table.get('a.service')?.activeState).toBe('failed');
    h.fake.set('a.service', 'active', 'running', ':1.2');
    expect(h.table.get('a.service')?.activeState).toBe('active');
  });

  it("GetNameOwner's answer does not undo a NameOwnerChanged that arrived after it", async () => {
    h = harness(new FakeSystemd().unit('a.service'));
    h.fake.hold('owner');
    const started = h.sync.start();
    await settle();
    h.fake.take('owner').answer(); // ':1.1'...
    h.fake.changeOwner(':1.2'); // ...and systemd re-executes right after
    h.fake.release('owner');
    await started;
    await settle();
    h.fake.set('a.service', 'failed', 'failed', ':1.2');
    expect(h.table.get('a.service')?.activeState).toBe('failed');
    expect(h.sync.droppedSignals).toBe(0);
  });

  it('no owner: out of step (charts pause) until systemd is back on the bus', async () => {
    h = harness(new FakeSystemd().unit('a.service'));
    await h.sync.start();
    expect(h.sync.inStep).toBe(true);
    h.fake.changeOwner('');
    expect(h.sync.inStep).toBe(false);
    expect(h.sync.systemd).toBeUndefined();
    expect(h.stderr).toContain('systemd left the system bus; charts pause until it is back');
    h.fake.changeOwner(':1.3');
    await settle();
    expect(h.sync.inStep).toBe(true);
    expect(h.sync.systemd).toBe(h.fake.session.systemd);
  });
});

describe('reconnecting', () => {
  it('backs off along BACKOFF_MS while the bus answers but systemd does not', async () => {
    h = harness(new FakeSystemd().unit('a.service'));
    await h.sync.start();
    await advance(SHORT_LIVED_MS); // a long-lived connection: no backoff carried over
    h.fake.failWith('owner', timeout('GetNameOwner'));
    const from = h.fake.connects.length;
    const lostAt = Date.now();
    h.fake.session.close('connection closed');
    expect(h.sync.inStep).toBe(false);
    const expected = [...BACKOFF_MS, BACKOFF_MS.at(-1)!];
    await advance(expected.reduce((a, b) => a + b, 0));
    expect(gaps(h.fake, from, lostAt)).toEqual(expected);
    expect(h.stderr).toContain('lost the system bus (connection closed); charts pause, reconnecting');
    expect(h.stderr).toContain('cannot reconnect to the system bus: GetNameOwner: no answer within 5000 ms; retrying');
    h.fake.failWith('owner', undefined);
    await advance(BACKOFF_MS.at(-1)!);
    expect(h.sync.inStep).toBe(true);
    expect(h.stderr).toContain('reconnected to the system bus at unix:path=/fake/bus; 1 units');
  });

  it(`retries every ${UNREACHABLE_RETRY_MS} ms while the bus cannot be reached, then backs off afresh`, async () => {
    h = harness(new FakeSystemd().unit('a.service'));
    await h.sync.start();
    await advance(SHORT_LIVED_MS);
    h.fake.reachable = false;
    const from = h.fake.connects.length;
    const lostAt = Date.now();
    h.fake.session.close('connection ended');
    await advance(BACKOFF_MS[0]! + 5 * UNREACHABLE_RETRY_MS);
    expect(gaps(h.fake, from, lostAt)).toEqual([BACKOFF_MS[0], ...Array(5).fill(UNREACHABLE_RETRY_MS)]);
    // The bus is back, systemd not yet on it: from there the backoff starts over.
    h.fake.reachable = true;
    h.fake.failWith('owner', timeout('GetNameOwner'));
    await advance(UNREACHABLE_RETRY_MS + BACKOFF_MS[0]! + BACKOFF_MS[1]!);
    expect(gaps(h.fake, from, lostAt).slice(6)).toEqual([UNREACHABLE_RETRY_MS, BACKOFF_MS[0], BACKOFF_MS[1]]);
  });

  it('connections lost soon after they were made carry the backoff over; a long-lived one resets it', async () => {
    h = harness(new FakeSystemd().unit('a.service'));
    await h.sync.start();
    const delays: number[] = [];
    const loseAfter = async (ms: number): Promise<void> => {
      await advance(ms);
      const from = h!.fake.connects.length;
      const lostAt = Date.now();
      h!.fake.session.close('connection closed');
      await advance(BACKOFF_MS.at(-1)!);
      expect(h!.sync.inStep).toBe(true);
      delays.push(...gaps(h!.fake, from, lostAt));
    };
    for (let i = 0; i < 4; i++) await loseAfter(1000);
    await loseAfter(SHORT_LIVED_MS);
    expect(delays).toEqual([BACKOFF_MS[0], BACKOFF_MS[1], BACKOFF_MS[2], BACKOFF_MS[3], BACKOFF_MS[0]]);
  });
});

describe('watchdog', () => {
  it('a systemd that stops answering pings puts the sync out of step, and back once it answers', async () => {
    h = harness(new FakeSystemd().unit('a.service'));
    await h.sync.start();
    h.fake.failWith('ping', timeout('Ping'));
    await advance(4000); // quiet, but not long enough to ask
    expect(h.fake.callsOf('ping')).toEqual([]);
    await advance(2000);
    expect(h.sync.inStep).toBe(false);
    expect(h.stderr).toContain('systemd does not answer (Ping: no answer within 5000 ms); charts pause until it does');
    const listings = h.fake.listingsOf(['*']).length;
    h.fake.failWith('ping', undefined);
    await advance(1000);
    expect(h.stderr).toContain('systemd answers again; resyncing');
    expect(h.fake.listingsOf(['*'])).toHaveLength(listings + 1);
    expect(h.sync.inStep).toBe(true);
  });

  it('a connection on which neither systemd nor the bus daemon answers is replaced', async () => {
    h = harness(new FakeSystemd().unit('a.service'));
    await h.sync.start();
    h.fake.failWith('ping', timeout('Ping'));
    h.fake.failWith('isOnBus', timeout('NameHasOwner'));
    await advance(5000); // the first check past quietMs
    expect(h.fake.sessions[0]!.closed).toBe(true);
    expect(h.sync.inStep).toBe(false);
    expect(h.stderr.some((l) => l.startsWith('lost the system bus (no answer on the connection: neither systemd nor the bus daemon answered a ping'))).toBe(true);
    h.fake.failWith('ping', undefined);
    h.fake.failWith('isOnBus', undefined);
    await advance(BACKOFF_MS[0]!);
    expect(h.fake.sessions).toHaveLength(2);
    expect(h.sync.inStep).toBe(true);
  });

  it('whenInStep waits for the listing under way, and gives up at its deadline', async () => {
    h = harness(new FakeSystemd().unit('a.service'));
    h.fake.hold('listUnits');
    const started = h.sync.start();
    await settle();
    let got: unknown = 'pending';
    void h.sync.whenInStep(performance.now() + 60_000).then((m) => (got = m));
    await settle();
    expect(got).toBe('pending');
    h.fake.release('listUnits');
    await started;
    await settle();
    expect(got).toBe(h.fake.session.systemd);
    h.fake.changeOwner('');
    const late = h.sync.whenInStep(performance.now() + 100);
    await advance(100);
    expect(await late).toBeUndefined();
  });
});
