// Units by load state, per unit type per job, and which are broken (charts/unit-summary.ts). The
// load states change only with a listing or a unit's (re)load, so the counts are redone only when
// the table's load state version moves, not every sample.

import { UNIT_LOAD_STATES_CHART } from '../../charts/unit-summary.js';
import type { ProtocolWriter } from '../netdata/protocol.js';
import { unitType } from '../units/names.js';
import type { Unit, UnitTable } from '../units/table.js';
import { dimensionName } from './names.js';
import { SummaryCharts, type SummaryChart } from './summary.js';
import type { JobCharts } from './job-charts.js';

const INDEX = new Map(UNIT_LOAD_STATES_CHART.dimensions.map((d, i) => [d.name, i]));
const NOT_FOUND = INDEX.get('not-found')!;
const LOADED = 'loaded';
const LOADED_AT = INDEX.get(LOADED)!;
const BROKEN = new Set(UNIT_LOAD_STATES_CHART.brokenStates);
/** How many broken units the label names before "and N more". */
const LABEL_MAX_UNITS = 5;

export class UnitLoadStates extends SummaryCharts {
  private seenLoad = -1;
  /** The table's not-found names this job wants, per unit type, as of seenLoad. */
  private notFound = new Map<string, number>();
  /** Per chart: the broken units its label names (in chart.units order). */
  private readonly broken = new WeakMap<SummaryChart, readonly Unit[]>();

  constructor(
    job: JobCharts,
    private readonly table: UnitTable,
    writer: ProtocolWriter,
    /** Whether the job wants a unit by name (its include/exclude). */
    private readonly matchesName: (name: string) => boolean,
  ) {
    super(UNIT_LOAD_STATES_CHART, job, writer);
  }

  /** The table's not-found list counted into notFound (replaced, never changed, on a new listing). */
  private seenNotFound: readonly string[] | undefined;

  override sample(nowUs: number, failSeq: number): void {
    this.recount = this.table.loadStates !== this.seenLoad;
    this.seenLoad = this.table.loadStates;
    // Glob-matching the not-found names only when a listing brought new ones, not on every
    // membership change (Accept=yes instances come and go with connections).
    if (this.table.notFound !== this.seenNotFound) {
      this.seenNotFound = this.table.notFound;
      this.notFound.clear();
      for (const name of this.table.notFound) {
        if (!this.matchesName(name)) continue;
        const type = unitType(name);
        this.notFound.set(type, (this.notFound.get(type) ?? 0) + 1);
      }
    }
    super.sample(nowUs, failSeq);
  }

  private recount = true;

  protected override changeUnits(_chart: SummaryChart, _next: readonly Unit[]): void {
    this.seenLoad = -1;
  }

  protected compute(chart: SummaryChart): boolean {
    if (!this.recount && chart.chart.held) return false;
    const v = chart.values;
    v.fill(0);
    const broken: Unit[] = [];
    for (const unit of chart.units) {
      // Nearly every unit is loaded: one comparison of interned strings, no lookup.
      if (unit.loadState === LOADED) {
        v[LOADED_AT]!++;
        continue;
      }
      const i = INDEX.get(unit.loadState);
      if (i !== undefined) v[i]!++;
      if (BROKEN.has(unit.loadState)) broken.push(unit);
    }
    v[NOT_FOUND] = this.notFound.get(chart.kind.unitType) ?? 0;
    // The label only when the broken units changed (its text sorts and decodes names).
    const before = this.broken.get(chart);
    if (!before || before.length !== broken.length || before.some((u, k) => u !== broken[k])) {
      this.broken.set(chart, broken);
      chart.chart.setLabel(UNIT_LOAD_STATES_CHART.brokenLabel, brokenLabel([...broken]));
    }
    chart.chart.setVariable(UNIT_LOAD_STATES_CHART.brokenVariable, broken.length);
    return true;
  }
}

/** `bad.service (bad-setting); x.timer (error)`, or `none`. */
function brokenLabel(broken: Unit[]): string {
  if (broken.length === 0) return 'none';
  broken.sort((a, b) => (a.name < b.name ? -1 : 1));
  const named = broken.slice(0, LABEL_MAX_UNITS).map((u) => `${dimensionName(u.name)} (${u.loadState})`);
  const more = broken.length - LABEL_MAX_UNITS;
  return named.join('; ') + (more > 0 ? `; and ${more} more` : '');
}
