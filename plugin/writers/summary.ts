// One summary chart per unit type per job, with the fixed dimensions of its definition
// (charts/unit-summary.ts): which types have a chart, for counts.ts and transitions.ts, which only
// say what the values, labels and variables are. The chart's life is netdata/chart.ts's.

import { chartLine, type ChartDef, type DimensionDef } from '../../charts/shape.js';
import { kindValues, unitStateChartKind, type UnitStateChartKind } from '../../charts/unit-state.js';
import { Chart } from '../netdata/chart.js';
import type { ProtocolWriter } from '../netdata/protocol.js';
import type { Unit } from '../units/table.js';
import type { JobCharts } from './job-charts.js';

export interface SummaryChart {
  readonly kind: UnitStateChartKind;
  readonly chart: Chart;
  /** The job's units of this type, as of the latest re-selection. */
  units: readonly Unit[];
  /** This sample's values, in the definition's dimension order (kept: no garbage per tick). */
  readonly values: number[];
}

export abstract class SummaryCharts {
  protected readonly charts = new Map<string, SummaryChart>();

  constructor(
    private readonly def: ChartDef,
    protected readonly job: JobCharts,
    private readonly writer: ProtocolWriter,
  ) {
    this.lineOf = dimensionsById(def);
  }

  /** The definition's dimensions by id: every chart's DIMENSION lines. */
  private readonly lineOf: (key: string) => DimensionDef;

  /** The job's units per unit type, after a membership change. */
  reselect(wanted: ReadonlyMap<string, readonly Unit[]>): void {
    for (const [type, units] of wanted) {
      const chart = this.charts.get(type) ?? this.create(type);
      if (!chart) continue;
      this.changeUnits(chart, units);
      chart.units = units;
    }
    for (const [type, chart] of this.charts) {
      if (wanted.has(type)) continue;
      this.changeUnits(chart, []);
      chart.chart.obsolete();
      this.charts.delete(type);
    }
  }

  /** Writes one sample of every chart (the caller flushes). `failSeq`: the table's failure sequence at the previous sample. */
  sample(nowUs: number, failSeq: number): void {
    for (const s of this.charts.values()) {
      if (this.compute(s, failSeq)) {
        for (let i = 0; i < s.chart.size; i++) s.chart.setValue(i, s.values[i]!);
      }
      s.chart.sample(nowUs);
    }
  }

  /** Fills chart.values, and sets labels and variables, for this sample; false: the values are the previous sample's. */
  protected abstract compute(chart: SummaryChart, failSeq: number): boolean;

  /** The chart's units are about to change from chart.units to `next`. */
  protected changeUnits(_chart: SummaryChart, _next: readonly Unit[]): void {}

  private create(type: string): SummaryChart | undefined {
    const kind = unitStateChartKind(type);
    if (!kind) return undefined;
    const line = chartLine(this.def, kindValues(kind), { chartType: this.job.chartType, priority: kind.priority, updateEvery: this.job.updateEvery, contextPrefix: this.job.contextPrefix });
    const chart = new Chart(this.writer, line, this.lineOf, { variablesWithLabels: true });
    chart.setLabel('unit_type', kind.unitType);
    chart.setLabel('job', this.job.name);
    for (const d of this.def.dimensions) chart.addDimension(d.id, undefined);
    const s: SummaryChart = { kind, chart, units: [], values: this.def.dimensions.map(() => 0) };
    this.charts.set(type, s);
    return s;
  }
}

/** The DIMENSION line of each of a definition's fixed dimensions, by id. */
export function dimensionsById(def: { readonly dimensions: readonly DimensionDef[] }): (key: string) => DimensionDef {
  const byId = new Map(def.dimensions.map((d) => [d.id, d]));
  return (key) => byId.get(key)!;
}
