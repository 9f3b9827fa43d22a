// Socket unit properties that systemd never signals and that must therefore be read: the
// connection counters (NAccepted, NConnections, NRefused), and the few constant-until-reload
// properties the counters' meaning depends on (Accept) or the units table shows (Listen, Triggers).
//
// What moves where (systemd 252's socket_enter_running, checked in a sandbox too):
// - Accept=yes: NAccepted counts accepted connections, NConnections the ones whose service
//   instance still runs, NRefused the connections dropped by MaxConnections=,
//   MaxConnectionsPerSource=, the trigger limit, or a pending stop.
// - Accept=no: NAccepted and NConnections stay 0 forever; NRefused moves only when the trigger
//   limit is hit, which also fails the socket (Result trigger-limit-hit): a state change the
//   signals already carry. So only Accept=yes sockets are worth reading.
// When they move, and so when they are read, is socket-poller.ts's part.

import { unitPath } from '../units/names.js';
import type { SocketCounters, Unit, UnitTable } from '../units/table.js';
import { debugFor, errorText } from '../log.js';
import { compactIfGrown, releaseMemorySoon } from '../memory.js';
import { BusCallError } from './bus.js';
import { CoalescedRun } from './coalesced.js';
import { mapLimited } from './limit.js';
import type { SystemdLink } from './link.js';
import type { SystemdManager } from './manager.js';

const debug = debugFor('sockets');

export const SOCKET_INTERFACE = 'org.freedesktop.systemd1.Socket';
export const UNIT_INTERFACE = 'org.freedesktop.systemd1.Unit';

/** How many Accept reads run at once: a background task that must not slow start-up. */
const ACCEPT_CONCURRENCY = 4;
/** Accept reads in one go after which the heap is compacted (as after a listing). */
const RELEASE_AFTER = 500;
/** A long pass looks at the heap every so many reads, and compacts it once it grew by ACCEPT_GARBAGE (at start too: a listing's). */
const ACCEPT_CHUNK = 250;
const ACCEPT_GARBAGE = 8 << 20;
/**
 * After a reload (or re-exec), sockets read before it are read again at this rate, counted from
 * the first pass that sees it: none at once. Every read is a round trip (~0.2 ms of CPU here, a
 * listing costs ~0.025 ms a unit), so reading all 1,000 sockets again cost the plugin several
 * times what the reload's own resync does; spread, the reload costs its resync, and a reload soon
 * followed by another (a package manager reloads once per package) does not have every read
 * redone. The value read before the reload stands meanwhile (it rarely changes).
 */
export const ACCEPT_REREADS_PER_S = 50;

/** One reading of a socket's counters (the poller adds what it knows of when and why). */
export type CounterValues = Pick<SocketCounters, 'accepted' | 'connections' | 'refused'>;

/** Errors that mean "this systemd has no such property", not "the call failed". */
function isMissingProperty(err: unknown): boolean {
  return (
    err instanceof BusCallError &&
    (err.dbusName === 'org.freedesktop.DBus.Error.UnknownProperty' || err.dbusName === 'org.freedesktop.DBus.Error.InvalidArgs')
  );
}

function asCount(value: unknown): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint') return Number(value);
  throw new Error(`not a counter: ${typeof value}`);
}

/** The three counters of one socket; `withRefused` false skips NRefused (known to be missing). */
export async function readCounters(m: SystemdManager, path: string, withRefused = true): Promise<CounterValues> {
  const [accepted, connections, refused] = await Promise.all([
    m.getProperty(path, SOCKET_INTERFACE, 'NAccepted'),
    m.getProperty(path, SOCKET_INTERFACE, 'NConnections'),
    withRefused
      ? m.getProperty(path, SOCKET_INTERFACE, 'NRefused').catch((err: unknown) => {
          if (isMissingProperty(err)) return null;
          throw err;
        })
      : Promise.resolve(null),
  ]);
  return { accepted: asCount(accepted), connections: asCount(connections), refused: refused === null ? null : asCount(refused) };
}

/**
 * NConnections from which systemd refuses connections: MaxConnections, or MaxConnectionsPerSource
 * when set and lower (one source's connections are among NConnections). Constant until a reload.
 */
export async function readLimit(m: SystemdManager, path: string): Promise<number> {
  const [max, perSource] = await Promise.all([
    m.getProperty(path, SOCKET_INTERFACE, 'MaxConnections'),
    // systemd before 232 has none
    m.getProperty(path, SOCKET_INTERFACE, 'MaxConnectionsPerSource').catch((err: unknown) => {
      if (isMissingProperty(err)) return 0;
      throw err;
    }),
  ]);
  const perSourceLimit = asCount(perSource);
  return perSourceLimit > 0 ? Math.min(asCount(max), perSourceLimit) : asCount(max);
}

export async function readAccept(m: SystemdManager, path: string): Promise<boolean> {
  return (await m.getProperty(path, SOCKET_INTERFACE, 'Accept')) === true;
}

/**
 * Accept of every socket unit, read once per unit and again after systemd reloads its unit files
 * (the link's `generation` moves), and written into the model (`unit.accept`, the value itself).
 * Reads run in the background, a few at a time; until a unit's value is known `get` answers
 * undefined, and after a reload the old value stands until re-read (spread: ACCEPT_REREADS_PER_S).
 * What it keeps besides the model is sized by the few Accept=yes sockets and the re-reads under way,
 * not by every socket: a map by name of all 10,000 was 0.45 MB of hash table for 200 true values.
 */
