// Which units a job charts: include globs (the same fnmatch globs systemd's ListUnitsByPatterns
// takes, so they can also be sent to systemd to filter at the source), exclude globs, transient.

import type { Unit } from '../units/table.js';

/**
 * fnmatch-style glob (`*`, `?`, `[abc]`, `[!a-z]`) → anchored RegExp. Like systemd's own matching
 * (FNM_NOESCAPE), a backslash is an ordinary character, so `my\x2dapp@*.socket` means what it
 * says and the same pattern selects the same units here and in ListUnitsByPatterns.
 */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[') {
      const close = glob.indexOf(']', i + 2);
      if (close < 0) {
        re += '\\[';
        continue;
      }
      let body = glob.slice(i + 1, close);
      const negate = body.startsWith('!') || body.startsWith('^');
      if (negate) body = body.slice(1);
      re += `[${negate ? '^' : ''}${body.replace(/[\\\]^]/g, '\\$&')}]`;
      i = close;
    } else re += escapeRe(c);
  }
  return new RegExp(`^${re}$`, 's');
}

function escapeRe(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

export interface Selection {
  readonly include: readonly string[];
  readonly exclude: readonly string[];
  readonly skipTransient: boolean;
}

export class UnitSelector {
  private readonly include: RegExp[];
  private readonly exclude: RegExp[];

  constructor(private readonly selection: Selection) {
    this.include = selection.include.map(globToRegExp);
    this.exclude = selection.exclude.map(globToRegExp);
  }

  /** By name alone: what the systemd layer uses to decide which units to track at all. */
  matchesName(name: string): boolean {
    return this.include.some((r) => r.test(name)) && !this.exclude.some((r) => r.test(name));
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
