// The unit table: the plugin's one mutable model of systemd's units. The systemd layer writes it
// (snapshots and signals; socket counters and failure details too); chart writers read it once per
// sample and never write it.
//
// Nothing may be missed between samples: a unit that fails and recovers within one interval must
// still be reported failed for that interval. Rather than a per-sample flag (which would tie the
// table to one job's rhythm), each entry into `failed` is stamped with a sequence number; a job
// remembers the sequence at its previous sample and asks "did this unit fail since then?".

import { unitNameFromPath, unitType } from './names.js';
import { stateValue, type StateValue } from './states.js';
import { perConnectionGroup, type InstanceGroup } from './instances.js';

/** How a service's main process ended: ExecMainCode (CLD_*: 1 exited, 2 killed, 3 dumped) and ExecMainStatus. */
export interface MainExit {
  readonly code: number;
  readonly status: number;
}

/** A service run that ended badly: its Result and how its main process ended, if systemd said. */
export interface Crash {
  readonly result: string;
  readonly exit: MainExit | undefined;
}

/**
 * A socket's connection counters as systemd last answered them (never signalled: read when
 * something may have moved them, see systemd/socket-poller.ts).
 */
export interface SocketCounters {
  readonly accepted: number;
  readonly connections: number;
  /** null when this systemd has no NRefused (before 239). */
  readonly refused: number | null;
  /** NConnections from which systemd may refuse (MaxConnections, or MaxConnectionsPerSource if lower). */
  readonly limit: number;
  /** The link generation these were read in: `limit` may change with a reload, and the poller reads all again in a new one. */
  readonly limitGeneration: number;
  /** The table's socketActivity stamp of the socket when the read began. */
  readonly activity: number;
  /** When they were read: the monotonic µs of the round that read them. */
  readonly readAtUs: number;
  /** The latest round (monotonic µs) at which they were known current: read then, or nothing could have moved them. */
  currentAtUs: number;
}

export interface Unit {
  readonly name: string;
  readonly type: string;
  loadState: string;
  activeState: string;
  /** activeState as the chart value 1..5, kept with it (samples read thousands of these a second). */
  value: StateValue;
  subState: string;
  /** The unit type's Result (`exit-code`, `resources`…), when systemd has said. */
  result: string | undefined;
  /**
   * Result as the unit entered `failed` last: the failed run's. systemd signals Result on the
   * type's interface just before the ActiveState change (bus_unit_send_change_signal sends that
   * interface first), and resets it to `success` when the unit starts again (an auto-restart 100 ms
   * later, a `systemctl start`), often before anyone reads it.
   */
  failedResult: string | undefined;
  /** The failed run's main exit, kept like failedResult (services; undefined when not signalled). */
  failedExit?: MainExit;
  /** The latest main exit systemd signalled (services). */
  exit?: MainExit;
  /**
   * Restarts systemd made of this service (Restart=) since it entered the table: each one counted
   * as systemd schedules it (the service enters `auto-restart`, RestartSec before the restart), and
   * any that no signal of that showed from the increments of NRestarts. A restart between two
   * samples counts too.
   */
  restarts: number;
  /** The NRestarts last signalled, the base of the next increment; undefined until one comes. */
  nRestarts?: number;
  /** Restarts counted as scheduled whose NRestarts increment has not come yet. */
  scheduledRestarts?: number;
  /** The table's `restartVersion` at the unit's latest counted restart. */
  restartedAt: number;
  /** The latest run that ended with a Result other than success: why it last crashed. */
  lastCrash?: Crash;
  /** Whether systemd created the unit at run time (systemd-run, scopes); undefined until read. */
  transient: boolean | undefined;
  /** Table sequence at the unit's latest entry into `failed`; 0 if never seen entering it. */
  failedSeq: number;
  /** ActiveState changes seen since the unit entered the table (for the flapping charts). */
  transitions: number;
  /** The table's `states` version at the unit's latest ActiveState change. */
  changedAt: number;
  /**
   * For a failed socket: the service it triggers, when that says more than "inactive"
   * (`web.service failed start-limit-hit`). Set by the failure reporter, shown in the alarm text.
   */
  triggered?: string;
  /** For a socket: its Accept, once read (constant until systemd reloads). Set by the Accept reader. */
  accept?: boolean;
  /** For an Accept=yes socket that a job charts the activity of: set by the socket poller. */
  counters?: SocketCounters;
  /** Its Accept=yes instance group (see units/instances.ts), null if none: worked out as it enters. */
  readonly instanceGroup: InstanceGroup | null;
  /**
   * The sync's: arrival (per connection) of the latest state signal applied to it, so that an
   * older listing does not override it; 0 if none on this connection.
   */
  signalSeq: number;
  /** The number of the latest full listing that listed it (see startListing); REMOVED once out of the table. */
  listedIn: number;
}

