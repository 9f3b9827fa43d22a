// Keeps the unit table in step with systemd: the first snapshot, then signals, and a full resync
// after a daemon-reload, after systemd changes bus owner (daemon-reexec), after a reconnect, and on
// a slow safety timer. When the bus goes away it marks the table out of sync (the charts show a gap)
// and reconnects with backoff. It writes the table; it knows nothing about charts.

import { BusCallError, CLOSED_ERROR, TIMEOUT_ERROR, type Seq, type Signal } from './bus.js';
import { CoalescedRun } from './coalesced.js';
import { Watchdog } from './watchdog.js';
import type { SystemdLink } from './link.js';
import { decodeSignal, escapeGlob, type ListedUnit, type SystemdManager, type UnitEvent } from './manager.js';
import type { SystemdPort, SystemdSession } from './port.js';
import { DroppedSignals, fromRealSender } from './senders.js';
import { instanceGroupOf, perConnectionGroup, type InstanceGroup } from '../units/instances.js';
import { unitNameFromPath, unitPath } from '../units/names.js';
import { isKnownState } from '../units/states.js';
import type { StateChange, UnitSnapshot, UnitTable } from '../units/table.js';
import { debugFor, errorText, logError, logErrorThrottled } from '../log.js';

const debug = debugFor('sync');
const debugEvents = debugFor('events');

export interface SyncOptions {
  /** Makes connections to systemd (busPort in port.ts; a fake in unit tests). */
  readonly port: SystemdPort;
  /** The bus address, for messages. */
  readonly address: string;
  /** Globs for ListUnitsByPatterns: the union of every job's include. */
  readonly patterns: readonly string[];
  /** Whether any job wants this unit (by name). */
  readonly wants: (name: string) => boolean;
  /** Whether a job skips transient units, so the Transient property must be read. */
  readonly needTransient: boolean;
  readonly resyncEveryMs?: number;
  /** Replace the connection after this many messages (default 2^31; lower only to test it). */
  readonly maxMessagesPerConnection?: number;
  /** Ping systemd after this long without a signal from it (default 5 s). */
  readonly quietMs?: number;
  /** Called after every full listing has been applied (e.g. to give memory back). */
  readonly onSnapshot?: () => void;
}

/** Start-up failures the operator must act on: no bus, or no systemd on it. */
export class NoSystemdError extends Error {}

export const BACKOFF_MS = [250, 1000, 2000, 4000, 8000, 15000, 30000];
/**
 * While the bus cannot even be reached (socket gone, connection refused) retries stay this close:
 * a refused connect costs nobody anything, and a bus that comes back must be used at once.
 */
export const UNREACHABLE_RETRY_MS = 500;
/**
 * A connection lost sooner than this after it was made counts as short-lived: a bus that breaks
 * every connection (bad data, a stuck link) must not have the plugin reconnect and resync in a
 * tight loop, so the backoff carries over from one short-lived connection to the next.
 */
export const SHORT_LIVED_MS = 60_000;
/** dbus-next serials never wrap: reconnect well before 2^32 messages. */
const MAX_MESSAGES_PER_CONNECTION = 2 ** 31;

/** A unit being looked up after UnitNew/UnitRemoved or a signal from a unit not in the table. */
interface PendingLookup {
  /** What signals said meanwhile; those that arrived after the listing are newer than it. */
  changes: { seq: Seq; change: StateChange }[];
  /** Another event arrived meanwhile: look again when done. */
  again: boolean;
}

/** How many new units a resync looks up at a time: enough to keep the bus's calls in flight busy. */
const LOOKUP_WORKERS = 64;

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

