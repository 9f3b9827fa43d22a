// One summary chart per unit type per job, with a fixed set of dimensions (see charts/unit-summary.ts):
// the chart's life (define, sample, retire when the type has no units left) for counts.ts and
// transitions.ts, which only say what the values and labels are.

import { fill, unitStateChartKind, type UnitStateChartKind } from '../../charts/unit-state.js';
import type { SummaryChartDef } from '../../charts/unit-summary.js';
import type { JobConfig } from '../config.js';
import type { ChartLine, ProtocolWriter } from '../netdata/protocol.js';
import type { Unit } from '../units/table.js';

export interface SummaryChart {
  readonly kind: UnitStateChartKind;
  readonly line: ChartLine;
  /** The job's units of this type, as of the latest re-selection. */
  units: readonly Unit[];
  /** This sample's values, in the definition's dimension order (kept: no garbage per tick). */
  readonly values: number[];
  /** Extra chart labels (name → value); a change re-sends CHART and labels. */
  readonly labels: Map<string, string>;
  labelsDirty: boolean;
  /** The agent holds the chart. */
  live: boolean;
  lastBeginUs: number | undefined;
}

export abstract class SummaryCharts {
  protected readonly charts = new Map<string, SummaryChart>();

  constructor(
    private readonly def: SummaryChartDef,
    protected readonly config: JobConfig,
    private readonly writer: ProtocolWriter,
    private readonly chartType: string,
  ) {}

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
      if (chart.live) this.writer.chart(chart.line, true);
      this.charts.delete(type);
    }
  }

  /** Writes one sample of every chart (the caller flushes). `failSeq`: the table's failure sequence at the previous sample. */
  sample(nowUs: number, failSeq: number): void {
    for (const chart of this.charts.values()) {
      this.compute(chart, failSeq);
      const w = this.writer;
      if (!chart.live) {
        this.writeChartAndLabels(chart);
        for (const d of this.def.dimensions) w.dimension({ id: d.id, name: d.name, algorithm: this.def.dimensionAlgorithm });
        chart.live = true;
      } else if (chart.labelsDirty) this.writeChartAndLabels(chart);
      const elapsed = chart.lastBeginUs === undefined ? undefined : nowUs - chart.lastBeginUs;
      chart.lastBeginUs = nowUs;
      w.begin(chart.line.fullId, elapsed);
      for (let i = 0; i < this.def.dimensions.length; i++) w.set(this.def.dimensions[i]!.id, chart.values[i]!);
      this.variables(chart);
      w.end();
    }
  }

  /** Fills chart.values (and labels) for this sample. */
  protected abstract compute(chart: SummaryChart, failSeq: number): void;

  /** The chart's units are about to change from chart.units to `next`. */
  protected changeUnits(_chart: SummaryChart, _next: readonly Unit[]): void {}

  /** Chart variables to set in each batch. */
  protected variables(_chart: SummaryChart): void {}

  protected setLabel(chart: SummaryChart, name: string, value: string): void {
    if (chart.labels.get(name) === value) return;
    chart.labels.set(name, value);
    chart.labelsDirty = true;
  }

  protected chartVariable(name: string, value: number): void {
    this.writer.chartVariable(name, value);
  }

  private create(type: string): SummaryChart | undefined {
    const kind = unitStateChartKind(type);
    if (!kind) return undefined;
    const chart: SummaryChart = {
      kind,
      line: {
        fullId: `${this.chartType}.${fill(this.def.id, kind)}`,
        title: fill(this.def.title, kind),
        units: this.def.units,
        family: fill(this.def.family, kind),
        context: fill(this.def.context, kind),
        chartType: this.def.chartType,
        priority: kind.priority + this.def.priorityOffset,
        updateEvery: this.config.updateEvery,
        plugin: this.def.plugin,
        module: this.def.module,
      },
      units: [],
      values: this.def.dimensions.map(() => 0),
      labels: new Map(),
      labelsDirty: false,
      live: false,
      lastBeginUs: undefined,
    };
    this.charts.set(type, chart);
    return chart;
  }

  private writeChartAndLabels(chart: SummaryChart): void {
    chart.labelsDirty = false;
    this.writer.chart(chart.line);
    this.writer.label('unit_type', chart.kind.unitType);
    this.writer.label('job', this.config.name);
    for (const [name, value] of chart.labels) this.writer.label(name, value);
    this.writer.commitLabels();
    this.variables(chart);
  }
}