/** Unit.listedIn of a unit removed from the table. */
export const REMOVED = -1;

export interface UnitSnapshot {
  readonly name: string;
  readonly loadState: string;
  readonly activeState: string;
  readonly subState: string;
  readonly transient?: boolean;
  readonly result?: string;
}

export interface StateChange {
  readonly activeState?: string;
  readonly subState?: string;
  readonly result?: string;
  readonly nRestarts?: number;
  readonly execCode?: number;
  readonly execStatus?: number;
}

export class UnitTable {
  private readonly byName = new Map<string, Unit>();
  /** Bumped on every entry into `failed`. */
  private failSeq = 0;
  /**
   * Failure stamps and transition counts of units systemd unloaded: `systemctl reset-failed` on an
   * unreferenced unit unloads it, and a `start` right after loads it anew; the failure and the
   * state changes must survive that round trip, and the change across it counts too.
   */
  private readonly unloaded = new Map<string, Pick<Unit, 'failedSeq' | 'failedResult' | 'transitions' | 'changedAt' | 'activeState'>>();
  /** Bumped whenever units are added or removed, so jobs re-select only then. */
  private membershipVersion = 0;
  /** Bumped on every ActiveState change: jobs skip recounting units when it has not moved. */
  private stateVersion = 0;
  /** Bumped when a unit's LoadState changes or the not-found names do (units by load state). */
  private loadVersion = 0;
  /**
   * Names systemd lists as `not-found` (referenced, no unit file) that a job wants, as of the latest
   * full listing: counted on the load state charts, never tracked as units (they never run).
   */
  private notFoundNames: readonly string[] = [];
  /** Bumped on every restart counted: jobs skip looking for restarted units when it has not moved. */
  private restartVersion = 0;
  /** Full listings started (startListing): each listed unit is stamped with its number. */
  private listings = 0;
  /** Told of every entry into `failed` (a unit listed failed counts as one). */
  private readonly failureListeners = new Set<(unit: Unit) => void>();
  /** Bumped on every change about a socket or its per-connection instances (see noteSocketActivity). */
  private activitySeq = 0;
  /** By socket name (sockets in the table only): the activitySeq of the latest such change. */
  private readonly socketActivity = new Map<string, number>();

  /**
   * Calls `listener` on every entry into `failed` (a unit listed failed counts as one), in the
   * order subscribed; it must not throw. Returns the unsubscribe.
   */
  onFailure(listener: (unit: Unit) => void): () => void {
    this.failureListeners.add(listener);
    return () => this.failureListeners.delete(listener);
  }

  get size(): number {
    return this.byName.size;
  }

  get sequence(): number {
    return this.failSeq;
  }

  get membership(): number {
    return this.membershipVersion;
  }

  get states(): number {
    return this.stateVersion;
  }

  get loadStates(): number {
    return this.loadVersion;
  }

  get notFound(): readonly string[] {
    return this.notFoundNames;
  }

  /** The not-found names of a full listing (see notFoundNames). */
  setNotFound(names: readonly string[]): void {
    if (names.length === this.notFoundNames.length && names.every((n, i) => n === this.notFoundNames[i])) return;
    this.notFoundNames = names;
    this.loadVersion++;
  }

  /**
   * systemd said something about the socket `name` or one of its per-connection instances (the
   * sync calls this on each such signal; an instance entering or leaving the table counts too):
   * its connection counters may have moved, and the socket poller reads them again. Nothing else
   * moves NAccepted and NConnections (see systemd/socket-poller.ts). Sockets not in the table are
   * not charted: nothing to note.
   */
  noteSocketActivity(name: string): void {
    if (this.byName.get(name)?.type === 'socket') this.socketActivity.set(name, ++this.activitySeq);
  }

