// One configured job: which units it selects, which charts it owns, and the batch it writes for
// each sample. Reads the unit table; writes only through the protocol writer.

import { UNIT_STATE_CHART, fill, unitStateChartKind, type UnitStateChartKind } from '../../charts/unit-state.js';
import type { ChartLine, DimensionLine, ProtocolWriter } from '../netdata/protocol.js';
import { SetBlock, safeId, safeWord } from '../netdata/protocol.js';
import { nameHash, readableUnitName, unitDimensionId } from '../units/names.js';
import { StateValue } from '../units/states.js';
import type { Unit, UnitTable } from '../units/table.js';
import type { SystemdLink } from '../systemd/link.js';
import { UnitSelector } from './selector.js';
import type { JobConfig } from '../config.js';
import { instanceGroupOf } from '../units/instances.js';
import { UnitCounts } from './counts.js';
import { aggregateValue } from './instances.js';
import type { SummaryCharts } from './summary.js';
import { UnitTransitions } from './transitions.js';
import { FailureText, type FailureLabels } from './failure-text.js';

/** How many failed units the chart label names before it says "and N more". */
const LABEL_MAX_UNITS = 10;
/** Netdata keeps label values up to 800 bytes; stay well below. */
const LABEL_MAX_CHARS = 600;

/** How many ids of retired dimensions a chart remembers (so a returning id goes to its old owner). */
export const RETIRED_IDS_KEPT = 1000;

interface Dimension {
  readonly id: string;
  readonly name: string;
  unit: Unit;
  /** Per-connection instances aggregated into this one dimension (aggregate_instances), with their socket. */
  readonly members?: Unit[];
  readonly socket?: string;
  /** This sample's value (kept here rather than in a per-sample array: less garbage per tick). */
  value: StateValue;
  /** Its line in the chart's SET block. */
  index: number;
}

interface ChartState {
  readonly kind: UnitStateChartKind;
  readonly line: ChartLine;
  /** Current dimensions by unit name. */
  readonly dims: Map<string, Dimension>;
  /** Ids this chart has handed out, and to which unit name: live ones and the latest retired. */
  readonly idOwners: Map<string, string>;
  /** Dimensions retired since the definition was last sent. */
  retired: Dimension[];
  /** Every SET line, rendered when the dimensions change and patched per sample. */
  block: SetBlock;
  /** The dimensions in the block's order. */
  order: Dimension[];
  /** The definition (CHART, labels, DIMENSIONs) must be (re)sent before the next BEGIN. */
  dirty: boolean;
  /** Only the labels changed: CHART and labels are enough, the agent keeps the dimensions. */
  labelsDirty: boolean;
  /** Whether the agent holds this chart (not obsolete). */
  live: boolean;
  labelValue: string;
  /** The alarm's words (failure_summary, failure_advice) and the failure episode behind them. */
  readonly failureText: FailureText;
  failureLabels: FailureLabels;
  lastBeginUs: number | undefined;
}

export class Job {
  readonly chartType: string;
  private readonly selector: UnitSelector;
  private readonly charts = new Map<string, ChartState>();
  private seenMembership = -1;
  /** The table's failure sequence at the previous sample: later entries failed in between. */
  private seenFailSeq: number;
  /** The per-type summary charts (units by state, state transitions). */
  private readonly summaries: SummaryCharts[];

  constructor(
    readonly config: JobConfig,
    private readonly table: UnitTable,
    private readonly writer: ProtocolWriter,
    /** Whether the table is in step with systemd (default: always, for a table filled by hand). */
    private readonly link: Pick<SystemdLink, 'inStep'> = { inStep: true },
  ) {
    this.chartType = `systemdunits_${config.name}`;
    this.selector = new UnitSelector(config);
    this.seenFailSeq = table.sequence;
    this.summaries = [new UnitCounts(config, table, writer, this.chartType), new UnitTransitions(config, table, writer, this.chartType)];
  }

  /** Units of interest to this job by name alone (for the systemd layer's filter). */
  matchesName(name: string): boolean {
    return this.selector.matchesName(name);
  }

