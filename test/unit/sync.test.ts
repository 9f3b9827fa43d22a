// UnitSync's rules for turning a snapshot and signals into the unit table, against a fake systemd
// (sync-fake.ts) whose answers the tests hold and release: ordering of listings and signals,
// confirmed removals, batched and bounded lookups, Accept=yes groups, the Transient cache, reloads.

import { describe, expect, it, vi } from 'vitest';
import { UnitRows } from '../../plugin/systemd/listing.js';
import { GROUP_SETTLE_MS, LOOKUP_BATCH, LOOKUP_BATCH_MS, LOOKUP_WORKERS, MAX_RELOAD_MS, MAX_SIGNAL_LOOKUPS, RESYNC_EVERY_MS, resyncEveryFromEnv } from '../../plugin/systemd/sync.js';
import { unitPath } from '../../plugin/units/names.js';
import { FakeSystemd, advance, harness, settle, useSyncHarnesses, type Harness } from './sync-fake.js';

let h: Harness | undefined;
useSyncHarnesses();

/** The names looked up by lookups of given units (one pattern each), in call order. */
function lookedUp(fake: FakeSystemd): string[] {
  return fake
    .callsOf('listUnits')
    .map((c) => c.args[0] as string[])
    .filter((p) => !(p.length === 1 && p[0] === '*'))
    .flat();
}

describe('listings and signals', () => {
  it('a listing never overrides a signal that arrived after it; units without one take the listing', async () => {
    h = harness(new FakeSystemd().unit('a.service').unit('b.service'));
    await h.sync.start();
    h.fake.hold('listUnits');
    const resync = h.sync.resync();
    await settle();
    h.fake.units.get('b.service')!.activeState = 'failed'; // changed with no signal heard
    h.fake.take('listUnits').answer(); // lists a active, b failed
    h.fake.set('a.service', 'failed'); // then a fails: newer than the listing, in the same read
    await resync;
    expect(h.table.get('a.service')?.activeState).toBe('failed');
    expect(h.table.get('b.service')?.activeState).toBe('failed');
  });

  it("a new unit's lookup applies the signals that came after its listing", async () => {
    h = harness(new FakeSystemd());
    await h.sync.start();
    h.fake.hold('isTransient');
    h.fake.add('c.service');
    await advance(LOOKUP_BATCH_MS);
    h.fake.set('c.service', 'failed'); // while its Transient is read: after the listing
    h.fake.release('isTransient');
    await settle();
    const c = h.table.get('c.service');
    expect(c?.activeState).toBe('failed');
    expect(c?.failedSeq).toBeGreaterThan(0);
  });
});

describe('resyncs compare in place', () => {
  /** Rows of the next walks that were not where the previous listing had their unit, or changed. */
  function countChanged(): { changed: number } {
    const seen = { changed: 0 };
    const walk = UnitRows.prototype.walk;
    vi.spyOn(UnitRows.prototype, 'walk').mockImplementation(function (this: UnitRows, guess, same, changed) {
      return walk.call(this, guess, same, (row, unit, i) => {
        seen.changed++;
        changed(row, unit, i);
      });
    });
    return seen;
  }

  for (const needTransient of [true, false]) {
    it(`the first resync finds every unit where the start-up listing had it: no row decoded (${needTransient ? 'units added by lookups' : 'added at once'})`, async () => {
      const fake = new FakeSystemd();
      fake.rawListings = true;
      for (let i = 0; i < 20; i++) fake.unit(`u${i}.service`, i % 3 ? 'active' : 'inactive');
      h = harness(fake, { needTransient });
      await h.sync.start();
      expect(h.table.size).toBe(20);
      const seen = countChanged();
      await h.sync.resync();
      expect(seen.changed).toBe(0);
      // and a unit that did change is still seen
      fake.units.get('u4.service')!.activeState = 'failed';
      await h.sync.resync();
      expect(seen.changed).toBe(1);
      expect(h.table.get('u4.service')?.activeState).toBe('failed');
    });
  }
});

