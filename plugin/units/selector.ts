// Which units a job charts: include globs (the same fnmatch globs systemd's ListUnitsByPatterns
// takes, so they can also be sent to systemd to filter at the source; see glob.ts), exclude
// globs, transient.

import type { Unit } from './table.js';
import { Glob } from './glob.js';

export interface Selection {
  readonly include: readonly string[];
  readonly exclude: readonly string[];
  readonly skipTransient: boolean;
}

export class UnitSelector {
  private readonly include: Glob[];
  private readonly exclude: Glob[];

  constructor(private readonly selection: Selection) {
    this.include = selection.include.map((g) => new Glob(g));
    this.exclude = selection.exclude.map((g) => new Glob(g));
  }

  /** By name alone: what the systemd layer uses to decide which units to track at all. */
  matchesName(name: string): boolean {
    return this.include.some((g) => g.matches(name)) && !this.exclude.some((g) => g.matches(name));
  }

  /**
   * Whether the job charts this unit. Units systemd only knows by reference (LoadState
   * `not-found`) are left out: they are not installed, so their "inactive" is noise.
   */
  selects(unit: Unit): boolean {
    if (unit.loadState === 'not-found') return false;
    if (this.selection.skipTransient && unit.transient !== false) return false;
    return this.matchesName(unit.name);
  }
}