export class UnitSync implements SystemdLink {
  private session: SystemdSession | undefined;
  /** False until the first snapshot and while systemd cannot be reached: charts then leave gaps. */
  private synced = false;
  /** See SystemdLink.generation. */
  private reloads = 0;
  private stopped = false;
  private attempt = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private reconnecting = false;
  private resyncTimer: NodeJS.Timeout | undefined;
  private readonly resyncs = new CoalescedRun(
    () => this.snapshot(),
    () => this.stopped,
  );
  private resyncSoonTimer: NodeJS.Timeout | undefined;
  private readonly lookups = new Map<string, PendingLookup>();
  private readonly transientByName = new Map<string, boolean>();
  /** Arrival of the latest state signal per unit path: a listing older than it must not win. */
  private readonly lastSignal = new Map<string, Seq>();
  /** Whether the latest failed connection attempt reached the bus (then back off further). */
  private reachedBus = true;
  /** Connections lost in a row, each soon after it was made (see SHORT_LIVED_MS). */
  private shortLived = 0;
  /**
   * Between Reloading(true) and Reloading(false): systemd then says UnitRemoved and UnitNew for
   * every unit it re-creates, and the resync that follows the reload settles them all at once.
   */
  private reloading = false;
  private reloadTimer: NodeJS.Timeout | undefined;
  private readonly watchdog: Watchdog;
  /**
   * systemd's unique name on this connection, the only sender its signals are taken from:
   * undefined until GetNameOwner answers after connecting, '' while systemd is off the bus.
   */
  private systemdOwner: string | undefined;
  /** Arrival of what set systemdOwner: an older answer must not undo a newer NameOwnerChanged. */
  private ownerSeq: Seq = 0;
  private readonly dropped: DroppedSignals;
  /** Accept=yes instance groups being listed, by group key. */
  private readonly groupLookups = new Map<string, CoalescedRun>();
  /** Units waiting for the next batched lookup, with what signals said of them meanwhile. */
  private readonly batched = new Map<string, PendingLookup['changes']>();
  private batchTimer: NodeJS.Timeout | undefined;
  /** Groups whose listing failed, to be listed again shortly. */
  private readonly groupRetries = new Set<string>();
  private readonly unknownStates = new Set<string>();
  /** A connection's first listing is under way: the table may be marked in sync but half filled. */
  private connecting = false;
  /** Callers of whenInStep waiting for the table to be in step; checked after every listing. */
  private readonly inStepWaiters = new Set<() => void>();

  constructor(
    private readonly table: UnitTable,
    private readonly options: SyncOptions,
  ) {
    this.watchdog = new Watchdog({
      quietMs: options.quietMs ?? 5000,
      maxMessages: options.maxMessagesPerConnection ?? MAX_MESSAGES_PER_CONNECTION,
      sent: () => this.session?.sent,
      ping: () => this.session?.ping(),
      pingBus: () => this.session?.isOnBus().then(() => undefined),
      isTimeout: (err) => err instanceof BusCallError && err.dbusName === TIMEOUT_ERROR,
      onUnresponsive: (reason) => {
        this.synced = false;
        logError(`systemd does not answer (${reason}); charts pause until it does`);
      },
      onResponsive: () => {
        logError('systemd answers again; resyncing');
        this.resyncLogged('systemd answers again');
      },
      onWornOut: (sent) => this.replaceConnection(sent),
      // A frozen connection, unlike a frozen systemd, is cured by a new one: onLost reconnects.
      onStuck: (reason) => this.session?.close(reason),
    });
    this.dropped = new DroppedSignals((sender) => this.session?.describeSender(sender) ?? Promise.resolve(sender));
  }

  /** Signals dropped because of who sent them (see senders.ts). */
  get droppedSignals(): number {
    return this.dropped.total;
  }