  /** The stamp of the latest noteSocketActivity of the socket `name`; 0 if none. */
  socketActivityOf(name: string): number {
    return this.socketActivity.get(name) ?? 0;
  }

  get restartsVersion(): number {
    return this.restartVersion;
  }

  get(name: string): Unit | undefined {
    return this.byName.get(name);
  }

  /** The unit behind a systemd object path (see unitPath). */
  getByPath(path: string): Unit | undefined {
    const name = unitNameFromPath(path);
    return name === undefined ? undefined : this.byName.get(name);
  }

  units(): IterableIterator<Unit> {
    return this.byName.values();
  }

  /**
   * Replaces the table's content with a full listing from systemd. Units not listed are removed,
   * except those `keep` vouches for (a newer lookup of them is under way).
   */
  applySnapshot(listed: readonly UnitSnapshot[], keep: (name: string) => boolean = () => false): void {
    const listing = this.startListing();
    for (const s of listed) this.listed(this.upsert(s), listing);
    this.removeUnlisted(listing, keep);
  }

  /**
   * A full listing begins: the units it lists are marked with the number returned (listed), and
   * the others removed at its end (removeUnlisted). Compared in place: no copy of the table.
   */
  startListing(): number {
    return ++this.listings;
  }

  listed(unit: Unit, listing: number): void {
    unit.listedIn = listing;
  }

  /** Removes the units that `listing` did not list, except those `keep` vouches for. */
  removeUnlisted(listing: number, keep: (name: string) => boolean): void {
    for (const unit of this.byName.values()) if (unit.listedIn !== listing && !keep(unit.name)) this.remove(unit.name);
  }

  /** Adds a unit, or refreshes one already known. */
  upsert(s: UnitSnapshot): Unit {
    const known = this.byName.get(s.name);
    if (known) {
      // As listed before (a resync, mostly): nothing to change, nothing to allocate.
      if (known.loadState === s.loadState && known.activeState === s.activeState && known.subState === s.subState && s.result === undefined && (s.transient === undefined || s.transient === known.transient)) return known;
      if (known.loadState !== s.loadState) this.loadVersion++;
      known.loadState = intern(s.loadState);
      if (s.transient !== undefined) known.transient = s.transient;
      this.update(known, { activeState: s.activeState, subState: s.subState, ...(s.result ? { result: s.result } : {}) });
      return known;
    }
    const before = this.unloaded.get(s.name);
    const unit: Unit = {
      name: s.name,
      type: intern(unitType(s.name)),
      loadState: intern(s.loadState),
      activeState: intern(s.activeState),
      value: stateValue(s.activeState),
      subState: intern(s.subState),
      result: s.result,
      failedResult: s.activeState === 'failed' ? failureResult(s.result) : before?.failedResult,
      transient: s.transient,
      failedSeq: s.activeState === 'failed' ? ++this.failSeq : (before?.failedSeq ?? 0),
      transitions: before?.transitions ?? 0,
      changedAt: before?.changedAt ?? 0,
      restarts: 0,
      restartedAt: 0,
      instanceGroup: perConnectionGroup(s.name) ?? null,
      signalSeq: 0,
      listedIn: 0,
      // Set later on every socket (10,000 at 10,000 sockets): in the object from the start, not in
      // a second block of properties each.
      accept: undefined,
    };
    // Failed when unloaded, active when loaded again: a change no signal of ours carried.
    if (before && before.activeState !== unit.activeState) {
      unit.transitions++;
      unit.changedAt = ++this.stateVersion;
    }
    this.unloaded.delete(s.name);
    this.byName.set(unit.name, unit);
    if (unit.instanceGroup) this.noteSocketActivity(unit.instanceGroup.socket);
    this.membershipVersion++;
    this.loadVersion++;
    if (s.activeState === 'failed') this.failed(unit);
    return unit;
  }

  remove(name: string): boolean {
    const unit = this.byName.get(name);
    if (!unit) return false;
    this.byName.delete(name);
    unit.listedIn = REMOVED; // a Unit that leaves the table never comes back (a new one does)
    this.socketActivity.delete(name);
    if (unit.instanceGroup) this.noteSocketActivity(unit.instanceGroup.socket);
    if (unit.failedSeq > 0 || unit.transitions > 0) {
      this.unloaded.set(name, { failedSeq: unit.failedSeq, failedResult: unit.failedResult, transitions: unit.transitions, changedAt: unit.changedAt, activeState: unit.activeState });
      // Only the latest few matter (older ones are behind every job's last sample).
      if (this.unloaded.size > 1000) this.unloaded.delete(this.unloaded.keys().next().value!);
    }
    this.membershipVersion++;
    this.loadVersion++;
    return true;
  }

