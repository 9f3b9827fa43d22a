// The unit state charts of one job: one chart per unit type, one dimension per unit (or per
// Accept=yes instance group), the worst state of the interval as its value, and the failed units
// with systemd's reasons in labels for the alarm's text.

import { UNIT_STATE_CHART, kindValues, unitStateChartKind, type UnitStateChartKind } from '../../charts/unit-state.js';
import { chartLine } from '../../charts/shape.js';
import { Chart } from '../netdata/chart.js';
import { IdAllocator, type LiveIds } from '../netdata/ids.js';
import { crashText } from '../units/exits.js';
import { safeId, safeWord, type DimensionLine, type ProtocolWriter } from '../netdata/protocol.js';
import { instanceGroupOf } from '../units/instances.js';
import { unitDimensionId } from '../units/names.js';
import { StateValue } from '../units/states.js';
import type { Unit, UnitTable } from '../units/table.js';
import { aggregateValue } from './aggregate.js';
import { FailureText } from './failure-text.js';
import type { JobCharts } from './job-charts.js';
import { dimensionName, groupDimensionName } from './names.js';

/** How many failed units the chart label names before it says "and N more". */
const LABEL_MAX_UNITS = 10;
/** Netdata keeps label values up to 800 bytes; stay well below. */
const LABEL_MAX_CHARS = 600;

/**
 * The dimension of the per-connection instances of one Accept=yes template (aggregate_instances),
 * with their socket. Any other dimension's record is its unit itself: no object of its own (20,000
 * at 10,000 sockets and their services); its key is its unit's name, its id nearly always that too.
 */
class InstanceGroupDimension {
  constructor(
    /** Its key: the group's (`foo@*.service`). */
    readonly key: string,
    /** The latest of its instances (any one: the DIMENSION line reads the key only). */
    public unit: Unit,
    readonly members: Unit[],
    readonly socket: string,
  ) {}
}

type UnitDimension = Unit | InstanceGroupDimension;

interface StateChart {
  readonly chart: Chart<UnitDimension>;
  /** Ids this chart has handed out: one-to-one for every name systemd accepts. */
  readonly ids: IdAllocator;
  /** The dimensions (by key) whose id is not their key: names with odd characters, a few if any. */
  readonly otherIds: Map<string, string>;
  /** The alarm's words (failure_summary, failure_advice) and the failure episode behind them. */
  readonly failureText: FailureText;
  /** The latest sample's failed units, and what their label said of each (see labelInputs). */
  failed: Unit[];
  labelInputs: unknown[];
}

export class UnitStateCharts {
  private readonly charts = new Map<string, StateChart>();
  /** The table's versions at the previous sample: while none moves, no value can change. */
  private seenStates = -1;
  private seenFailSeq = -1;
  private seenMembership = -1;
  /** The previous sample saw a change: one more pass, as "failed during the interval" expires. */
  private changedLast = true;

  constructor(
    private readonly job: JobCharts,
    private readonly table: UnitTable,
    private readonly writer: ProtocolWriter,
  ) {}

