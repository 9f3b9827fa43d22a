// Keeps the unit table in step with systemd: the first snapshot, then signals, and a full resync
// after a daemon-reload, after systemd changes bus owner (daemon-reexec), after a reconnect, and on
// a slow safety timer. The connection itself (reconnects, backoff, watchdog, whose signals count)
// is connection.ts's; this turns what systemd says into the table: ordering of listings and
// signals, lookups of single units, Accept=yes groups, the Transient cache, reloads. It writes the
// table; it knows nothing about charts.

import { type Seq } from './bus.js';
import { CoalescedRun } from './coalesced.js';
import { SystemdConnection, isConnectionError, type ConnectionOptions } from './connection.js';
import type { SystemdLink } from './link.js';
import { listedUnit, UnitRows } from './listing.js';
import { escapeGlob, type ListedUnit, type Listing, type SystemdManager, type UnitEvent } from './manager.js';
import type { SystemdSession } from './port.js';
import { instanceGroupOf, perConnectionGroup, type InstanceGroup } from '../units/instances.js';
import { unitNameFromPath, unitPath } from '../units/names.js';
import { isKnownState } from '../units/states.js';
import { REMOVED, type StateChange, type Unit, type UnitSnapshot, type UnitTable } from '../units/table.js';
import { debugFor, errorText, logError, logErrorThrottled } from '../log.js';
import { releaseYoungNow } from '../memory.js';

export { BACKOFF_MS, NoSystemdError, SHORT_LIVED_MS, UNREACHABLE_RETRY_MS, busHint } from './connection.js';

const debug = debugFor('sync');

export interface SyncOptions extends ConnectionOptions {
  /** Globs for ListUnitsByPatterns: the union of every job's include. */
  readonly patterns: readonly string[];
  /** Whether any job wants this unit (by name). */
  readonly wants: (name: string) => boolean;
  /** Whether a job skips transient units, so the Transient property must be read. */
  readonly needTransient: boolean;
  readonly resyncEveryMs?: number;
  /** Called after every full listing has been applied (e.g. to give memory back). */
  readonly onSnapshot?: () => void;
}

/** A unit being looked up after UnitNew/UnitRemoved or a signal from a unit not in the table. */
interface PendingLookup {
  /** What signals said meanwhile; those that arrived after the listing are newer than it. */
  changes: { seq: Seq; change: StateChange }[];
  /** Another event arrived meanwhile: look again when done. */
  again: boolean;
}

/** How many new units a resync looks up at a time: enough to keep the bus's calls in flight busy. */
export const LOOKUP_WORKERS = 64;

/** How many names' Transient property to remember (it never changes for a name). */
export const TRANSIENT_CACHE = 10_000;

/**
 * Lookups of single units that signals may start at once. Beyond it (a storm of new units) one
 * resync settles them all: one listing instead of one call each, and no map growing per name.
 */
export const MAX_SIGNAL_LOOKUPS = 256;
/** Units looked up by one listing, at most; and how long a batch waits for more to come. */
export const LOOKUP_BATCH = 64;
export const LOOKUP_BATCH_MS = 50;
/** What signals said of a unit while it is looked up: only the latest matter. */
const MAX_PENDING_CHANGES = 16;
/** Accept=yes instance groups looked up at once (one listing by template pattern each). */
const MAX_GROUP_LOOKUPS = 32;
/** How long a group's listing waits for more of a burst to come. */
export const GROUP_SETTLE_MS = 100;
/** When a group's listing went unanswered, how long until it is tried again. */
const GROUP_RETRY_MS = 1000;
/** New units of a group completed at a time (Transient/Result reads when needed). */
const GROUP_WORKERS = 8;
/**
 * A daemon-reload ends with Reloading(false); one that has not after this long (its end lost)
 * must not keep new units ignored for good: the plugin resyncs and goes on.
 */
export const MAX_RELOAD_MS = 60_000;
/** Distinct unknown ActiveStates each reported once; past them, one line an hour for all. */
const UNKNOWN_STATES_SAID = 16;
/** The safety resync's interval: a slow net under signals that may have been missed. */
export const RESYNC_EVERY_MS = 300_000;