  /**
   * Records that the unit was failed at some point since now, whatever its state says, with the
   * Result it failed with (default: its Result now, which systemd set just before).
   */
  noteFailure(unit: Unit, result: string | undefined = unit.result): void {
    unit.failedSeq = ++this.failSeq;
    unit.failedResult = failureResult(result);
    // Signalled with the Result, just before the failure: the failed run's.
    unit.failedExit = unit.failedResult === undefined ? undefined : unit.exit;
    this.failed(unit);
  }

  private failed(unit: Unit): void {
    for (const listener of this.failureListeners) listener(unit);
  }

  /** Applies a change signalled by systemd. */
  update(unit: Unit, change: StateChange): void {
    if (change.execCode !== undefined && change.execStatus !== undefined) unit.exit = { code: change.execCode, status: change.execStatus };
    if (change.nRestarts !== undefined) this.restarted(unit, change.nRestarts);
    if (change.result !== undefined) {
      // systemd sends the exit with the Result, in the same signal (applied above)
      if (change.result !== 'success') unit.lastCrash = { result: change.result, exit: unit.exit };
      unit.result = change.result;
      // Not signalled before the failure (never seen from real systemd): a failure's Result that
      // comes late still belongs to it; a `success` then is the next start's reset.
      if (unit.activeState === 'failed' && unit.failedResult === undefined && change.result !== 'success') unit.failedResult = change.result;
    }
    if (change.subState !== undefined) {
      if (change.subState === 'auto-restart' && unit.subState !== 'auto-restart' && unit.type === 'service') this.restartScheduled(unit);
      unit.subState = intern(change.subState);
    }
    if (change.activeState !== undefined && change.activeState !== unit.activeState) {
      unit.activeState = intern(change.activeState);
      unit.value = stateValue(unit.activeState);
      unit.transitions++;
      unit.changedAt = ++this.stateVersion;
      if (change.activeState === 'failed') this.noteFailure(unit);
    }
  }

  /**
   * Counts the increments of a service's NRestarts. The first value signalled is only a base (what
   * came before the plugin watched is not this interval's); a value lower than the base is
   * systemd's reset on a manual start, a new base too.
   */
  private restarted(unit: Unit, nRestarts: number): void {
    const base = unit.nRestarts;
    unit.nRestarts = nRestarts;
    if (base !== undefined && nRestarts < base) unit.scheduledRestarts = 0; // a manual start
    if (base === undefined || nRestarts <= base) return;
    // Those already counted when systemd scheduled them are not counted again.
    const increment = nRestarts - base;
    const scheduled = Math.min(increment, unit.scheduledRestarts ?? 0);
    unit.scheduledRestarts = (unit.scheduledRestarts ?? 0) - scheduled;
    if (increment === scheduled) return;
    unit.restarts += increment - scheduled;
    unit.restartedAt = ++this.restartVersion;
  }

  /**
   * The service entered `auto-restart`: systemd will restart it after RestartSec. Counted now, so
   * a loop is told RestartSec sooner (seconds, with a long RestartSec); NRestarts confirms it.
   */
  private restartScheduled(unit: Unit): void {
    unit.scheduledRestarts = (unit.scheduledRestarts ?? 0) + 1;
    unit.restarts++;
    unit.restartedAt = ++this.restartVersion;
  }
}

/**
 * A failed run's Result is never `success`: that is the reset of a start that came after the
 * failure (read late, e.g. by a lookup that answered after `systemctl start` on the failed unit).
 * Unknown then, until systemd's next non-success Result fills it in (see update).
 */
function failureResult(result: string | undefined): string | undefined {
  return result === 'success' ? undefined : result;
}

/**
 * One shared copy of each state word: every decoded reply carries its own strings, and thousands
 * of units would otherwise hold thousands of copies of "active" and "listening".
 */
const interned = new Map<string, string>();
function intern(word: string): string {
  const known = interned.get(word);
  if (known !== undefined) return known;
  if (interned.size < 256) interned.set(word, word); // systemd has a few dozen; never unbounded
  return word;
}