  /**
   * Writes one sample of every chart into the writer (the caller flushes). Writes nothing while
   * the table is out of sync with systemd: the agent shows a gap rather than stale values.
   */
  sample(nowUs: number): void {
    if (!this.link.inStep) return;
    if (this.seenMembership !== this.table.membership) this.reselect();
    const failSeq = this.seenFailSeq;
    this.seenFailSeq = this.table.sequence;
    for (const chart of this.charts.values()) {
      if (!chart.live && !chart.dirty) continue;
      const failed: Unit[] = [];
      const dims = chart.dirty ? [...chart.dims.values()] : chart.order;
      for (let i = 0; i < dims.length; i++) {
        const dim = dims[i]!;
        // Worst state of the interval: failed if it entered failed since the previous sample.
        let value: StateValue;
        if (dim.members) value = aggregateValue(dim.members, failSeq, failed);
        else {
          value = dim.unit.failedSeq > failSeq ? StateValue.Failed : dim.unit.value;
          if (value === StateValue.Failed) failed.push(dim.unit);
        }
        if (value === dim.value) continue;
        dim.value = value;
        if (!chart.dirty) chart.block.set(dim.index, value); // else define() renders it anew
      }
      const labelValue = failedLabel(failed);
      const text = chart.failureText.next(
        failed.map((u) => dimensionName(u.name)),
        labelValue,
      );
      if (labelValue !== chart.labelValue || text.summary !== chart.failureLabels.summary || text.advice !== chart.failureLabels.advice) {
        chart.labelValue = labelValue;
        chart.failureLabels = text;
        chart.labelsDirty = true;
      }
      if (chart.dirty) this.define(chart);
      else if (chart.labelsDirty && chart.live) this.writeChartAndLabels(chart);
      if (!chart.live) continue;
      const elapsed = chart.lastBeginUs === undefined ? undefined : nowUs - chart.lastBeginUs;
      chart.lastBeginUs = nowUs;
      this.writer.begin(chart.line.fullId, elapsed);
      this.writer.setBlock(chart.block);
      this.writer.chartVariable(UNIT_STATE_CHART.failedVariable, failed.length);
      this.writer.end();
    }
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
    // Types without units too: an idle Accept=yes aggregate may keep their chart.
    for (const type of new Set([...wanted.keys(), ...this.charts.keys()])) {
      const units = wanted.get(type) ?? [];
      const chart = this.charts.get(type) ?? this.newChart(unitStateChartKind(type)!);
      const keep = new Set<string>();
      for (const unit of units.sort((a, b) => (a.name < b.name ? -1 : 1))) {
        const group = this.config.aggregateInstances ? instanceGroupOf(unit) : undefined;
        const key = group ? group.key : unit.name;
        let dim = chart.dims.get(key);
        if (!keep.has(key)) {
          keep.add(key);
          if (dim) dim.unit = unit;
          if (dim?.members) dim.members.length = 0;
        }
        if (!dim) {
          dim = { id: dimensionId(key, chart.idOwners), name: group ? groupDimensionName(key) : dimensionName(key), unit, value: StateValue.Inactive, index: -1, ...(group ? { members: [], socket: group.socket } : {}) };
          chart.dims.set(key, dim);
          chart.dirty = true;
        }
        dim.members?.push(unit);
      }
      // An aggregate without instances (no connection right now) stays while its socket is loaded.
      for (const [key, dim] of chart.dims) {
        if (dim.members && !keep.has(key) && dim.socket && this.table.get(dim.socket)) {
          dim.members.length = 0;
          keep.add(key);
        }
      }
      this.retireMissing(chart, keep);
    }
    for (const s of this.summaries) s.reselect(wanted);
  }

  private retireMissing(chart: ChartState, keep: Set<string>): void {
    for (const [name, dim] of chart.dims) {
      if (keep.has(name)) continue;
      chart.dims.delete(name);
      chart.retired.push(dim);
      chart.dirty = true;
    }
    forgetRetiredIds(chart.idOwners, chart.dims);
  }

  private newChart(kind: UnitStateChartKind): ChartState {
    const chart: ChartState = {
      kind,
      line: {
        fullId: `${this.chartType}.${fill(UNIT_STATE_CHART.id, kind)}`,
        title: fill(UNIT_STATE_CHART.title, kind),
        units: UNIT_STATE_CHART.units,
        family: fill(UNIT_STATE_CHART.family, kind),
        context: fill(UNIT_STATE_CHART.context, kind),
        chartType: UNIT_STATE_CHART.chartType,
        priority: kind.priority,
        updateEvery: this.config.updateEvery,
        plugin: UNIT_STATE_CHART.plugin,
        module: UNIT_STATE_CHART.module,
      },
      dims: new Map(),
      idOwners: new Map(),
      retired: [],
      block: new SetBlock([], []),
      order: [],
      dirty: true,
      labelsDirty: false,
      live: false,
      labelValue: failedLabel([]),
      failureText: new FailureText(),
      failureLabels: new FailureText().next([], ''),
      lastBeginUs: undefined,
    };
    this.charts.set(kind.unitType, chart);
    return chart;
  }