/**
 * The safety resync's interval from SYSTEMDUNITS_RESYNC_EVERY (whole seconds, 5..3600; for the
 * bench, which measures a resync without a daemon-reload); anything else keeps the default, with
 * a one-line problem for stderr.
 */
export function resyncEveryFromEnv(text: string | undefined): { ms: number; problem?: string } {
  if (text === undefined || text === '') return { ms: RESYNC_EVERY_MS };
  const n = /^\d{1,4}$/.test(text.trim()) ? Number(text.trim()) : NaN;
  if (n >= 5 && n <= 3600) return { ms: n * 1000 };
  const shown = text.replace(/[\x00-\x1f\x7f]/g, ' ').slice(0, 40);
  return { ms: RESYNC_EVERY_MS, problem: `ignoring SYSTEMDUNITS_RESYNC_EVERY '${shown}': expected whole seconds from 5 to 3600; resyncing every ${RESYNC_EVERY_MS / 1000} s` };
}

export class UnitSync implements SystemdLink {
  private readonly connection: SystemdConnection;
  private stopped = false;
  /** The safety resync, or the retry of a failed one. */
  private resyncTimer: NodeJS.Timeout | undefined;
  private readonly resyncs = new CoalescedRun(
    () => this.snapshot(),
    () => this.stopped,
  );
  private resyncSoonTimer: NodeJS.Timeout | undefined;
  private readonly lookups = new Map<string, PendingLookup>();
  private readonly transientByName = new Map<string, boolean>();
  /**
   * Arrival of the latest state signal per unit path, for units not in the table (being looked
   * up): a listing older than it must not win. Units in the table keep theirs (Unit.signalSeq).
   */
  private readonly lastSignal = new Map<string, Seq>();
  /**
   * Between Reloading(true) and Reloading(false): systemd then says UnitRemoved and UnitNew for
   * every unit it re-creates, and the resync that follows the reload settles them all at once.
   */
  private reloading = false;
  private reloadTimer: NodeJS.Timeout | undefined;
  /** Accept=yes instance groups being listed, by group key. */
  private readonly groupLookups = new Map<string, CoalescedRun>();
  /** Units waiting for the next batched lookup, with what signals said of them meanwhile. */
  private readonly batched = new Map<string, PendingLookup['changes']>();
  private batchTimer: NodeJS.Timeout | undefined;
  /** Groups whose listing failed, to be listed again shortly. */
  private readonly groupRetries = new Set<string>();
  private readonly unknownStates = new Set<string>();
  /** The units of the latest full listing by their place in it (systemd's order): a resync's guesses. */
  private readonly listedOrder: (Unit | undefined)[] = [];

  constructor(
    private readonly table: UnitTable,
    private readonly options: SyncOptions,
  ) {
    this.connection = new SystemdConnection(options, {
      connected: async () => {
        this.reloadingFor(false);
        await this.resync();
      },
      reconnected: () => {
        logError(`reconnected to the system bus at ${this.options.address}; ${this.table.size} units`);
        this.armSafetyResync();
      },
      dropped: () => {
        this.lookups.clear();
        // sequence numbers are per connection
        this.lastSignal.clear();
        for (const unit of this.table.units()) unit.signalSeq = 0;
      },
      reconnecting: () => clearTimeout(this.resyncTimer),
      event: (e) => this.apply(e),
      ownerChanged: () => {
        this.reloadingFor(false);
        this.resyncLogged('systemd changed bus owner');
      },
      responsive: () => this.resyncLogged('systemd answers again'),
      busy: () => this.resyncs.busy,
    });
  }

  /** Signals dropped because of who sent them (see senders.ts). */
  get droppedSignals(): number {
    return this.connection.droppedSignals;
  }

  /** The sample loop's tick, for the connection's watchdog (see watchdog.ts). */
  tick(): void {
    this.connection.tick();
  }