export class SocketAcceptIndex {
  /**
   * Accept=yes sockets read, by name, with the link generation each was read in: a socket
   * unloaded and loaded again (a new Unit) keeps its charts. An Accept=no one is read again then.
   */
  private readonly yes = new Map<string, number>();
  /** The link generation of the latest pass. */
  private generation: number | undefined;
  /** Units read before that generation and not since, in the order to read them again (Accept=yes first): empty but after a reload. */
  private readonly stale = new Set<Unit>();
  private readonly reads = new CoalescedRun(() => this.readMissing());
  /** The table's membership and the link's generation at the latest pass that left nothing unread. */
  private complete: { membership: number; generation: number } | undefined;
  /** The re-reads of the latest generation: when a pass first saw it (ms), and how many were read since. */
  private rereads = { generation: 0, sinceMs: 0, done: 0 };

  constructor(
    private readonly table: UnitTable,
    private readonly link: Pick<SystemdLink, 'systemd' | 'generation'>,
    /** Monotonic ms (tests pass their own). */
    private readonly now: () => number = () => performance.now(),
  ) {}

  get(name: string): boolean | undefined {
    return this.table.get(name)?.accept;
  }

  /** Like `get`, but only a value read since the latest reload. */
  getCurrent(name: string): boolean | undefined {
    const u = this.table.get(name);
    if (u?.accept === undefined || this.generation !== this.link.generation || this.stale.has(u)) return undefined;
    return u.accept;
  }

  /** Starts reading, in the background, what is missing or older than the latest reload. */
  refresh(): Promise<void> {
    return this.reads.request();
  }

  private async readMissing(): Promise<void> {
    const m = this.link.systemd;
    if (!m) return;
    const membership = this.table.membership;
    const generation = this.link.generation;
    // Asked every round of every job: no unit came or went, and no reload, since a pass that left
    // nothing unread means nothing to do (a pass is a walk over the whole table).
    if (this.complete?.membership === membership && this.complete.generation === generation) return;
    for (const name of this.yes.keys()) if (!this.table.get(name)) this.yes.delete(name);
    const reloaded = this.generation !== undefined && this.generation !== generation;
    this.generation = generation;
    // After a reload every value read is old again, whatever was re-read of the one before.
    if (reloaded) this.stale.clear();
    else for (const u of this.stale) if (this.table.get(u.name) !== u) this.stale.delete(u);
    if (this.rereads.generation !== generation) this.rereads = { generation, sinceMs: this.now(), done: 0 };
    // Never read: now. Read before the latest reload: as the rate allows, Accept=yes ones first
    // (their charts go if it is no longer so).
    const todo: Unit[] = [];
    const againNo: Unit[] = [];
    for (const u of this.table.units()) {
      if (u.type !== 'socket') continue;
      if (u.accept === undefined) {
        // A unit unloaded and loaded again is a new entry in the model: it gets what is known.
        const readIn = this.yes.get(u.name);
        if (readIn === undefined) {
          todo.push(u);
          continue;
        }
        u.accept = true;
        if (readIn !== generation) this.stale.add(u);
      } else if (reloaded) {
        if (u.accept) this.stale.add(u);
        else againNo.push(u);
      }
    }
    for (const u of againNo) this.stale.add(u);
    if (todo.length === 0 && this.stale.size === 0) {
      this.complete = { membership, generation };
      return;
    }
    const allowed = Math.floor(((this.now() - this.rereads.sinceMs) / 1000) * ACCEPT_REREADS_PER_S) - this.rereads.done;
    const rereading = Math.max(0, Math.min(allowed, this.stale.size));
    this.rereads.done += rereading;
    let taken = 0;
    for (const u of this.stale) {
      if (taken++ === rereading) break;
      todo.push(u);
    }
    const left = this.stale.size - rereading;
    if (todo.length === 0) return;
    const started = performance.now();
    let failed = 0;
    const read = async (u: Unit): Promise<void> => {
      try {
        const accept = await readAccept(m, unitPath(u.name));
        u.accept = accept;
        this.stale.delete(u);
        if (accept) this.yes.set(u.name, generation);
        else this.yes.delete(u.name);
      } catch (err) {
        failed++;
        debug('cannot read Accept of %s: %s', u.name, errorText(err)); // unloaded meanwhile, or the bus went
      }
    };
    // V8 soon allocates each call's objects straight in its old space (pretenured: they outlive a
    // young collection while the reply is on its way), where only a full GC frees them: 10,000
    // reads grew the heap by ~45 MB before one came, the plugin's peak. Compacted as it grows.
    for (let at = 0; at < todo.length; at += ACCEPT_CHUNK) {
      if (todo.length > ACCEPT_CHUNK) compactIfGrown(ACCEPT_GARBAGE);
      await mapLimited(todo.slice(at, at + ACCEPT_CHUNK), { concurrency: ACCEPT_CONCURRENCY }, read);
    }
    if (failed === 0 && left === 0) this.complete = { membership, generation };
    debug('read Accept of %d sockets (%d again after a reload, %d left for later) in %d ms (%d failed)', todo.length, rereading, left, Math.round(performance.now() - started), failed);
    // Thousands of replies leave a heap V8 would keep (socket activity is on by default): give it back.
    if (todo.length >= RELEASE_AFTER) releaseMemorySoon();
  }
}