  /**
   * Connects and takes the first snapshot. Rejects with NoSystemdError when there is nothing to
   * watch: no bus, or no systemd on it. A systemd that is there but slow to answer (a busy boot,
   * a stopped PID 1) is not a reason to give up: the plugin stays up and keeps trying.
   */
  async start(): Promise<void> {
    this.watchdog.start();
    try {
      await this.connect();
    } catch (err) {
      const reached = this.session !== undefined;
      this.dropBus();
      const name = (err as BusCallError).dbusName;
      if (name === 'org.freedesktop.DBus.Error.ServiceUnknown' || name === 'org.freedesktop.DBus.Error.NameHasNoOwner') {
        throw new NoSystemdError(`systemd is not on the system bus at ${this.options.address} (is systemd PID 1 here?)`);
      }
      if (!reached) {
        const hint = busHint(err);
        throw new NoSystemdError(`cannot reach the system bus at ${this.options.address}: ${errorText(err)}${hint ? ` (${hint})` : ''}`);
      }
      logError(`systemd does not answer yet (${errorText(err)}); charts start once it does`);
      void this.reconnect();
      return;
    }
    this.armSafetyResync();
  }

  stop(): void {
    this.stopped = true;
    this.watchdog.stop();
    clearTimeout(this.resyncSoonTimer);
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.resyncTimer);
    clearTimeout(this.reloadTimer);
    clearTimeout(this.batchTimer);
    this.dropped.stop();
    this.session?.close();
    this.wakeInStep();
  }

  get inStep(): boolean {
    return this.synced;
  }

  get generation(): number {
    return this.reloads;
  }

  /** systemd's API while the table is in step with it; undefined while it is out of reach. */
  get systemd(): SystemdManager | undefined {
    return this.synced ? this.session?.systemd : undefined;
  }

  /**
   * systemd's API once the table is in step with it: at once, or when the listing under way (the
   * first one, or a reconnect's) has been applied; undefined if that has not happened by `deadline`
   * (monotonic ms), i.e. systemd is really out of reach. A Function called right after start-up
   * waits here rather than answer "out of reach" while systemd is fine.
   */
  whenInStep(deadline: number): Promise<SystemdManager | undefined> {
    const inStep = (): SystemdManager | undefined => (this.connecting ? undefined : this.systemd);
    if (inStep() || this.stopped) return Promise.resolve(inStep());
    return new Promise((resolve) => {
      const done = (manager: SystemdManager | undefined): void => {
        clearTimeout(timer);
        this.inStepWaiters.delete(check);
        resolve(manager);
      };
      const check = (): void => {
        const manager = inStep();
        if (manager || this.stopped) done(manager);
      };
      const timer = setTimeout(() => done(undefined), Math.max(0, deadline - performance.now()));
      this.inStepWaiters.add(check);
    });
  }

  private wakeInStep(): void {
    for (const check of [...this.inStepWaiters]) check();
  }

  /** Asks for a full resync; calls that arrive while one runs are folded into one more. */
  resync(): Promise<void> {
    const run = this.resyncs.request();
    run.then(
      () => this.wakeInStep(),
      () => {},
    );
    return run;
  }

  private async connect(): Promise<void> {
    this.connecting = true;
    try {
      await this.connectOnce();
    } finally {
      this.connecting = false;
      this.wakeInStep();
    }
  }

  private async connectOnce(): Promise<void> {
    const session = await this.options.port();
    this.session = session;
    this.systemdOwner = undefined;
    this.ownerSeq = 0;
    session.on('signal', (s: Signal) => {
      if (session === this.session) this.onSignal(s);
    });
    session.once('close', (reason: string) => this.onLost(session, reason));
    // Rules first, then the owner: a change of owner in between is then signalled, not missed.
    await session.watch();
    const { owner, seq } = await session.owner();
    if (this.ownerSeq < seq) [this.systemdOwner, this.ownerSeq] = [owner, seq];
    if (!owner) throw new BusCallError('org.freedesktop.systemd1 has no owner', 'org.freedesktop.DBus.Error.NameHasNoOwner');
    debug('systemd is %s on this connection', this.systemdOwner);
    await session.subscribe();
    this.watchdog.reset();
    this.reloadingFor(false);
    this.reloads++;
    await this.resync();
  }

  private async snapshot(): Promise<void> {
    const session = this.session;
    if (!session) return;
    const started = Date.now();
    const listing = await session.listUnits(this.options.patterns);
    const listed = listing.units.filter((u) => this.tracks(u));
    const listedAt = Date.now();
    // Signals that arrived after the listing are newer than it: those units keep what they said.
    const newer = (path: string): boolean => (this.lastSignal.get(path) ?? 0) > listing.seq;
    this.table.applySnapshot(
      listed.filter((u) => this.table.get(u.name) && !newer(u.path)),
      (name) => this.lookups.has(name) || newer(unitPath(name)),
    );
    this.synced = true;
    for (const path of this.lastSignal.keys()) {
      const name = unitNameFromPath(path);
      if (!this.table.getByPath(path) && !(name && this.lookups.has(name))) this.lastSignal.delete(path);
    }
    // Units new to the table still need Transient (and Result) read; signals meanwhile are kept.
    const fresh = listed.filter((u) => !this.table.get(u.name));
    // A few workers rather than one promise per unit: thousands of pending lookups at once would
    // only queue behind the bus's cap on calls in flight, and leave the heap sized for that peak.
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < fresh.length) {
        const u = fresh[next++]!;
        await this.lookUp(u.name, { unit: u, seq: listing.seq });
      }
    };
    await Promise.all(Array.from({ length: Math.min(LOOKUP_WORKERS, fresh.length) }, worker));
    // dbus-next's reader keeps the bytes of the last message it read until the next one comes:
    // after a listing that is the whole reply (1.7 MB at 10,000 units), held for as long as
    // systemd stays quiet. One small call replaces it.
    await session.isOnBus().catch(() => undefined);
    this.options.onSnapshot?.();
    debug('resync: %d units, %d new (listed in %d ms, completed in %d ms)', this.table.size, fresh.length, listedAt - started, Date.now() - listedAt);
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
      if (this.isConnectionError(err)) throw err;
      debug('cannot read %s: %s', u.name, errorText(err)); // unloaded meanwhile
      return undefined;
    }
    return { ...u, ...(transient !== undefined ? { transient } : {}), ...(result !== undefined ? { result } : {}) };
  }

  private onSignal(s: Signal): void {
    if (!fromRealSender(s, this.systemdOwner)) {
      // Until GetNameOwner answers, systemd's own signals cannot be told from forged ones: dropped
      // unreported, and the resync that follows the connect covers what they said.
      if (this.systemdOwner !== undefined || s.interface === 'org.freedesktop.DBus') this.dropped.drop(s);
      return;
    }
    const event = decodeSignal(s);
    if (!event) return;
    if (event.kind !== 'owner') this.watchdog.heard();
    if (debugEvents.enabled) debugEvents('%s %o', event.kind, event);
    this.apply(event);
  }

  private apply(e: UnitEvent): void {
    switch (e.kind) {
      case 'state': {
        if (e.activeState !== undefined && !isKnownState(e.activeState)) this.unknownState(e.activeState);
        const unit = this.table.getByPath(e.path);
        if (unit) {
          this.lastSignal.set(e.path, e.seq);
          return this.table.update(unit, e);
        }
        const name = unitNameFromPath(e.path);
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
        if (this.reloading) return;
        // Already known (e.g. a removal not yet confirmed): its signals keep it current.
        if (!this.table.get(e.name) && this.options.wants(e.name)) this.requestLookup(e.name);
        return;
      case 'removed':
        // Confirm first: `reset-failed` + `start` unloads and reloads a unit within milliseconds,
        // and dropping it in between would retire its dimension for nothing. A unit whose lookup
        // is still under way must be looked at again too: that lookup's listing predates the
        // removal, and would otherwise add a unit systemd no longer has.
        if (this.reloading) return;
        if (this.lookups.has(e.name)) void this.lookUp(e.name);
        else if (this.table.get(e.name)) this.requestLookup(e.name);
        return;
      case 'reloading':
        // One lookup per unit re-created would cost a D-Bus round trip each (10,000 after a
        // reload at 10,000 units) for what the one listing after the reload says anyway.
        this.reloadingFor(e.started);
        if (!e.started) {
          // A lookup that listed its unit before or during the reload may have seen it as it was.
          for (const pending of this.lookups.values()) pending.again = true;
          this.reloads++;
          this.resyncLogged('daemon-reload');
        }
        return;
      case 'owner':
        // From the bus driver (senders.ts): from now on systemd's signals come from this name.
        [this.systemdOwner, this.ownerSeq] = [e.owner, e.seq];
        if (e.owner === '') {
          logError('systemd left the system bus; charts pause until it is back');
          this.synced = false;
          return;
        }
        // daemon-reexec or a restarted manager: subscribe again (harmless if still subscribed).
        this.reloadingFor(false);
        this.session?.subscribe().catch((err) => debug('re-subscribe: %s', errorText(err)));
        this.reloads++;
        this.resyncLogged('systemd changed bus owner');
        return;
    }
  }

  /**
   * Sets whether systemd is reloading. A reload whose end never comes (its Reloading(false) lost)
   * stops counting as one after MAX_RELOAD_MS, with a resync, so new units are not ignored for good.
   */
  private reloadingFor(started: boolean): void {
    this.reloading = started;
    clearTimeout(this.reloadTimer);
    this.reloadTimer = undefined;
    if (!started) return;
    this.reloadTimer = setTimeout(() => {
      this.reloadTimer = undefined;
      if (!this.reloading) return;
      logError(`systemd said it is reloading ${MAX_RELOAD_MS / 1000} s ago and never said it is done; resyncing`);
      this.reloading = false;
      for (const pending of this.lookups.values()) pending.again = true;
      this.reloads++;
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
      if (this.isConnectionError(err)) return;
      debug('cannot look up %d units: %s', pendings.length, errorText(err));
      return this.resyncSoon();
    }
    if (this.session !== session) return drop();
    const listed = new Map(answer.units.map((u) => [u.name, u]));
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
        if (this.isConnectionError(err)) return;
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
    const listed = listing.units.filter((u) => this.tracks(u) && perConnectionGroup(u.name)?.key === group.key);
    const names = new Set(listed.map((u) => u.name));
    for (const u of [...this.table.units()]) {
      if (instanceGroupOf(u)?.key !== group.key || names.has(u.name) || this.lookups.has(u.name)) continue;
      if ((this.lastSignal.get(unitPath(u.name)) ?? 0) > listing.seq) continue; // said something since
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
    const pending: PendingLookup = { changes: [], again: false };
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
        if (this.table.get(name)) continue; // still loaded; its own signals keep it current
        const snapshot = await this.complete(session, listed);
        if (!snapshot || pending.again) continue;
        const unit = this.table.upsert(snapshot);
        // Failed and left `failed` again before the lookup answered: still this interval's failure,
        // with the Result signalled just before it.
        let result = unit.result;
        let failedWith: { result: string | undefined } | undefined;
        for (const { change } of pending.changes) {
          if (change.result !== undefined) result = change.result;
          if (change.activeState === 'failed') failedWith = { result };
        }
        if (failedWith) this.table.noteFailure(unit, failedWith.result);
        for (const c of pending.changes) if (c.seq > answer.seq) this.table.update(unit, c.change);
      } while (pending.again && this.session === session);
    } catch (err) {
      // A lost connection is onLost's to handle; anything else means the unit went meanwhile.
      if (!this.isConnectionError(err)) {
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
    if (this.isConnectionError(err)) return; // onLost takes over
    // systemd is on the bus but does not answer (stopped, overloaded): show a gap and retry.
    this.synced = false;
    logErrorThrottled('resync', `cannot list units from systemd: ${errorText(err)}; retrying`);
    clearTimeout(this.resyncTimer);
    this.resyncTimer = setTimeout(() => this.resyncLogged('retry after a failed resync'), this.backoff());
    this.attempt++;
  }

  private armSafetyResync(): void {
    this.attempt = 0;
    clearTimeout(this.resyncTimer);
    this.resyncTimer = setTimeout(() => {
      this.resyncLogged('safety timer');
    }, this.options.resyncEveryMs ?? 300_000);
    this.resyncTimer.unref();
  }

  private onLost(session: SystemdSession, reason: string): void {
    if (this.stopped || session !== this.session) return;
    this.session = undefined;
    this.lookups.clear();
    this.lastSignal.clear(); // sequence numbers are per connection
    this.synced = false;
    logErrorThrottled('lost', `lost the system bus (${reason}); charts pause, reconnecting`);
    this.shortLived = Date.now() - session.openedAt < SHORT_LIVED_MS ? this.shortLived + 1 : 0;
    this.attempt = Math.max(this.attempt, this.shortLived - 1);
    if (!this.reconnecting) void this.reconnect();
  }

  /**
   * Replaces a connection that has sent `sent` messages with a new one, at a quiet moment: the
   * table stays in sync meanwhile (the new connection resyncs before it is used), so no gap.
   */
  private replaceConnection(sent: number): void {
    const old = this.session;
    if (!old || this.reconnecting || this.resyncs.busy || this.stopped) return;
    logError(`replacing the D-Bus connection after ${sent} messages (dbus-next cannot number more than 2^32)`);
    this.session = undefined;
    this.lookups.clear();
    this.lastSignal.clear(); // sequence numbers are per connection
    old.close('replaced on purpose');
    this.attempt = 0;
    void this.reconnect(0);
  }

  /** Retries with backoff until connected (and resynced) or stopped. */
  private async reconnect(firstDelayMs?: number): Promise<void> {
    this.reconnecting = true;
    clearTimeout(this.resyncTimer);
    try {
      let delay = firstDelayMs ?? this.backoff();
      while (!this.stopped) {
        await new Promise((resolve) => (this.reconnectTimer = setTimeout(resolve, delay)));
        this.attempt++;
        if (this.stopped) return;
        debug('connection attempt %d (after %d ms)', this.attempt, delay);
        try {
          await this.connect();
          this.reachedBus = true;
          logError(`reconnected to the system bus at ${this.options.address}; ${this.table.size} units`);
          this.armSafetyResync();
          return;
        } catch (err) {
          this.synced = false;
          const reached = this.session !== undefined;
          // The bus is back (systemd may take a moment to rejoin it): back off afresh from there.
          if (reached && !this.reachedBus) this.attempt = 0;
          this.reachedBus = reached;
          logErrorThrottled('reconnect', `cannot reconnect to the system bus: ${errorText(err)}; retrying`);
          this.dropBus();
          delay = this.backoff();
        }
      }
    } finally {
      this.reconnecting = false;
    }
  }

  private dropBus(): void {
    const session = this.session;
    this.session = undefined;
    session?.close();
  }

  private backoff(): number {
    const ms = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)]!;
    return this.reachedBus ? ms : Math.min(ms, UNREACHABLE_RETRY_MS);
  }

  private isConnectionError(err: unknown): boolean {
    return err instanceof BusCallError && err.dbusName === CLOSED_ERROR;
  }
}

/**
 * What to check when the bus cannot be reached, for the causes where a hint helps; undefined where
 * the message says it all (an address of a kind the plugin refuses names what to change already).
 */
export function busHint(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  const text = errorText(err);
  if (code === 'ENOENT' || /\bENOENT\b/.test(text)) {
    return 'no socket there: is systemd running? in a container, is /run/dbus mounted? set DBUS_SYSTEM_BUS_ADDRESS to override';
  }
  if (code === 'ECONNREFUSED' || /\bECONNREFUSED\b/.test(text)) return 'nothing listens on that socket: is dbus running?';
  if (code === 'EACCES' || /\bEACCES\b/.test(text)) return "the agent's user may not open that socket: check its mode and the dbus policy";
  return undefined;
}