describe('restarts', () => {
  it("a new unit's restarts count from the first NRestarts signalled, also while it was looked up", async () => {
    h = harness(new FakeSystemd(), { needTransient: false });
    await h.sync.start();
    h.fake.hold('listUnits');
    h.fake.add('c.service');
    const fake = h.fake;
    const restarts = (n: number) =>
      fake.emit({ sender: fake.owner, path: unitPath('c.service'), interface: 'org.freedesktop.DBus.Properties', member: 'PropertiesChanged', body: ['org.freedesktop.systemd1.Service', { NRestarts: { value: n } }, []] });
    restarts(0); // `systemctl start`: systemd resets it
    await advance(LOOKUP_BATCH_MS);
    restarts(1); // before the listing answers
    h.fake.take('listUnits').answer();
    h.fake.release('listUnits');
    await settle();
    restarts(2); // after it
    await settle();
    expect(h.table.get('c.service')?.restarts).toBe(2);
  });
});

describe('exits', () => {
  it("a unit that failed while it was looked up keeps that run's exit", async () => {
    h = harness(new FakeSystemd(), { needTransient: false });
    await h.sync.start();
    h.fake.hold('listUnits');
    h.fake.add('c.service');
    const fake = h.fake;
    fake.emit({
      sender: fake.owner,
      path: unitPath('c.service'),
      interface: 'org.freedesktop.DBus.Properties',
      member: 'PropertiesChanged',
      body: ['org.freedesktop.systemd1.Service', { Result: { value: 'exit-code' }, ExecMainCode: { value: 1 }, ExecMainStatus: { value: 203 } }, []],
    });
    fake.set('c.service', 'failed');
    await advance(LOOKUP_BATCH_MS);
    h.fake.take('listUnits').answer();
    h.fake.release('listUnits');
    await settle();
    expect(h.table.get('c.service')?.failedExit).toEqual({ code: 1, status: 203 });
  });
});

describe('removals', () => {
  it('UnitRemoved drops a unit only once a lookup confirms it is gone', async () => {
    h = harness(new FakeSystemd().unit('a.service').unit('b.service'));
    await h.sync.start();
    h.fake.remove('a.service', true); // unloaded and loaded again at once (reset-failed + start)
    h.fake.remove('b.service');
    expect(h.table.get('b.service')).toBeDefined(); // not before the lookup answers
    await advance(LOOKUP_BATCH_MS);
    expect(lookedUp(h.fake)).toEqual(['a.service', 'b.service']);
    expect(h.table.get('a.service')).toBeDefined();
    expect(h.table.get('b.service')).toBeUndefined();
  });

  it('a removal during a lookup makes it look again: its listing predates the removal', async () => {
    h = harness(new FakeSystemd(), { needTransient: false });
    await h.sync.start();
    h.fake.hold('listUnits');
    h.fake.add('c.service');
    await advance(LOOKUP_BATCH_MS);
    h.fake.take('listUnits').answer(); // lists c...
    h.fake.remove('c.service'); // ...which is unloaded just after
    h.fake.release('listUnits');
    await settle();
    expect(lookedUp(h.fake)).toEqual(['c.service', 'c.service']);
    expect(h.table.get('c.service')).toBeUndefined();
  });
});