  /**
   * Connects and takes the first snapshot. Rejects with NoSystemdError when there is nothing to
   * watch: no bus, or no systemd on it. A systemd that is there but slow to answer (a busy boot,
   * a stopped PID 1) is not a reason to give up: the plugin stays up and keeps trying.
   */
  async start(): Promise<void> {
    if (await this.connection.start()) this.armSafetyResync();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.resyncSoonTimer);
    clearTimeout(this.resyncTimer);
    clearTimeout(this.reloadTimer);
    clearTimeout(this.batchTimer);
    this.connection.stop();
  }

  get inStep(): boolean {
    return this.connection.inStep;
  }

  get generation(): number {
    return this.connection.generation;
  }

  /** systemd's API while the table is in step with it; undefined while it is out of reach. */
  get systemd(): SystemdManager | undefined {
    return this.connection.systemd;
  }

  whenInStep(deadline: number): Promise<SystemdManager | undefined> {
    return this.connection.whenInStep(deadline);
  }

  /** Asks for a full resync; calls that arrive while one runs are folded into one more. */
  resync(): Promise<void> {
    const run = this.resyncs.request();
    run.then(
      () => this.connection.wakeInStep(),
      () => {},
    );
    return run;
  }

  /** The connection in use; undefined while there is none. */
  private get session(): SystemdSession | undefined {
    return this.connection.session;
  }

  private async snapshot(): Promise<void> {
    const session = this.session;
    if (!session) return;
    const started = Date.now();
    // Applied by a call of its own: once it returns nothing here holds the reply (its bytes).
    const { fresh, freshAt, seq, listedAt } = this.applyListing(await session.listUnits(this.options.patterns));
    // Those with nothing to read are added at once; the rest are looked up by a few workers rather
    // than one promise per unit: thousands of pending lookups at once would only queue behind the
    // bus's cap on calls in flight, and leave the heap sized for that peak.
    const toRead = fresh.filter((u) => !this.addListed(u));
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < toRead.length) {
        const u = toRead[next++]!;
        await this.lookUp(u.name, { unit: u, seq });
      }
    };
    await Promise.all(Array.from({ length: Math.min(LOOKUP_WORKERS, toRead.length) }, worker));
    // The new units' places in this listing, for the next resync's guesses: without them the first
    // safety resync after start (every unit new then) decoded and looked up every row by name.
    for (let k = 0; k < freshAt.length; k++) {
      const at = freshAt[k];
      if (at !== undefined) this.listedOrder[at] ??= this.table.get(fresh[k]!.name);
    }
    // dbus-next's reader keeps the bytes of the last message it read until the next one comes:
    // after a listing that is the whole reply (1.7 MB at 10,000 units), held for as long as
    // systemd stays quiet. One small call replaces it.
    await session.isOnBus().catch(() => undefined);
    // A big reply's bytes were given back (UnitRows.release) to a young object, freed by the next
    // scavenge; a quiet plugin may not run one for long.
    releaseYoungNow();
    this.options.onSnapshot?.();
    debug('resync: %d units, %d new (listed in %d ms, completed in %d ms)', this.table.size, fresh.length, listedAt - started, Date.now() - listedAt);
  }

  /**
   * Brings the table in line with a full listing; returns the units new to it (they need Transient
   * and Result read, or are left to a batched lookup) and the listing's place among signals.
   */
  private applyListing(listing: Listing): { fresh: ListedUnit[]; freshAt: (number | undefined)[]; seq: Seq; listedAt: number } {
    const listedAt = Date.now();
    // Compared in place, one listed unit at a time (each garbage at once): no copy of the table.
    const stamp = this.table.startListing();
    // Referenced but without a unit file: counted by load state, not tracked (see UnitTable.notFound).
    const notFound: string[] = [];
    // Units new to the table still need Transient (and Result) read; signals meanwhile are kept.
    const fresh: ListedUnit[] = [];
    /** Where each of `fresh` is in the listing, by the same index (when it is walked in place). */
    const freshAt: (number | undefined)[] = [];
    const take = (u: ListedUnit, unit = this.table.get(u.name)): Unit | undefined => {
      // A unit in the table is wanted (the config does not change): no glob to match again.
      if (!unit && !this.options.wants(u.name)) return undefined;
      if (u.loadState === 'not-found') notFound.push(u.name);
      // One waiting for its batched lookup is left to it: a signal may have come after this listing
      // (in the same read as its reply), and that lookup lists it afresh and applies the signal.
      else if (!unit) {
        if (!this.batched.has(u.name)) fresh.push(u);
      }
      else {
        this.table.listed(unit, stamp);
        // Signals that arrived after the listing are newer than it: those units keep what they said.
        if (unit.signalSeq <= listing.seq) this.table.upsert(u);
        return unit;
      }
      return undefined;
    };
    const units = listing.units;
    if (units instanceof UnitRows) {
      // A resync mostly finds every unit where and as it was: those rows are compared in place
      // (no name decoded, nothing looked up by name), and the reply's bytes die young.
      const order = this.listedOrder;
      const place = (u: ListedUnit, unit: Unit | undefined, i: number): void => {
        const before = fresh.length;
        order[i] = take(u, unit);
        if (fresh.length > before) freshAt[before] = i;
      };
      units.walk(
        (i) => order[i],
        (unit, i) => {
          // As listed before: still that unit in the table, unchanged (upsert would change nothing).
          if (unit.listedIn !== REMOVED) this.table.listed(unit, stamp);
          else place(listedUnit(unit.name, unit.loadState, unit.activeState, unit.subState), undefined, i);
        },
        (u, unit, i) => place(u, unit !== undefined && unit.listedIn !== REMOVED ? unit : undefined, i),
      );
      order.length = units.size;
      // Nothing decoded from it is kept but strings (copies): its bytes can go now.
      units.release();
    } else for (const u of units) take(u);
    this.table.setNotFound(notFound);
    this.table.removeUnlisted(stamp, (name) => this.lookups.has(name) || (this.table.get(name)?.signalSeq ?? 0) > listing.seq);
    this.connection.markInStep();
    for (const path of this.lastSignal.keys()) {
      const name = unitNameFromPath(path);
      if (!this.table.getByPath(path) && !(name && this.lookups.has(name))) this.lastSignal.delete(path);
    }
    return { fresh, freshAt, seq: listing.seq, listedAt };
  }

  /**
   * Adds a unit new to the table from a listing when nothing is left to read of it (Transient known
   * or not needed, not failed) and no lookup of it runs: what its lookup would do without a call,
   * but without a lookup's promise and bookkeeping (19,912 of them at start at 10,000 sockets).
   * False when it needs its lookup.
   */
  private addListed(u: ListedUnit): boolean {
    if (u.activeState === 'failed' || this.lookups.has(u.name)) return false;
    const transient = this.transientByName.get(u.name);
    if (transient === undefined && this.options.needTransient) return false;
    const unit = this.table.upsert(transient === undefined ? u : { ...u, transient });
    if (this.lastSignal.size > 0) {
      const path = unitPath(u.name);
      unit.signalSeq = Math.max(unit.signalSeq, this.lastSignal.get(path) ?? 0);
      this.lastSignal.delete(path);
    }
    return true;
  }

  /** Adds what ListUnits does not carry: Transient (when a job needs it) and Result of failed units. */
  private async complete(session: SystemdSession, u: ListedUnit): Promise<UnitSnapshot | undefined> {
    let transient = this.transientByName.get(u.name);
    let result: string | undefined;
    try {
      if (transient === undefined && this.options.needTransient) {
        transient = await session.isTransient(u.path);
        this.rememberTransient(u.name, transient);
      }
      if (u.activeState === 'failed') result = await session.result(u.path, u.name);
    } catch (err) {
      if (isConnectionError(err)) throw err;
      debug('cannot read %s: %s', u.name, errorText(err)); // unloaded meanwhile
      return undefined;
    }
    return { ...u, ...(transient !== undefined ? { transient } : {}), ...(result !== undefined ? { result } : {}) };
  }

  private apply(e: Exclude<UnitEvent, { kind: 'owner' }>): void {
    switch (e.kind) {
      case 'state': {
        if (e.activeState !== undefined && !isKnownState(e.activeState)) this.unknownState(e.activeState);
        const unit = this.table.getByPath(e.path);
        if (unit) {
          unit.signalSeq = e.seq;
          if (unit.type === 'socket') this.table.noteSocketActivity(unit.name);
          else if (unit.instanceGroup) this.table.noteSocketActivity(unit.instanceGroup.socket);
          return this.table.update(unit, e);
        }
        const name = unitNameFromPath(e.path);
        if (name !== undefined) this.noteInstanceActivity(name);
        if (name === undefined || this.reloading || !this.options.wants(name)) return;
        const changes = this.lookups.get(name)?.changes ?? (this.requestLookup(name) ? this.batched.get(name) : undefined);
        if (!changes) return;
        this.lastSignal.set(e.path, e.seq);
        // Bounded: only the latest changes matter once the lookup answers.
        if (changes.length >= MAX_PENDING_CHANGES) changes.splice(0, changes.length - MAX_PENDING_CHANGES + 1);
        changes.push({ seq: e.seq, change: e });
        return;
      }
      case 'new':
        this.noteInstanceActivity(e.name);
        if (this.reloading) return;
        // Already known (e.g. a removal not yet confirmed): its signals keep it current.
        if (!this.table.get(e.name) && this.options.wants(e.name)) this.requestLookup(e.name);
        return;
      case 'removed':
        // Confirm first: `reset-failed` + `start` unloads and reloads a unit within milliseconds,
        // and dropping it in between would retire its dimension for nothing. A unit whose lookup
        // is still under way must be looked at again too: that lookup's listing predates the
        // removal, and would otherwise add a unit systemd no longer has.
        // Not in the table yet, during a resync: its listing may list the unit (a storm's UnitNew
        // past MAX_SIGNAL_LOOKUPS is left to it) and add it after this removal.
        this.noteInstanceActivity(e.name);
        if (this.reloading) return;
        if (this.lookups.has(e.name)) void this.lookUp(e.name);
        else if (this.table.get(e.name) || (this.resyncs.busy && this.options.wants(e.name))) this.requestLookup(e.name);
        return;
      case 'reloading':
        // One lookup per unit re-created would cost a D-Bus round trip each (10,000 after a
        // reload at 10,000 units) for what the one listing after the reload says anyway.
        this.reloadingFor(e.started);
        if (!e.started) {
          // A lookup that listed its unit before or during the reload may have seen it as it was.
          for (const pending of this.lookups.values()) pending.again = true;
          this.connection.newGeneration();
          this.resyncLogged('daemon-reload');
        }
        return;
    }
  }

  /**
   * A signal about a per-connection instance (in the table or not: one no job wants counts too):
   * its socket's connection counters may have moved. With the socket's own signals (systemd
   * signals it on every connection it accepts), these are what the socket poller reads on.
   */
  private noteInstanceActivity(name: string): void {
    const group = perConnectionGroup(name);
    if (group) this.table.noteSocketActivity(group.socket);
  }

  /**
   * Sets whether systemd is reloading. A reload whose end never comes (its Reloading(false) lost)
   * stops counting as one after MAX_RELOAD_MS, with a resync, so new units are not ignored for good.
   */
  private reloadingFor(started: boolean): void {
    this.reloading = started;
    this.connection.reloading(started);
    clearTimeout(this.reloadTimer);
    this.reloadTimer = undefined;
    if (!started) return;
    this.reloadTimer = setTimeout(() => {
      this.reloadTimer = undefined;
      if (!this.reloading) return;
      logError(`systemd said it is reloading ${MAX_RELOAD_MS / 1000} s ago and never said it is done; resyncing`);
      this.reloadingFor(false);
      for (const pending of this.lookups.values()) pending.again = true;
      this.connection.newGeneration();
      this.resyncLogged('a reload that did not end');
    }, MAX_RELOAD_MS);
    this.reloadTimer.unref();
  }

  /** Says once per state (a few states), then once an hour for all: never a line per signal. */
  private unknownState(state: string): void {
    const shown = state.slice(0, 64);
    if (this.unknownStates.has(state)) return;
    if (this.unknownStates.size < UNKNOWN_STATES_SAID) {
      this.unknownStates.add(state);
      logError(`systemd reports an unknown unit state '${shown}'; charted as 2 (inactive)`);
      return;
    }
    logErrorThrottled('unknown states', `systemd reports more unknown unit states (latest '${shown}'); charted as 2 (inactive)`, 3_600_000);
  }

  /**
   * Starts bringing one unit in line after a signal, within bounds: per-connection instances of an
   * Accept=yes socket by one listing per group (a flood of connections is one call, not one each),
   * other units one by one up to MAX_SIGNAL_LOOKUPS, and past that one resync for all. Returns
   * whether a lookup of this very unit is now under way.
   */
  private requestLookup(name: string): boolean {
    const group = perConnectionGroup(name);
    if (group) {
      this.lookUpGroup(group);
      return false;
    }
    if (this.lookups.has(name)) {
      void this.lookUp(name); // under way: look again when done
      return false;
    }
    if (this.batched.has(name)) return true;
    if (this.lookups.size + this.batched.size >= MAX_SIGNAL_LOOKUPS) {
      this.resyncSoon('too many units to look up one by one');
      return false;
    }
    this.batched.set(name, []);
    if (this.batched.size >= LOOKUP_BATCH) void this.lookUpBatch();
    else this.batchTimer ??= setTimeout(() => void this.lookUpBatch(), LOOKUP_BATCH_MS);
    return true;
  }

  /**
   * Looks up the units gathered in `batched` with one listing (one pattern per name): a burst of
   * new units (`systemctl start` of 2,000) costs a few calls, not one each.
   */
  private async lookUpBatch(): Promise<void> {
    clearTimeout(this.batchTimer);
    this.batchTimer = undefined;
    const batch = [...this.batched];
    this.batched.clear();
    const session = this.session;
    if (!session) return;
    // Registered as lookups from now: what signals say meanwhile (a change, a removal) goes to them.
    const pendings: [string, PendingLookup][] = [];
    for (const [name, changes] of batch) {
      const running = this.lookups.get(name);
      if (running) {
        // Older than what it holds (signals go to a running lookup first): kept, not dropped.
        keepChanges(running, changes);
        running.again = true;
        continue;
      }
      const pending: PendingLookup = { changes, again: false };
      this.lookups.set(name, pending);
      pendings.push([name, pending]);
    }
    if (pendings.length === 0) return;
    const drop = (): void => pendings.forEach(([name, pending]) => this.lookups.get(name) === pending && this.lookups.delete(name));
    let answer;
    try {
      answer = await session.listUnits(pendings.map(([name]) => escapeGlob(name)));
    } catch (err) {
      drop();
      if (isConnectionError(err)) return;
      debug('cannot look up %d units: %s', pendings.length, errorText(err));
      return this.resyncSoon();
    }
    if (this.session !== session) return drop();
    const listed = new Map<string, ListedUnit>();
    for (const u of answer.units) listed.set(u.name, u);
    for (const [name, pending] of pendings) void this.settle(name, pending, session, { unit: listed.get(name), seq: answer.seq });
  }

  /** Lists one Accept=yes instance group; requests meanwhile fold into one more listing. */
  private lookUpGroup(group: InstanceGroup): void {
    const session = this.session;
    if (!session) return;
    let run = this.groupLookups.get(group.key);
    if (!run) {
      if (this.groupLookups.size >= MAX_GROUP_LOOKUPS) return this.resyncSoon('too many instance groups to look up');
      run = new CoalescedRun(
        () => this.listGroup(session, group),
        () => this.stopped || this.session !== session,
      );
      this.groupLookups.set(group.key, run);
    }
    const mine = run;
    mine.request().then(
      () => undefined,
      (err: unknown) => {
        if (isConnectionError(err)) return;
        // systemd busy starting the flood's instances: list this group again in a moment. Not a
        // full resync, whose own timeout would pause every chart for one slow group.
        debug('cannot list %s: %s; again in %d ms', group.key, errorText(err), GROUP_RETRY_MS);
        if (this.groupRetries.has(group.key) || this.groupRetries.size >= MAX_GROUP_LOOKUPS) return;
        this.groupRetries.add(group.key);
        setTimeout(() => {
          this.groupRetries.delete(group.key);
          if (this.session === session) this.lookUpGroup(group);
        }, GROUP_RETRY_MS).unref();
      },
    ).finally(() => {
      if (!mine.busy && this.groupLookups.get(group.key) === mine) this.groupLookups.delete(group.key);
    });
  }

  /** One listing of a group's instances: adds the new ones and drops those systemd no longer has. */
  private async listGroup(session: SystemdSession, group: InstanceGroup): Promise<void> {
    // A moment for the rest of a burst of connections to arrive: they fold into this listing.
    await new Promise((resolve) => setTimeout(resolve, GROUP_SETTLE_MS));
    if (this.session !== session || this.reloading || this.stopped) return;
    const star = group.key.indexOf('@*');
    const pattern = `${escapeGlob(group.key.slice(0, star))}@*${escapeGlob(group.key.slice(star + 2))}`;
    const listing = await session.listUnits([pattern]);
    const listed = [...listing.units].filter((u) => this.tracks(u) && perConnectionGroup(u.name)?.key === group.key);
    const names = new Set(listed.map((u) => u.name));
    for (const u of [...this.table.units()]) {
      if (instanceGroupOf(u)?.key !== group.key || names.has(u.name) || this.lookups.has(u.name)) continue;
      if (u.signalSeq > listing.seq) continue; // said something since
      this.forget(u.name);
    }
    const fresh = listed.filter((u) => !this.table.get(u.name) && !this.lookups.has(u.name));
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < fresh.length) {
        const u = fresh[next++]!;
        await this.lookUp(u.name, { unit: u, seq: listing.seq });
      }
    };
    await Promise.all(Array.from({ length: Math.min(GROUP_WORKERS, fresh.length) }, worker));
  }

  /** Units the table holds: wanted by a job and backed by a unit file (not a mere reference). */
  private tracks(u: ListedUnit): boolean {
    return u.loadState !== 'not-found' && this.options.wants(u.name);
  }

  /**
   * Brings one unit in the table in line with systemd, by listing it (which, unlike reading its
   * properties, never makes systemd load it): adds it, or removes it when it is gone. `given` is
   * systemd's answer when the caller already has it.
   */
  private lookUp(name: string, given?: { unit: ListedUnit | undefined; seq: Seq }): Promise<void> {
    const session = this.session;
    const running = this.lookups.get(name);
    if (running) {
      running.again = true;
      return Promise.resolve();
    }
    if (!session) return Promise.resolve();
    // A resync's lookup of a unit waiting for its batch: what signals said of it meanwhile is this
    // lookup's to apply as it adds the unit (the batch would find it in the table and drop them).
    const batched = this.batched.get(name);
    this.batched.delete(name);
    const pending: PendingLookup = { changes: batched ?? [], again: false };
    this.lookups.set(name, pending);
    return this.settle(name, pending, session, given);
  }

  /** The rest of a lookup registered in `lookups` as `pending`. */
  private async settle(name: string, pending: PendingLookup, session: SystemdSession, given?: { unit: ListedUnit | undefined; seq: Seq }): Promise<void> {
    try {
      do {
        // A given answer may be older than what came while it was awaited (a batch's listing, and
        // a removal right after it): `again` then stands, and the loop lists the unit afresh.
        if (!given) pending.again = false;
        const answer = given ?? (await session.listUnit(name));
        given = undefined;
        const listed = answer.unit;
        if (!listed || !this.tracks(listed)) {
          this.forget(name);
          continue;
        }
        // Still loaded; its own signals keep it current (what came before it was added went with the
        // lookup that added it: one lookup per name, and it takes the batch's changes).
        if (this.table.get(name)) continue;
        const snapshot = await this.complete(session, listed);
        if (!snapshot || pending.again) continue;
        const unit = this.table.upsert(snapshot);
        // Its signals' arrival goes with it from now on (see lastSignal).
        const path = unitPath(name);
        unit.signalSeq = Math.max(unit.signalSeq, this.lastSignal.get(path) ?? 0);
        this.lastSignal.delete(path);
        // Failed and left `failed` again before the lookup answered: still this interval's failure,
        // with the Result signalled just before it.
        let result = unit.result;
        let exit: StateChange | undefined;
        let failedWith: { result: string | undefined; exit: StateChange | undefined } | undefined;
        for (const { change } of pending.changes) {
          if (change.result !== undefined) result = change.result;
          if (change.execCode !== undefined) exit = change; // a service's main exit, sent with Result
          if (change.activeState === 'failed') failedWith = { result, exit };
        }
        if (failedWith) {
          const e = failedWith.exit;
          if (e?.execCode !== undefined && e.execStatus !== undefined) this.table.update(unit, { execCode: e.execCode, execStatus: e.execStatus });
          this.table.noteFailure(unit, failedWith.result);
        }
        for (const c of pending.changes) {
          if (c.seq > answer.seq) this.table.update(unit, c.change);
          // Older than the listing, the state is the listing's; but NRestarts is not in it, and
          // its first value is the base restarts count from (a unit started from unloaded
          // restarts within the lookup's time).
          else if (c.change.nRestarts !== undefined) this.table.update(unit, { nRestarts: c.change.nRestarts });
        }
      } while (pending.again && this.session === session);
    } catch (err) {
      // A lost connection is onLost's to handle; anything else means the unit went meanwhile.
      if (!isConnectionError(err)) {
        debug('cannot look up %s: %s', name, errorText(err));
        // Unanswered (systemd swamped): the unit may be gone or changed, and nothing else will
        // say so. One resync soon settles every such unit at once.
        this.resyncSoon();
      }
    } finally {
      if (this.lookups.get(name) === pending) this.lookups.delete(name);
    }
  }

  private forget(name: string): void {
    // Also for a unit never added (gone before its lookup answered): its signal's arrival is here too.
    this.lastSignal.delete(unitPath(name));
    this.table.remove(name);
  }

  private rememberTransient(name: string, transient: boolean): void {
    this.transientByName.set(name, transient);
    if (this.transientByName.size > TRANSIENT_CACHE) this.transientByName.delete(this.transientByName.keys().next().value!);
  }

  private resyncSoon(why = 'a lookup went unanswered'): void {
    if (this.resyncSoonTimer) return;
    this.resyncSoonTimer = setTimeout(() => {
      this.resyncSoonTimer = undefined;
      this.resyncLogged(why);
    }, 1000);
  }

  private resyncLogged(why: string): void {
    debug('resync: %s', why);
    this.resync().then(
      () => this.armSafetyResync(),
      (err) => this.onResyncFailed(err),
    );
  }

  private onResyncFailed(err: unknown): void {
    if (isConnectionError(err)) return; // onLost takes over
    // systemd is on the bus but does not answer (stopped, overloaded): show a gap and retry.
    this.connection.markOutOfStep();
    logErrorThrottled('resync', `cannot list units from systemd: ${errorText(err)}; retrying`);
    clearTimeout(this.resyncTimer);
    this.resyncTimer = setTimeout(() => this.resyncLogged('retry after a failed resync'), this.connection.nextRetryDelay());
  }

  private armSafetyResync(): void {
    this.connection.resetBackoff();
    clearTimeout(this.resyncTimer);
    this.resyncTimer = setTimeout(() => {
      this.resyncLogged('safety timer');
    }, this.options.resyncEveryMs ?? RESYNC_EVERY_MS);
    this.resyncTimer.unref();
  }
}

/** Adds what signals said before a lookup's own changes, within MAX_PENDING_CHANGES (the latest kept). */
function keepChanges(pending: PendingLookup, older: PendingLookup['changes']): void {
  if (older.length === 0) return;
  pending.changes.unshift(...older);
  if (pending.changes.length > MAX_PENDING_CHANGES) pending.changes.splice(0, pending.changes.length - MAX_PENDING_CHANGES);
}
