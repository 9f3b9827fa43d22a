// Keeps the unit table in step with systemd: the first snapshot, then signals, and a full resync
// after a daemon-reload, after systemd changes bus owner (daemon-reexec), after a reconnect, and on
// a slow safety timer. When the bus goes away it marks the table out of sync (the charts show a gap)
// and reconnects with backoff. It writes the table; it knows nothing about charts.

import { Bus, BusCallError, CLOSED_ERROR, TIMEOUT_ERROR, type Seq, type Signal } from './bus.js';
import { CoalescedRun } from './coalesced.js';
import { Watchdog } from './watchdog.js';
import { SystemdManager, MATCH_RULES, decodeSignal, type ListedUnit, type UnitEvent } from './manager.js';
import { unitNameFromPath, unitPath } from '../units/names.js';
import { isKnownState } from '../units/states.js';
import type { StateChange, UnitSnapshot, UnitTable } from '../units/table.js';
import { debugFor, errorText, logError, logErrorThrottled } from '../log.js';

const debug = debugFor('sync');
const debugEvents = debugFor('events');

export interface SyncOptions {
  readonly address: string;
  readonly callTimeoutMs: number;
  /** Globs for ListUnitsByPatterns: the union of every job's include. */
  readonly patterns: readonly string[];
  /** Whether any job wants this unit (by name). */
  readonly wants: (name: string) => boolean;
  /** Whether a job skips transient units, so the Transient property must be read. */
  readonly needTransient: boolean;
  readonly resyncEveryMs?: number;
  readonly maxInFlight?: number;
  /** Replace the connection after this many messages (default 2^31; lower only to test it). */
  readonly maxMessagesPerConnection?: number;
  /** Ping systemd after this long without a signal from it (default 5 s). */
  readonly quietMs?: number;
  /** Called after every full listing has been applied (e.g. to give memory back). */
  readonly onSnapshot?: () => void;
}

/** Start-up failures the operator must act on: no bus, or no systemd on it. */
export class NoSystemdError extends Error {}

const BACKOFF_MS = [250, 1000, 2000, 4000, 8000, 15000, 30000];
/**
 * While the bus cannot even be reached (socket gone, connection refused) retries stay this close:
 * a refused connect costs nobody anything, and a bus that comes back must be used at once.
 */
const UNREACHABLE_RETRY_MS = 500;
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
const TRANSIENT_CACHE = 10_000;