describe('lookups', () => {
  it('are batched: new units within LOOKUP_BATCH_MS cost one listing', async () => {
    h = harness(new FakeSystemd());
    await h.sync.start();
    const names = Array.from({ length: 10 }, (_, i) => `u${i}.service`);
    names.forEach((n) => h!.fake.add(n));
    await advance(LOOKUP_BATCH_MS - 1);
    expect(lookedUp(h.fake)).toEqual([]);
    await advance(1);
    expect(h.fake.callsOf('listUnits').at(-1)!.args[0]).toEqual(names);
    expect(h.table.size).toBe(10);
  });

  it('a full batch goes at once, the rest after LOOKUP_BATCH_MS', async () => {
    h = harness(new FakeSystemd());
    await h.sync.start();
    const before = h.fake.callsOf('listUnits').length;
    for (let i = 0; i < LOOKUP_BATCH + 6; i++) h.fake.add(`u${i}.service`);
    await settle();
    const sizes = (): number[] => h!.fake.callsOf('listUnits').slice(before).map((c) => (c.args[0] as string[]).length);
    expect(sizes()).toEqual([LOOKUP_BATCH]);
    await advance(LOOKUP_BATCH_MS);
    expect(sizes()).toEqual([LOOKUP_BATCH, 6]);
    expect(h.table.size).toBe(LOOKUP_BATCH + 6);
  });

  it(`are bounded: past ${MAX_SIGNAL_LOOKUPS} under way, one resync settles the rest`, async () => {
    h = harness(new FakeSystemd());
    await h.sync.start();
    const listings = h.fake.listingsOf(['*']).length;
    h.fake.hold('listUnits');
    for (let i = 0; i < MAX_SIGNAL_LOOKUPS + 44; i++) h.fake.add(`u${i}.service`);
    await advance(LOOKUP_BATCH_MS);
    expect(lookedUp(h.fake)).toHaveLength(MAX_SIGNAL_LOOKUPS);
    await advance(1000); // resyncSoon
    expect(h.fake.listingsOf(['*'])).toHaveLength(listings + 1);
    h.fake.release('listUnits');
    await settle();
    expect(h.table.size).toBe(MAX_SIGNAL_LOOKUPS + 44);
  });

  describe('past the bound, signals in the same read as the resync listing that follows', () => {
    /**
     * One more new unit than lookups may be under way (its UnitNew dropped: the resync will list
     * it), the lookups answered, then the resync's listing held. Returns the unit left to it.
     */
    async function overflowToResync(fake: FakeSystemd): Promise<string> {
      fake.hold('listUnits');
      for (let i = 0; i <= MAX_SIGNAL_LOOKUPS; i++) fake.add(`u${i}.target`);
      await settle();
      while (fake.held.length > 0) fake.take('listUnits').answer();
      await settle();
      expect(h!.table.size).toBe(MAX_SIGNAL_LOOKUPS);
      const listings = fake.listingsOf(['*']).length;
      await advance(1000); // resyncSoon
      expect(fake.listingsOf(['*'])).toHaveLength(listings + 1);
      return `u${MAX_SIGNAL_LOOKUPS}.target`;
    }

    it("a unit's change right after the listing is kept, though the listing saw the unit before it", async () => {
      h = harness(new FakeSystemd(), { needTransient: false });
      await h.sync.start();
      await overflowToResync(h.fake);
      h.fake.add('x.target', 'activating'); // while the listing is under way: its lookup waits for the batch
      h.fake.take('listUnits').answer(); // lists x activating...
      h.fake.set('x.target', 'active'); // ...which is active just after, said in the same read
      h.fake.release('listUnits');
      await advance(LOOKUP_BATCH_MS);
      await advance(10_000); // no later resync comes to mend it
      expect(h.table.get('x.target')?.activeState).toBe('active');
    });

    it('a unit removed right after the listing is not added', async () => {
      h = harness(new FakeSystemd(), { needTransient: false });
      await h.sync.start();
      const dropped = await overflowToResync(h.fake);
      h.fake.take('listUnits').answer(); // lists the unit whose UnitNew was dropped...
      h.fake.remove(dropped); // ...which is unloaded just after, said in the same read
      h.fake.release('listUnits');
      await advance(LOOKUP_BATCH_MS);
      await advance(10_000);
      expect(h.table.get(dropped)).toBeUndefined();
      expect(h.table.size).toBe(MAX_SIGNAL_LOOKUPS);
    });
  });
});

