// One configured job's charts: which units it selects, and the batch its chart writers (unit
// states, units by state, transitions) write for each sample. Reads the unit table; writes only
// through the protocol writer. The sample loop calls it only while the model is in step with
// systemd (out of step, the agent shows a gap rather than stale values).

import type { JobConfig } from '../config/index.js';
import type { ProtocolWriter } from '../netdata/protocol.js';
import { unitStateChartKind } from '../../charts/unit-state.js';
import { UnitSelector } from '../units/selector.js';
import type { Unit, UnitTable } from '../units/table.js';
import { UnitCounts } from './counts.js';
import { UnitLoadStates } from './load-states.js';
import { UnitTransitions } from './transitions.js';
import { UnitRestarts } from './restarts.js';
import type { JobCharts } from './job-charts.js';
import { UnitStateCharts } from './unit-state.js';

export class Job {
  readonly chartType: string;
  private readonly selector: UnitSelector;
  private readonly states: UnitStateCharts;
  /** The per-type summary charts (units by state, state transitions, units by load state, restarts). */
  private readonly summaries: [UnitCounts, UnitTransitions, UnitLoadStates, UnitRestarts];
  private seenMembership = -1;
  /** The table's failure sequence at the previous sample: later entries failed in between. */
  private seenFailSeq: number;

  constructor(
    readonly config: JobConfig,
    private readonly table: UnitTable,
    writer: ProtocolWriter,
  ) {
    this.chartType = `systemdunits_${config.name}`;
    this.selector = new UnitSelector(config);
    this.seenFailSeq = table.sequence;
    const job: JobCharts = { name: config.name, chartType: this.chartType, updateEvery: config.updateEvery, aggregateInstances: config.aggregateInstances, contextPrefix: config.contextPrefix };
    this.states = new UnitStateCharts(job, table, writer);
    this.summaries = [
      new UnitCounts(job, table, writer),
      new UnitTransitions(job, table, writer, config.flappingThreshold),
      new UnitLoadStates(job, table, writer, (name) => this.selector.matchesName(name)),
      new UnitRestarts(job, table, writer, config.restartLoopThreshold, config.restartLoopWindow),
    ];
  }

  /** Units of interest to this job by name alone (for the systemd layer's filter). */
  matchesName(name: string): boolean {
    return this.selector.matchesName(name);
  }

  /** Whether the job charts this unit. */
  selects(unit: Unit): boolean {
    return this.selector.selects(unit);
  }

  /** Writes one sample of every chart into the writer (the caller flushes). */
  sample(nowUs: number): void {
    if (this.seenMembership !== this.table.membership) this.reselect();
    const failSeq = this.seenFailSeq;
    this.seenFailSeq = this.table.sequence;
    this.states.sample(nowUs, failSeq);
    for (const s of this.summaries) s.sample(nowUs, failSeq);
  }

  private reselect(): void {
    this.seenMembership = this.table.membership;
    const wanted = new Map<string, Unit[]>();
    for (const unit of this.table.units()) {
      if (!unitStateChartKind(unit.type) || !this.selector.selects(unit)) continue;
      let list = wanted.get(unit.type);
      if (!list) wanted.set(unit.type, (list = []));
      list.push(unit);
    }
    this.states.reselect(wanted);
    for (const s of this.summaries) s.reselect(wanted);
  }
}
