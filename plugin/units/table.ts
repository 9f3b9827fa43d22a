// The unit table: the plugin's one mutable model of systemd's units. The systemd layer writes it
// (snapshots and signals); jobs read it once per sample.
//
// Nothing may be missed between samples: a unit that fails and recovers within one interval must
// still be reported failed for that interval. Rather than a per-sample flag (which would tie the
// table to one job's rhythm), each entry into `failed` is stamped with a sequence number; a job
// remembers the sequence at its previous sample and asks "did this unit fail since then?".

import { unitNameFromPath, unitType } from './names.js';
import { stateValue, type StateValue } from './states.js';

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
  /** Whether systemd created the unit at run time (systemd-run, scopes); undefined until read. */
  transient: boolean | undefined;
  /** Table sequence at the unit's latest entry into `failed`; 0 if never seen entering it. */
  failedSeq: number;
}

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
}

export class UnitTable {
  private readonly byName = new Map<string, Unit>();
  /** Bumped on every entry into `failed`. */
  private failSeq = 0;
  /**
   * Failure stamps of units systemd unloaded: `systemctl reset-failed` on an unreferenced unit
   * unloads it, and a `start` right after loads it anew; the failure must survive that round trip.
   */
  private readonly unloadedFailures = new Map<string, number>();
  /** Bumped whenever units are added or removed, so jobs re-select only then. */
  private membershipVersion = 0;
  /** False until the first snapshot and while systemd cannot be reached: jobs then leave gaps. */
  synced = false;
  /**
   * Bumped when systemd reloaded its unit files, was replaced, or was reconnected to: properties
   * that are constant until a reload (a socket's Accept) must then be read again.
   */
  reloads = 0;

  get size(): number {
    return this.byName.size;
  }

  get sequence(): number {
    return this.failSeq;
  }

  get membership(): number {
    return this.membershipVersion;
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
    const seen = new Set<string>();
    for (const s of listed) {
      seen.add(s.name);
      this.upsert(s);
    }
    for (const name of [...this.byName.keys()]) if (!seen.has(name) && !keep(name)) this.remove(name);
    this.synced = true;
  }

  /** Adds a unit, or refreshes one already known. */
  upsert(s: UnitSnapshot): Unit {
    const known = this.byName.get(s.name);
    if (known) {
      known.loadState = intern(s.loadState);
      if (s.transient !== undefined) known.transient = s.transient;
      this.update(known, { activeState: s.activeState, subState: s.subState, ...(s.result ? { result: s.result } : {}) });
      return known;
    }
    const unit: Unit = {
      name: s.name,
      type: unitType(s.name),
      loadState: intern(s.loadState),
      activeState: intern(s.activeState),
      value: stateValue(s.activeState),
      subState: intern(s.subState),
      result: s.result,
      transient: s.transient,
      failedSeq: s.activeState === 'failed' ? ++this.failSeq : (this.unloadedFailures.get(s.name) ?? 0),
    };
    this.unloadedFailures.delete(s.name);
    this.byName.set(unit.name, unit);
    this.membershipVersion++;
    return unit;
  }

  remove(name: string): boolean {
    const unit = this.byName.get(name);
    if (!unit) return false;
    this.byName.delete(name);
    if (unit.failedSeq > 0) {
      this.unloadedFailures.set(name, unit.failedSeq);
      // Only the latest few matter (older stamps are behind every job's last sample).
      if (this.unloadedFailures.size > 1000) this.unloadedFailures.delete(this.unloadedFailures.keys().next().value!);
    }
    this.membershipVersion++;
    return true;
  }

  /** Records that the unit was failed at some point since now, whatever its state says. */
  noteFailure(unit: Unit): void {
    unit.failedSeq = ++this.failSeq;
  }

  /** Applies a change signalled by systemd. */
  update(unit: Unit, change: StateChange): void {
    if (change.result !== undefined) unit.result = change.result;
    if (change.subState !== undefined) unit.subState = intern(change.subState);
    if (change.activeState !== undefined && change.activeState !== unit.activeState) {
      unit.activeState = intern(change.activeState);
      unit.value = stateValue(unit.activeState);
      if (change.activeState === 'failed') this.noteFailure(unit);
    }
  }
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
