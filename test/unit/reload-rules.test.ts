// The unit signals' match rules around a daemon-reload (SystemdConnection.reloading, called by the
// sync): off at Reloading(true), back at Reloading(false) or when its end never came, before the
// resync's listing; a connection whose rules could not be put back is replaced. On the fake
// systemd of sync-fake.ts, whose sessions get a recording muteUnitSignals here.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MAX_RELOAD_MS } from '../../plugin/systemd/sync.js';
import { FakeSession, FakeSystemd, advance, harness, settle, useSyncHarnesses, type Harness } from './sync-fake.js';

useSyncHarnesses();

/** What happened, in order: mute/unmute per session, and the fake's calls as they were made. */
let log: string[];
let failUnmute: Error | undefined;

beforeEach(() => {
  log = [];
  failUnmute = undefined;
  const mutedSessions = new WeakSet<FakeSession>();
  // As the real session does it: a no-op when already so.
  (FakeSession.prototype as { muteUnitSignals?: (muted: boolean) => Promise<void> }).muteUnitSignals = function (this: FakeSession, muted: boolean) {
    if (muted === mutedSessions.has(this)) return Promise.resolve();
    if (muted) mutedSessions.add(this);
    else mutedSessions.delete(this);
    log.push(muted ? 'mute' : 'unmute');
    return !muted && failUnmute ? Promise.reject(failUnmute) : Promise.resolve();
  };
});
afterEach(() => {
  delete (FakeSession.prototype as { muteUnitSignals?: unknown }).muteUnitSignals;
});

/** The sync started, and from then on each listing noted in `log` as it is made. */
async function started(): Promise<Harness> {
  const h = harness(new FakeSystemd().unit('a.service'));
  await h.sync.start();
  const listUnits = h.fake.session.listUnits.bind(h.fake.session);
  h.fake.session.listUnits = (patterns) => {
    log.push('list');
    return listUnits(patterns);
  };
  log.length = 0;
  return h;
}

describe('the unit signals during a daemon-reload', () => {
  it('are muted at Reloading(true) and back before the listing that follows Reloading(false)', async () => {
    const h = await started();
    h.fake.reloading(true);
    await settle();
    expect(log).toEqual(['mute']);
    h.fake.reloading(false);
    await settle();
    expect(log).toEqual(['mute', 'unmute', 'list']);
  });

  it(`are back after ${MAX_RELOAD_MS / 1000} s when the reload's end never comes, before its resync`, async () => {
    const h = await started();
    h.fake.reloading(true);
    await advance(MAX_RELOAD_MS);
    expect(log).toEqual(['mute', 'unmute', 'list']);
    expect(h.fake.sessions).toHaveLength(1);
  });

  it('a connection whose rules cannot be put back is replaced (a new one has every rule)', async () => {
    const h = await started();
    failUnmute = new Error('AddMatch: no answer');
    h.fake.reloading(true);
    h.fake.reloading(false);
    await settle();
    expect(h.fake.sessions[0]!.closed).toBe(true);
    await advance(5000);
    expect(h.fake.sessions.length).toBeGreaterThan(1);
    expect(h.fake.session.closed).toBe(false);
    expect(h.sync.inStep).toBe(true);
  });

  it('a reload longer than the quiet spell is not taken for a hang: no ping until it ends', async () => {
    const h = await started();
    h.fake.reloading(true);
    await advance(30_000);
    expect(h.fake.callsOf('ping')).toHaveLength(0);
    h.fake.reloading(false);
    await advance(5_000);
    expect(h.fake.callsOf('ping')).toHaveLength(1);
  });
});