  /** The job's units per unit type, after a membership change. */
  reselect(wanted: ReadonlyMap<string, Unit[]>): void {
    // Types without units too: an idle Accept=yes aggregate may keep their chart.
    for (const type of new Set([...wanted.keys(), ...this.charts.keys()])) {
      const units = wanted.get(type) ?? [];
      const state = this.charts.get(type) ?? this.newChart(unitStateChartKind(type)!);
      const { chart, ids, otherIds } = state;
      // Positions by key for this pass only (a map kept per dimension cost more than the records).
      const at = chart.indexByKey();
      const before = chart.size;
      const kept = new Uint8Array(before);
      const live = liveIdsOf(() => at, otherIds);
      for (const unit of units.sort((a, b) => (a.name < b.name ? -1 : 1))) {
        const group = this.job.aggregateInstances ? instanceGroupOf(unit) : undefined;
        const key = group ? group.key : unit.name;
        const i = at.get(key);
        if (i === undefined) {
          const id = ids.idFor(key, live);
          if (id !== key) otherIds.set(key, id);
          at.set(key, chart.addDimension(key, group ? new InstanceGroupDimension(key, unit, [unit], group.socket) : unit, StateValue.Inactive));
          continue;
        }
        const dim = chart.record(i);
        if (i >= before || kept[i]) {
          if (dim instanceof InstanceGroupDimension) dim.members.push(unit);
          continue;
        }
        kept[i] = 1;
        if (dim instanceof InstanceGroupDimension) {
          dim.unit = unit;
          dim.members.length = 0;
          dim.members.push(unit);
        } else chart.setRecord(i, unit);
      }
      // An aggregate without instances (no connection right now) stays while its socket is loaded.
      for (let i = 0; i < before; i++) {
        const dim = chart.record(i);
        if (!kept[i] && dim instanceof InstanceGroupDimension && this.table.get(dim.socket)) {
          dim.members.length = 0;
          kept[i] = 1;
        }
      }
      const retired: string[] = [];
      for (let i = 0; i < before; i++) {
        if (kept[i]) continue;
        const key = chart.key(i);
        retired.push(key);
        ids.retire(key, otherIds.get(key) ?? key);
      }
      if (retired.length > 0) chart.retireWhere((_key, _dim, i) => i < before && !kept[i]);
      for (const key of retired) otherIds.delete(key);
      ids.forgetRetired(liveIdsOf(() => chart.indexByKey(), otherIds)); // made only if asked
    }
  }

  /** Writes one sample of every chart. `failSeq`: the table's failure sequence at the previous sample. */
  sample(nowUs: number, failSeq: number): void {
    const t = this.table;
    const changed = t.states !== this.seenStates || t.sequence !== this.seenFailSeq || t.membership !== this.seenMembership;
    const revalue = changed || this.changedLast;
    this.changedLast = changed;
    this.seenStates = t.states;
    this.seenFailSeq = t.sequence;
    this.seenMembership = t.membership;
    for (const state of this.charts.values()) {
      const { chart } = state;
      if (!chart.active) continue;
      // No state change, no failure and no unit come or gone since the sample before the previous
      // one: every value, and the set of failed units, is the previous sample's (at 10,000 units
      // this loop was most of the plugin's steady work). Only the failed units' reasons may have
      // come since (the failure reporter writes them later).
      if (!revalue && sameLabelInputs(state.failed, state.labelInputs)) {
        chart.sample(nowUs);
        continue;
      }
      const failed: Unit[] = revalue ? [] : state.failed;
      if (revalue) this.revalue(chart, failSeq, failed);
      this.label(state, failed);
      chart.sample(nowUs);
    }
  }

  /** Sets every dimension's value for this sample; `failed` gets the units it reports failed. */
  private revalue(chart: Chart<UnitDimension>, failSeq: number, failed: Unit[]): void {
    const dims = chart.current();
    for (let i = 0; i < dims.length; i++) {
      const dim = dims[i]!;
      // Worst state of the interval: failed if it entered failed since the previous sample.
      let value: StateValue;
      if (dim instanceof InstanceGroupDimension) value = aggregateValue(dim.members, failSeq, failed);
      else {
        value = dim.failedSeq > failSeq ? StateValue.Failed : dim.value;
        if (value === StateValue.Failed) failed.push(dim);
      }
      chart.setValue(i, value);
    }
  }

  /** The labels and variable that name this sample's failed units. */
  private label(state: StateChart, failed: Unit[]): void {
    const { chart } = state;
    const labelValue = failedLabel(failed);
    const text = state.failureText.next(
      failed.map((u) => dimensionName(u.name)),
      labelValue,
    );
    chart.setLabel(UNIT_STATE_CHART.failedLabel, labelValue);
    chart.setLabel(UNIT_STATE_CHART.summaryLabel, text.summary);
    chart.setLabel(UNIT_STATE_CHART.adviceLabel, text.advice);
    chart.setVariable(UNIT_STATE_CHART.failedVariable, failed.length);
    state.failed = failed;
    state.labelInputs = labelInputs(failed);
  }

