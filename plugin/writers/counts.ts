// Units by state, per unit type per job: "3 sockets failed" at a glance (charts/unit-summary.ts).

import { UNIT_COUNTS_CHART } from '../../charts/unit-summary.js';
import type { ProtocolWriter } from '../netdata/protocol.js';
import { StateValue } from '../units/states.js';
import type { Unit, UnitTable } from '../units/table.js';
import { failedLabel } from './unit-state.js';
import { SummaryCharts, type SummaryChart } from './summary.js';
import type { JobCharts } from './job-charts.js';

/** The dimension of each state value 1..5 (the definition orders them for their colours). */
const STATE_IDS = ['active', 'inactive', 'activating', 'deactivating', 'failed'] as const;
const DIMENSION_OF: readonly number[] = [-1, ...STATE_IDS.map((id) => UNIT_COUNTS_CHART.dimensions.findIndex((d) => d.id === id))];
if (DIMENSION_OF.slice(1).some((i) => i < 0)) throw new Error('UNIT_COUNTS_CHART lacks a state dimension');

export class UnitCounts extends SummaryCharts {
  /** Table versions the counts were last computed at: idle ticks reuse them. */
  private seenStates = -1;
  private seenFailSeq = -1;
  private seenMembership = -1;
  /** The previous tick recounted: recount once more, as "failed during the interval" has expired. */
  private recountedLast = false;

  constructor(job: JobCharts, private readonly table: UnitTable, writer: ProtocolWriter) {
    super(UNIT_COUNTS_CHART, job, writer);
  }

  override sample(nowUs: number, failSeq: number): void {
    const changed =
      this.table.states !== this.seenStates || this.table.sequence !== this.seenFailSeq || this.table.membership !== this.seenMembership;
    this.recount = changed || this.recountedLast;
    this.recountedLast = changed;
    this.seenStates = this.table.states;
    this.seenFailSeq = this.table.sequence;
    this.seenMembership = this.table.membership;
    super.sample(nowUs, failSeq);
  }

  private recount = true;

  protected compute(chart: SummaryChart, failSeq: number): boolean {
    if (!this.recount && chart.chart.held) return false;
    const v = chart.values;
    v.fill(0);
    let fresh: Unit[] | undefined;
    for (const unit of chart.units) {
      // As on the state chart: failed if it entered failed since the previous sample.
      const entered = unit.failedSeq > failSeq;
      const value = entered ? StateValue.Failed : unit.value;
      const i = DIMENSION_OF[value]!;
      v[i] = v[i]! + 1;
      // Not in the sample that defines the chart: units failed before the plugin started (or before
      // the type had a chart) are not news, and a plugin restart must not re-announce them.
      if (entered && chart.chart.held) (fresh ??= []).push(unit);
    }
    // The label changes only with a new batch: a label change re-sends the chart's definition.
    if (fresh) chart.chart.setLabel(UNIT_COUNTS_CHART.newFailedLabel, failedLabel(fresh));
    else if (!chart.chart.hasLabel(UNIT_COUNTS_CHART.newFailedLabel)) chart.chart.setLabel(UNIT_COUNTS_CHART.newFailedLabel, 'none');
    chart.chart.setVariable(UNIT_COUNTS_CHART.newFailuresVariable, fresh?.length ?? 0);
    return true;
  }
}