export class UnitSync {
  private bus: Bus | undefined;
  private manager: SystemdManager | undefined;
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
  /**
   * Between Reloading(true) and Reloading(false): systemd then says UnitRemoved and UnitNew for
   * every unit it re-creates, and the resync that follows the reload settles them all at once.
   */
  private reloading = false;
  private readonly watchdog: Watchdog;
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
      sent: () => this.bus?.sent,
      ping: () => this.manager?.ping(),
      isTimeout: (err) => err instanceof BusCallError && err.dbusName === TIMEOUT_ERROR,
      onUnresponsive: (reason) => {
        this.table.synced = false;
        logError(`systemd does not answer (${reason}); charts pause until it does`);
      },
      onResponsive: () => {
        logError('systemd answers again; resyncing');
        this.resyncLogged('systemd answers again');
      },
      onWornOut: (sent) => this.replaceConnection(sent),
    });
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
      const reached = this.bus !== undefined;
      this.dropBus();
      const name = (err as BusCallError).dbusName;
      if (name === 'org.freedesktop.DBus.Error.ServiceUnknown' || name === 'org.freedesktop.DBus.Error.NameHasNoOwner') {
        throw new NoSystemdError(`systemd is not on the system bus at ${this.options.address} (is systemd PID 1 here?)`);
      }
      if (!reached) {
        throw new NoSystemdError(
          `cannot reach the system bus at ${this.options.address}: ${errorText(err)} ` +
            '(is systemd running? in a container, is /run/dbus mounted? set DBUS_SYSTEM_BUS_ADDRESS to override)',
        );
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
    this.bus?.close();
    this.wakeInStep();
  }

  /** systemd's API while the table is in step with it; undefined while it is out of reach. */
  get systemd(): SystemdManager | undefined {
    return this.table.synced ? this.manager : undefined;
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
    const bus = await Bus.connect({
      address: this.options.address,
      callTimeoutMs: this.options.callTimeoutMs,
      maxInFlight: this.options.maxInFlight ?? 32,
    });
    this.bus = bus;
    this.manager = new SystemdManager(bus);
    bus.on('signal', (s: Signal) => this.onSignal(s));
    bus.once('close', (reason: string) => this.onLost(bus, reason));
    for (const rule of MATCH_RULES) await bus.addMatch(rule);
    if (!(await this.manager.isOnBus())) {
      throw new BusCallError('org.freedesktop.systemd1 has no owner', 'org.freedesktop.DBus.Error.NameHasNoOwner');
    }
    await this.manager.subscribe();
    this.watchdog.reset();
    this.reloading = false;
    this.table.reloads++;
    await this.resync();
  }

  private async snapshot(): Promise<void> {
    const manager = this.manager;
    if (!manager) return;
    const started = Date.now();
    const listing = await manager.listUnits(this.options.patterns);
    const listed = listing.units.filter((u) => this.tracks(u));
    const listedAt = Date.now();
    // Signals that arrived after the listing are newer than it: those units keep what they said.
    const newer = (path: string): boolean => (this.lastSignal.get(path) ?? 0) > listing.seq;
    this.table.applySnapshot(
      listed.filter((u) => this.table.get(u.name) && !newer(u.path)),
      (name) => this.lookups.has(name) || newer(unitPath(name)),
    );
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
    await manager.isOnBus().catch(() => undefined);
    this.options.onSnapshot?.();
    debug('resync: %d units, %d new (listed in %d ms, completed in %d ms)', this.table.size, fresh.length, listedAt - started, Date.now() - listedAt);
  }

  /** Adds what ListUnits does not carry: Transient (when a job needs it) and Result of failed units. */
  private async complete(manager: SystemdManager, u: ListedUnit): Promise<UnitSnapshot | undefined> {
    let transient = this.transientByName.get(u.name);
    let result: string | undefined;
    try {
      if (transient === undefined && this.options.needTransient) {
        transient = await manager.isTransient(u.path);
        this.rememberTransient(u.name, transient);
      }
      if (u.activeState === 'failed') result = await manager.result(u.path, u.name);
    } catch (err) {
      if (this.isConnectionError(err)) throw err;
      debug('cannot read %s: %s', u.name, errorText(err)); // unloaded meanwhile
      return undefined;
    }
    return { ...u, ...(transient !== undefined ? { transient } : {}), ...(result !== undefined ? { result } : {}) };
  }

  private onSignal(s: Signal): void {
    const event = decodeSignal(s);
    if (!event) return;
    if (event.kind !== 'owner') this.watchdog.heard();
    if (debugEvents.enabled) debugEvents('%s %o', event.kind, event);
    this.apply(event);
  }

  private apply(e: UnitEvent): void {
    switch (e.kind) {
      case 'state': {
        if (e.activeState !== undefined && !isKnownState(e.activeState)) {
          logErrorThrottled(`state ${e.activeState}`, `systemd reports an unknown unit state '${e.activeState}'; charted as 2 (inactive)`, 86_400_000);
        }
        const unit = this.table.getByPath(e.path);
        if (unit) {
          this.lastSignal.set(e.path, e.seq);
          return this.table.update(unit, e);
        }
        const name = unitNameFromPath(e.path);
        if (name === undefined || this.reloading || !this.options.wants(name)) return;
        this.lastSignal.set(e.path, e.seq);
        const pending = this.lookups.get(name);
        if (pending) {
          pending.changes.push({ seq: e.seq, change: e });
          return;
        }
        return void this.lookUp(name);
      }
      case 'new':
        if (this.reloading) return;
        // Already known (e.g. a removal not yet confirmed): its signals keep it current.
        if (!this.table.get(e.name) && this.options.wants(e.name)) void this.lookUp(e.name);
        return;
      case 'removed':
        // Confirm first: `reset-failed` + `start` unloads and reloads a unit within milliseconds,
        // and dropping it in between would retire its dimension for nothing. A unit whose lookup
        // is still under way must be looked at again too: that lookup's listing predates the
        // removal, and would otherwise add a unit systemd no longer has.
        if (this.reloading) return;
        if (this.table.get(e.name) || this.lookups.has(e.name)) void this.lookUp(e.name);
        return;
      case 'reloading':
        // One lookup per unit re-created would cost a D-Bus round trip each (10,000 after a
        // reload at 10,000 units) for what the one listing after the reload says anyway.
        this.reloading = e.started;
        if (!e.started) {
          // A lookup that listed its unit before or during the reload may have seen it as it was.
          for (const pending of this.lookups.values()) pending.again = true;
          this.table.reloads++;
          this.resyncLogged('daemon-reload');
        }
        return;
      case 'owner':
        if (e.owner === '') {
          logError('systemd left the system bus; charts pause until it is back');
          this.table.synced = false;
          return;
        }
        // daemon-reexec or a restarted manager: subscribe again (harmless if still subscribed).
        this.reloading = false;
        this.manager?.subscribe().catch((err) => debug('re-subscribe: %s', errorText(err)));
        this.table.reloads++;
        this.resyncLogged('systemd changed bus owner');
        return;
    }
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
  private async lookUp(name: string, given?: { unit: ListedUnit | undefined; seq: Seq }): Promise<void> {
    const manager = this.manager;
    const running = this.lookups.get(name);
    if (running) {
      running.again = true;
      return;
    }
    if (!manager) return;
    const pending: PendingLookup = { changes: [], again: false };
    this.lookups.set(name, pending);
    try {
      do {
        pending.again = false;
        const answer = given ?? (await manager.listUnit(name));
        given = undefined;
        const listed = answer.unit;
        if (!listed || !this.tracks(listed)) {
          this.forget(name);
          continue;
        }
        if (this.table.get(name)) continue; // still loaded; its own signals keep it current
        const snapshot = await this.complete(manager, listed);
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
      } while (pending.again && this.manager === manager);
    } catch (err) {
      // A lost connection is onLost's to handle; anything else means the unit went meanwhile.
      if (!this.isConnectionError(err)) {
        debug('cannot look up %s: %s', name, errorText(err));
        // Unanswered (systemd swamped): the unit may be gone or changed, and nothing else will
        // say so. One resync soon settles every such unit at once.
        this.resyncSoon();
      }
    } finally {
      this.lookups.delete(name);
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

  private resyncSoon(): void {
    if (this.resyncSoonTimer) return;
    this.resyncSoonTimer = setTimeout(() => {
      this.resyncSoonTimer = undefined;
      this.resyncLogged('a lookup went unanswered');
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
    this.table.synced = false;
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

  private onLost(bus: Bus, reason: string): void {
    if (this.stopped || bus !== this.bus) return;
    this.bus = undefined;
    this.manager = undefined;
    this.lookups.clear();
    this.lastSignal.clear(); // sequence numbers are per connection
    this.table.synced = false;
    logErrorThrottled('lost', `lost the system bus (${reason}); charts pause, reconnecting`);
    if (!this.reconnecting) void this.reconnect();
  }

  /**
   * Replaces a connection that has sent `sent` messages with a new one, at a quiet moment: the
   * table stays in sync meanwhile (the new connection resyncs before it is used), so no gap.
   */
  private replaceConnection(sent: number): void {
    const old = this.bus;
    if (!old || this.reconnecting || this.resyncs.busy || this.stopped) return;
    logError(`replacing the D-Bus connection after ${sent} messages (dbus-next cannot number more than 2^32)`);
    this.bus = undefined;
    this.manager = undefined;
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
          this.table.synced = false;
          const reached = this.bus !== undefined;
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
    const bus = this.bus;
    this.bus = undefined;
    this.manager = undefined;
    bus?.close();
  }

  private backoff(): number {
    const ms = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)]!;
    return this.reachedBus ? ms : Math.min(ms, UNREACHABLE_RETRY_MS);
  }

  private isConnectionError(err: unknown): boolean {
    return err instanceof BusCallError && err.dbusName === CLOSED_ERROR;
  }
}
