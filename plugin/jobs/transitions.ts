// State transitions per unit type per job, for the flapping alarm (charts/unit-summary.ts).
//
// Counted from the table's per-unit counters, which every ActiveState change systemd signals bumps,
// so a unit that flaps several times between two samples adds each change. Per-connection
// instances of Accept=yes sockets are left out: they start and stop with every connection, which is
// traffic (see the socket activity charts), not flapping.

import { UNIT_TRANSITIONS_CHART } from '../../charts/unit-summary.js';
import type { JobConfig } from '../config.js';
import type { ProtocolWriter } from '../netdata/protocol.js';
import { perConnectionGroup } from '../units/instances.js';
import type { Unit, UnitTable } from '../units/table.js';
import { dimensionName } from './job.js';
import { SummaryCharts, type SummaryChart } from './summary.js';

/** How many units the `changed_units` label names. */
const LABEL_MAX_UNITS = 5;

interface Counter {
  /** The units counted (the chart's units without per-connection instances). */
  counted: readonly Unit[];
  /** Σ transitions of `counted` when last summed. */
  base: number;
  /** Transitions of units that left the chart since the last sample, not yet reported. */
  pending: number;
}

export class UnitTransitions extends SummaryCharts {
  private readonly counters = new Map<SummaryChart, Counter>();
  private readonly perConnection = new WeakMap<Unit, boolean>();
  /** The table's state version at the previous sample: units changed after it changed in this interval. */
  private seenStates: number;

  constructor(config: JobConfig, private readonly table: UnitTable, writer: ProtocolWriter, chartType: string) {
    super(UNIT_TRANSITIONS_CHART, config, writer, chartType);
    this.seenStates = table.states;
  }

  override sample(nowUs: number, failSeq: number): void {
    super.sample(nowUs, failSeq);
    this.seenStates = this.table.states;
  }

  protected override changeUnits(chart: SummaryChart, next: readonly Unit[]): void {
    const c = this.counter(chart);
    c.pending += sum(c.counted) - c.base;
    c.counted = next.filter((u) => !this.isPerConnection(u));
    c.base = sum(c.counted);
    if (next.length === 0) this.counters.delete(chart);
  }

  protected compute(chart: SummaryChart, _failSeq: number): void {
    const c = this.counter(chart);
    let delta = c.pending;
    c.pending = 0;
    if (this.table.states !== this.seenStates) {
      const now = sum(c.counted);
      delta += now - c.base;
      c.base = now;
      const changed = delta > 0 ? this.changedLabel(c.counted) : undefined;
      if (changed !== undefined) this.setLabel(chart, UNIT_TRANSITIONS_CHART.changedLabel, changed);
    }
    chart.values[0] = delta;
    if (!chart.labels.has(UNIT_TRANSITIONS_CHART.changedLabel)) this.setLabel(chart, UNIT_TRANSITIONS_CHART.changedLabel, 'none');
  }

  protected override variables(_chart: SummaryChart): void {
    this.chartVariable(UNIT_TRANSITIONS_CHART.thresholdVariable, this.config.flappingThreshold);
  }

  /** Units that changed state in this interval, those with most changes first. */
  private changedLabel(units: readonly Unit[]): string | undefined {
    const changed = units.filter((u) => u.changedAt > this.seenStates).sort((a, b) => b.transitions - a.transitions);
    if (changed.length === 0) return undefined;
    const named = changed.slice(0, LABEL_MAX_UNITS).map((u) => dimensionName(u.name));
    const more = changed.length - LABEL_MAX_UNITS;
    return named.join('; ') + (more > 0 ? `; and ${more} more` : '');
  }

  private counter(chart: SummaryChart): Counter {
    let c = this.counters.get(chart);
    if (!c) this.counters.set(chart, (c = { counted: [], base: 0, pending: 0 }));
    return c;
  }

  private isPerConnection(unit: Unit): boolean {
    let v = this.perConnection.get(unit);
    if (v === undefined) this.perConnection.set(unit, (v = perConnectionGroup(unit.name) !== undefined));
    return v;
  }
}

function sum(units: readonly Unit[]): number {
  let n = 0;
  for (const u of units) n += u.transitions;
  return n;
}