  /** (Re)sends the chart definition; a chart left without units is retired instead. */
  private define(chart: ChartState): void {
    chart.dirty = false;
    const w = this.writer;
    if (chart.dims.size === 0) {
      if (chart.live) {
        w.chart(chart.line);
        for (const dim of chart.retired) w.dimension(dimensionLine(dim), true);
        w.chart(chart.line, true);
      }
      chart.retired = [];
      chart.order = [];
      chart.block = new SetBlock([], []);
      chart.live = false;
      chart.lastBeginUs = undefined;
      return;
    }
    this.writeChartAndLabels(chart);
    chart.order = [...chart.dims.values()];
    chart.order.forEach((dim, i) => {
      w.dimension(dimensionLine(dim));
      dim.index = i;
    });
    chart.block = new SetBlock(
      chart.order.map((d) => d.id),
      chart.order.map((d) => d.value),
    );
    for (const dim of chart.retired) w.dimension(dimensionLine(dim), true);
    chart.retired = [];
    chart.live = true;
  }

  private writeChartAndLabels(chart: ChartState): void {
    chart.labelsDirty = false;
    this.writer.chart(chart.line);
    this.writer.label('unit_type', chart.kind.unitType);
    this.writer.label('job', this.config.name);
    this.writer.label(UNIT_STATE_CHART.failedLabel, chart.labelValue);
    this.writer.label(UNIT_STATE_CHART.summaryLabel, chart.failureLabels.summary);
    this.writer.label(UNIT_STATE_CHART.adviceLabel, chart.failureLabels.advice);
    this.writer.commitLabels();
  }
}

function dimensionLine(dim: Dimension): DimensionLine {
  return { id: dim.id, name: dim.name, algorithm: UNIT_STATE_CHART.dimensionAlgorithm };
}

/** The label value naming failed units and systemd's reason, e.g. `a.socket (exit-code); b.socket (resources)`. */
export function failedLabel(failed: readonly Unit[]): string {
  if (failed.length === 0) return 'none';
  let text = '';
  let shown = 0;
  for (const u of failed) {
    const result = u.failedResult ?? u.result;
    const why = [result && result !== 'success' ? result : undefined, u.triggered].filter((x) => x !== undefined);
    const item = `${dimensionName(u.name)}${why.length ? ` (${safeWord(why.join(' / '))})` : ''}`;
    if (shown === LABEL_MAX_UNITS || (shown > 0 && text.length + item.length + 2 > LABEL_MAX_CHARS)) break;
    text += (shown++ ? '; ' : '') + item;
  }
  const more = failed.length - shown;
  return text + (more > 0 ? `; and ${more} more` : '');
}

/** The readable unit name (see readableUnitName: unique per unit), with nothing the agent cannot carry. */
export function dimensionName(unitName: string): string {
  return safeWord(readableUnitName(unitName));
}

/**
 * The name of a per-connection group's dimension (`foo@*.service`): the parts rendered as unit
 * names, the `*` kept (a unit's own name shows a `*` as `/[2a]`, so the two never meet).
 */
export function groupDimensionName(key: string): string {
  return key.split('*').map(dimensionName).join('*');
}

/**
 * A dimension id that is safe for the protocol and the agent's JSON, stable across restarts (it
 * derives from the name alone, see unitDimensionId) and unique within the chart. Only names systemd
 * would refuse can clean up to the same id; the later one then gets a short hash of its name.
 */
export function dimensionId(unitName: string, idOwners: Map<string, string>): string {
  // One-to-one for every name systemd accepts; the hash only guards names it would refuse.
  let id = safeId(unitDimensionId(unitName));
  const owner = idOwners.get(id);
  if (owner !== undefined && owner !== unitName) id = `${id}_${nameHash(unitName)}`;
  idOwners.set(id, unitName);
  return id;
}

/**
 * Forgets the oldest ids of retired dimensions beyond RETIRED_IDS_KEPT. Units named anew each time
 * (Accept=yes instances, transient units) would otherwise grow the map for as long as the plugin runs.
 */
export function forgetRetiredIds(idOwners: Map<string, string>, live: ReadonlyMap<string, { readonly id: string }>, kept = RETIRED_IDS_KEPT): void {
  let excess = idOwners.size - live.size - kept;
  if (excess <= 0) return;
  for (const [id, owner] of idOwners) {
    if (live.get(owner)?.id === id) continue;
    idOwners.delete(id);
    if (--excess === 0) return;
  }
}