describe("signals while a unit waits for a resync's lookup", () => {
  const restarts = (fake: FakeSystemd, name: string, n: number) =>
    fake.emit({ sender: fake.owner, path: unitPath(name), interface: 'org.freedesktop.DBus.Properties', member: 'PropertiesChanged', body: ['org.freedesktop.systemd1.Service', { NRestarts: { value: n } }, []] });

  /**
   * A resync finds one more new unit than it has workers, their Transient reads held: the last one
   * waits for a worker, and meanwhile it fails and is started again (a batched lookup takes those
   * signals, as for any unit not in the table). Returns that unit.
   */
  async function lastOfAResync(fake: FakeSystemd, sync: Harness['sync']): Promise<string> {
    const names = Array.from({ length: LOOKUP_WORKERS + 1 }, (_, i) => `n${i}.service`);
    names.forEach((n) => fake.unit(n)); // loaded while nothing was heard (the resync lists them)
    fake.hold('isTransient');
    void sync.resync();
    await settle();
    expect(fake.held).toHaveLength(LOOKUP_WORKERS);
    const last = names.at(-1)!;
    restarts(fake, last, 1);
    fake.set(last, 'failed');
    fake.set(last, 'activating', 'start');
    return last;
  }

  it("its failure and restarts base are kept when the resync's lookup adds it before the batch is listed", async () => {
    h = harness(new FakeSystemd());
    await h.sync.start();
    const last = await lastOfAResync(h.fake, h.sync);
    h.fake.release('isTransient');
    await settle(); // the resync's lookup adds it, from the listing before the signals
    await advance(LOOKUP_BATCH_MS);
    const u = h.table.get(last);
    expect(u?.activeState).toBe('activating');
    expect(u?.failedSeq).toBeGreaterThan(0);
    restarts(h.fake, last, 2);
    expect(u?.restarts).toBe(1);
  });

  it("its failure is kept when the batch is listed while the resync's lookup of it runs", async () => {
    h = harness(new FakeSystemd());
    await h.sync.start();
    const last = await lastOfAResync(h.fake, h.sync);
    while (h.fake.held.length > 0) h.fake.take('isTransient').answer();
    await settle();
    expect(h.fake.held).toHaveLength(1); // the last unit's lookup, under way
    await advance(LOOKUP_BATCH_MS);
    h.fake.release('isTransient');
    await settle();
    const u = h.table.get(last);
    expect(u?.activeState).toBe('activating');
    expect(u?.failedSeq).toBeGreaterThan(0);
  });
});

describe('Accept=yes instances', () => {
  const instance = (i: number): string => `echo@${i}-127.0.0.1:80-127.0.0.1:${5000 + i}.service`;

  it("a burst of a socket's per-connection instances is one listing of the group, not one each", async () => {
    h = harness(new FakeSystemd().unit('echo.socket'), { needTransient: false });
    await h.sync.start();
    for (let i = 1; i <= 20; i++) h.fake.add(instance(i));
    await advance(GROUP_SETTLE_MS);
    expect(lookedUp(h.fake)).toEqual(['echo@*.service']);
    expect(h.table.size).toBe(21);
    // Connections that ended: their instances go with the group's next listing.
    for (let i = 1; i <= 5; i++) h.fake.remove(instance(i));
    await advance(GROUP_SETTLE_MS);
    expect(lookedUp(h.fake)).toEqual(['echo@*.service', 'echo@*.service']);
    expect(h.table.size).toBe(16);
    expect(h.table.get(instance(1))).toBeUndefined();
  });
});

describe('Transient', () => {
  it('is read once per name, even across an unload and a load', async () => {
    h = harness(new FakeSystemd().unit('t.service', 'active', { transient: true }).unit('u.service'));
    await h.sync.start();
    const reads = (): number => h!.fake.callsOf('isTransient').filter((c) => c.args[0] === unitPath('t.service')).length;
    expect(reads()).toBe(1);
    expect(h.table.get('t.service')?.transient).toBe(true);
    h.fake.remove('t.service');
    await advance(LOOKUP_BATCH_MS);
    expect(h.table.get('t.service')).toBeUndefined();
    h.fake.add('t.service', 'active', { transient: true });
    await advance(LOOKUP_BATCH_MS);
    expect(h.table.get('t.service')?.transient).toBe(true);
    expect(reads()).toBe(1);
  });

  it('is not read when no job skips transient units', async () => {
    h = harness(new FakeSystemd().unit('t.service', 'active', { transient: true }), { needTransient: false });
    await h.sync.start();
    expect(h.fake.callsOf('isTransient')).toEqual([]);
    expect(h.table.get('t.service')?.transient).toBeUndefined();
  });
});

