// State transitions per unit type per job, for the flapping alarm (charts/unit-summary.ts).
//
// Counted from the table's per-unit counters, which every ActiveState change systemd signals bumps,
// so a unit that flaps several times between two samples adds each change. Counts are kept per
// unit name, so a unit that systemd unloads and loads again (`reset-failed` then `start`) keeps
// counting. Per-connection instances of Accept=yes sockets are left out: they start and stop with
// every connection, which is traffic (see the socket activity charts), not flapping.

import { UNIT_TRANSITIONS_CHART } from '../../charts/unit-summary.js';
import type { ProtocolWriter } from '../netdata/protocol.js';
import { instanceGroupOf } from '../units/instances.js';
import type { Unit, UnitTable } from '../units/table.js';
import { dimensionName } from './names.js';
import { SummaryCharts, type SummaryChart } from './summary.js';
import type { JobCharts } from './job-charts.js';

/** How many units the `changed_units` label names. */
const LABEL_MAX_UNITS = 5;
const DEPARTED_KEPT = 1000;

interface Counter {
  /** The units counted (the chart's units without per-connection instances). */
  counted: readonly Unit[];
  /** Per unit counted, at the same position: its transitions already reported (no map entry per unit). */
  seen: Float64Array;
  /**
   * The same for units that left the chart, the latest DEPARTED_KEPT: a unit unloaded for a moment
   * (`reset-failed`, then `start`) may miss a sample and come back with its count carried on.
   */
  readonly departed: Map<string, number>;
  /** Changes of units that left the chart since the last sample, not yet reported. */
  pending: number;
  /** The latest samples' values, a ring covering the alarm's window, and their sum. */
  readonly window: number[];
  next: number;
  windowSum: number;
}

export class UnitTransitions extends SummaryCharts {
  private readonly counters = new Map<SummaryChart, Counter>();
  /** The table's state version at the previous sample: units changed after it changed in this interval. */
  private seenStates: number;

  constructor(
    job: JobCharts,
    private readonly table: UnitTable,
    writer: ProtocolWriter,
    /** The job's flapping_threshold, a chart variable the flapping alarm compares against. */
    private readonly threshold: number,
  ) {
    super(UNIT_TRANSITIONS_CHART, job, writer);
    this.seenStates = table.states;
  }

  override sample(nowUs: number, failSeq: number): void {
    super.sample(nowUs, failSeq);
    this.seenStates = this.table.states;
  }

  protected override changeUnits(chart: SummaryChart, next: readonly Unit[]): void {
    const c = this.counter(chart);
    // The chart's own list where none is left out (it is not changed after: no copy per unit).
    const counted = next.some((u) => this.isPerConnection(u)) ? next.filter((u) => !this.isPerConnection(u)) : next;
    const names = new Set(counted.map((u) => u.name));
    // What each name counted so far saw, for this pass only.
    const before = new Map<string, number>();
    c.counted.forEach((u, i) => {
      if (!names.has(u.name)) {
        // Leaving the chart: what it did since the last sample is still this interval's.
        c.pending += u.transitions - c.seen[i]!;
        c.departed.set(u.name, u.transitions);
        if (c.departed.size > DEPARTED_KEPT) c.departed.delete(c.departed.keys().next().value!);
      } else before.set(u.name, c.seen[i]!);
    });
    // A name new to the chart counts from now on; one coming back, from where it left (the table
    // carries a reloaded unit's count on, and counts the change across the unload).
    const seen = new Float64Array(counted.length);
    counted.forEach((u, i) => {
      const kept = before.get(u.name);
      if (kept !== undefined) return void (seen[i] = kept);
      const left = c.departed.get(u.name);
      c.departed.delete(u.name);
      seen[i] = left !== undefined && left <= u.transitions ? left : u.transitions;
      before.set(u.name, seen[i]!);
    });
    c.counted = counted;
    c.seen = seen;
    if (next.length === 0) this.counters.delete(chart);
  }

  protected compute(chart: SummaryChart, _failSeq: number): boolean {
    const c = this.counter(chart);
    let delta = c.pending;
    c.pending = 0;
    let changed: Unit[] | undefined;
    if (this.table.states !== this.seenStates) {
      for (let i = 0; i < c.counted.length; i++) {
        const u = c.counted[i]!;
        if (u.changedAt <= this.seenStates) continue;
        const d = u.transitions - c.seen[i]!;
        if (d <= 0) continue;
        c.seen[i] = u.transitions;
        delta += d;
        (changed ??= []).push(u);
      }
    }
    chart.values[0] = delta;
    c.windowSum += delta - c.window[c.next]!;
    c.window[c.next] = delta;
    c.next = (c.next + 1) % c.window.length;
    if (changed) chart.chart.setLabel(UNIT_TRANSITIONS_CHART.changedLabel, changedLabel(changed));
    else if (!chart.chart.hasLabel(UNIT_TRANSITIONS_CHART.changedLabel)) chart.chart.setLabel(UNIT_TRANSITIONS_CHART.changedLabel, 'none');
    chart.chart.setVariable(UNIT_TRANSITIONS_CHART.thresholdVariable, this.threshold);
    chart.chart.setVariable(UNIT_TRANSITIONS_CHART.windowVariable, c.windowSum);
    return true;
  }

  private counter(chart: SummaryChart): Counter {
    let c = this.counters.get(chart);
    if (!c) {
      const samples = Math.max(1, Math.ceil(UNIT_TRANSITIONS_CHART.windowSeconds / this.job.updateEvery));
      this.counters.set(chart, (c = { counted: [], seen: new Float64Array(0), departed: new Map(), pending: 0, window: new Array<number>(samples).fill(0), next: 0, windowSum: 0 }));
    }
    return c;
  }

  private isPerConnection(unit: Unit): boolean {
    return instanceGroupOf(unit) !== undefined;
  }
}

/** Units that changed state in the interval, those with most changes so far first. */
function changedLabel(changed: Unit[]): string {
  changed.sort((a, b) => b.transitions - a.transitions);
  const named = changed.slice(0, LABEL_MAX_UNITS).map((u) => dimensionName(u.name));
  const more = changed.length - LABEL_MAX_UNITS;
  return named.join('; ') + (more > 0 ? `; and ${more} more` : '');
}