  private newChart(kind: UnitStateChartKind): StateChart {
    const line = chartLine(UNIT_STATE_CHART, kindValues(kind), { chartType: this.job.chartType, priority: kind.priority, updateEvery: this.job.updateEvery, contextPrefix: this.job.contextPrefix });
    const otherIds = new Map<string, string>();
    const chart = new Chart<UnitDimension>(this.writer, line, (key, dim) => unitDimensionLine(key, dim, otherIds), { digits: true, keyOf: keyOfDimension });
    chart.setLabel('unit_type', kind.unitType);
    chart.setLabel('job', this.job.name);
    const state: StateChart = { chart, ids: new IdAllocator(unitDimensionIdOf), otherIds, failureText: new FailureText(), failed: [], labelInputs: [] };
    this.charts.set(kind.unitType, state);
    return state;
  }
}

/** A dimension's key: its unit's name, or its instance group's. */
function keyOfDimension(dim: UnitDimension): string {
  return dim instanceof InstanceGroupDimension ? dim.key : dim.name;
}

/** A unit's DIMENSION line: its name (or its instance group's) made readable when the definition is written. */
function unitDimensionLine(key: string, dim: UnitDimension, otherIds: ReadonlyMap<string, string>): DimensionLine {
  const name = dim instanceof InstanceGroupDimension ? groupDimensionName(key) : dimensionName(key);
  return { id: otherIds.get(key) ?? key, name, algorithm: UNIT_STATE_CHART.dimensionAlgorithm };
}

/**
 * A unit's dimension id: safe for the protocol and the agent's JSON, stable across restarts (it
 * derives from the name alone, see unitDimensionId). One-to-one for every name systemd accepts;
 * only names it would refuse can clean up alike (the allocator then adds a hash).
 */
export function unitDimensionIdOf(unitName: string): string {
  // The name itself, not a copy, when it has nothing to clean: 20,000 ids cost no string then.
  return safeId(unitName.includes('\\') ? unitDimensionId(unitName) : unitName);
}

/** What failedLabel reads of each unit besides its name, which may change without a state change. */
function labelInputs(failed: readonly Unit[]): unknown[] {
  const inputs: unknown[] = [];
  for (const u of failed) inputs.push(u.failedResult, u.result, u.failedExit, u.triggered);
  return inputs;
}

function sameLabelInputs(failed: readonly Unit[], inputs: readonly unknown[]): boolean {
  let k = 0;
  for (const u of failed) {
    if (u.failedResult !== inputs[k] || u.result !== inputs[k + 1] || u.failedExit !== inputs[k + 2] || u.triggered !== inputs[k + 3]) return false;
    k += 4;
  }
  return true;
}

/** The label value naming failed units and systemd's reason, e.g. `a.socket (exit-code); b.socket (resources)`. */
export function failedLabel(failed: readonly Unit[]): string {
  if (failed.length === 0) return 'none';
  let text = '';
  let shown = 0;
  for (const u of failed) {
    const result = u.failedResult ?? u.result;
    const why = [result && result !== 'success' ? (u.failedExit ? crashText(result, u.failedExit, ' ') : result) : undefined, u.triggered].filter((x) => x !== undefined);
    const item = `${dimensionName(u.name)}${why.length ? ` (${safeWord(why.join(' / '))})` : ''}`;
    if (shown === LABEL_MAX_UNITS || (shown > 0 && text.length + item.length + 2 > LABEL_MAX_CHARS)) break;
    text += (shown++ ? '; ' : '') + item;
  }
  const more = failed.length - shown;
  return text + (more > 0 ? `; and ${more} more` : '');
}

/** The ids of a chart's dimensions, by key, for the id allocator; `positions` is called at the first question. */
function liveIdsOf(positions: () => ReadonlyMap<string, number>, otherIds: ReadonlyMap<string, string>): LiveIds {
  let at: ReadonlyMap<string, number> | undefined;
  return { get: (key) => ((at ??= positions()).has(key) ? { id: otherIds.get(key) ?? key } : undefined) };
}