describe('daemon-reload', () => {
  it('ignores the units systemd re-creates while reloading, then resyncs once, in a new generation', async () => {
    h = harness(new FakeSystemd().unit('a.service').unit('b.service'));
    await h.sync.start();
    const generation = h.sync.generation;
    const calls = h.fake.callsOf('listUnits').length;
    h.fake.reloading(true);
    h.fake.remove('a.service');
    h.fake.remove('b.service', true);
    h.fake.add('b.service');
    h.fake.add('c.service');
    await advance(LOOKUP_BATCH_MS * 4);
    expect(h.fake.callsOf('listUnits')).toHaveLength(calls);
    expect([...h.table.units()].map((u) => u.name)).toEqual(['a.service', 'b.service']);
    h.fake.reloading(false);
    expect(h.sync.generation).toBe(generation + 1);
    await settle();
    expect(h.fake.callsOf('listUnits').slice(calls).map((c) => c.args[0])).toEqual([['*']]);
    expect([...h.table.units()].map((u) => u.name).sort()).toEqual(['b.service', 'c.service']);
  });

  it("a reload's end makes a lookup under way look again: its listing may predate the reload", async () => {
    h = harness(new FakeSystemd(), { needTransient: false });
    await h.sync.start();
    h.fake.hold('listUnits');
    h.fake.add('c.service');
    await advance(LOOKUP_BATCH_MS);
    h.fake.take('listUnits').answer(); // lists c...
    h.fake.reloading(true);
    h.fake.units.delete('c.service'); // ...whose unit file the reload removed (its UnitRemoved ignored)
    h.fake.remove('c.service');
    h.fake.reloading(false);
    await settle();
    // Not even until the resync after the reload answers does the table hold it.
    expect(h.table.get('c.service')).toBeUndefined();
    h.fake.release('listUnits');
    await settle();
    expect(h.table.get('c.service')).toBeUndefined();
    expect(lookedUp(h.fake)).toEqual(['c.service', 'c.service']);
  });

  it(`a reload that never ends stops counting as one after ${MAX_RELOAD_MS / 1000} s, with a resync`, async () => {
    h = harness(new FakeSystemd());
    await h.sync.start();
    const generation = h.sync.generation;
    h.fake.reloading(true); // its Reloading(false) is lost
    h.fake.add('c.service');
    await advance(MAX_RELOAD_MS - 1);
    expect(h.table.get('c.service')).toBeUndefined();
    expect(h.sync.generation).toBe(generation);
    await advance(1);
    expect(h.stderr).toContain(`systemd said it is reloading ${MAX_RELOAD_MS / 1000} s ago and never said it is done; resyncing`);
    expect(h.sync.generation).toBe(generation + 1);
    expect(h.table.get('c.service')).toBeDefined();
    h.fake.add('d.service'); // signals count again
    await advance(LOOKUP_BATCH_MS);
    expect(h.table.get('d.service')).toBeDefined();
  });
});

describe('the safety resync interval (SYSTEMDUNITS_RESYNC_EVERY)', () => {
  it('takes whole seconds from 5 to 3600; anything else keeps 5 min with one line saying so', () => {
    expect(resyncEveryFromEnv(undefined)).toEqual({ ms: RESYNC_EVERY_MS });
    expect(resyncEveryFromEnv('')).toEqual({ ms: RESYNC_EVERY_MS });
    expect(resyncEveryFromEnv('5')).toEqual({ ms: 5000 });
    expect(resyncEveryFromEnv(' 30 ')).toEqual({ ms: 30_000 });
    expect(resyncEveryFromEnv('3600')).toEqual({ ms: 3_600_000 });
    for (const bad of ['4', '0', '3601', '-10', '1.5', '10s', 'abc', '1e3', '0x10', '99999', 'x\ny']) {
      const r = resyncEveryFromEnv(bad);
      expect(r.ms, bad).toBe(RESYNC_EVERY_MS);
      expect(r.problem, bad).toMatch(/^ignoring SYSTEMDUNITS_RESYNC_EVERY '.*': expected whole seconds from 5 to 3600/);
      expect(r.problem, bad).not.toContain('\n');
    }
  });
});
