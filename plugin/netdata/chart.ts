// One chart's life on the protocol, for every chart writer: its definition (CHART, labels, chart
// variables, DIMENSIONs) sent before its first sample and again whenever its dimensions change, only
// CHART and labels when only a label changed; each sample's BEGIN (with the µs since the previous
// one), values, variables and END; dimensions retired (`DIMENSION … obsolete` with the next
// definition); the whole chart made obsolete. Writers say what the labels and values are; this says
// when and how they go out.

import type { ChartLine, DimensionLine, ProtocolWriter } from './protocol.js';
import { SetBlock, beginWords, setLine, variableLine } from './protocol.js';

/**
 * One dimension's record: the chart's part of it (a writer's record adds what its value is computed
 * from). Its key, id and name are not kept here: the chart's map holds the key, and the writer's
 * `lineOf` derives the DIMENSION line when a definition is written. Thousands of these live for as
 * long as the plugin runs: keep them small and of one shape.
 */
export interface ChartDimension {
  /** This sample's value (kept here rather than in a per-sample array: less garbage per tick). */
  value: number;
  /** Its line in the chart's SET block (-1 until the chart is defined with it). */
  index: number;
}

/** A dimension record of a chart with fixed dimensions. */
export function chartDimension(value = 0): ChartDimension {
  return { value, index: -1 };
}

/** The DIMENSION line of the dimension `key` (its id, name and algorithm). */
export type DimensionLineOf<D extends ChartDimension> = (key: string, dim: D) => DimensionLine;

export interface ChartOptions {
  /**
   * Values are single digits (unit states 1..5): the SET lines are rendered once per definition and
   * patched in place per sample (at 10,000 dimensions that is most of the plugin's steady work).
   */
  readonly digits?: boolean;
  /** Chart variables go out with the labels too, not only with each sample (an alarm reads them at once). */
  readonly variablesWithLabels?: boolean;
}

const NO_BLOCK = new SetBlock([], []);

/** `D`: the writer's dimension records, a ChartDimension with what it computes the value from. */
export class Chart<D extends ChartDimension = ChartDimension> {
  private readonly labels = new Map<string, string>();
  private readonly variables = new Map<string, number>();
  private readonly dims = new Map<string, D>();
  /** Dimensions retired since the definition was last sent, with their keys. */
  private retired: [string, D][] = [];
  /** The dimensions in the definition's order. */
  private order: D[] = [];
  /** The ids of the dimensions in `order`, for charts without a block. */
  private ids: string[] = [];
  /** Every SET line, rendered when the dimensions change and patched per sample (digit charts). */
  private block = NO_BLOCK;
  /** The definition (CHART, labels, DIMENSIONs) must be (re)sent before the next BEGIN. */
  private dirty = true;
  /** Only the labels changed: CHART and labels are enough, the agent keeps the dimensions. */
  private labelsDirty = false;
  /** Whether the agent holds this chart (not obsolete). */
  private live = false;
  private lastBeginUs: number | undefined;
  /** `BEGIN <id>`, rendered once. */
  private readonly beginWords: string;
  /**
   * A sample's lines after BEGIN (SET lines but a digit chart's block, variables, END), rendered
   * when a value or variable changed: most samples repeat the previous one's.
   */
  private tail: string | undefined;

  constructor(
    private readonly writer: ProtocolWriter,
    readonly line: ChartLine,
    private readonly lineOf: DimensionLineOf<D>,
    private readonly options: ChartOptions = {},
  ) {
    this.beginWords = beginWords(line.fullId);
  }

  /** Whether the next sample writes anything: the agent holds the chart, or it is to be defined. */
  get active(): boolean {
    return this.live || this.dirty;
  }

  /** Whether the agent holds this chart now (defined, not obsolete). */
  get held(): boolean {
    return this.live;
  }

  /** The current dimensions, in the order values are written (don't keep the array). */
  current(): readonly D[] {
    return this.dirty ? [...this.dims.values()] : this.order;
  }

  /** The current dimensions by key. */
  dimensions(): ReadonlyMap<string, D> {
    return this.dims;
  }

  dimension(key: string): D | undefined {
    return this.dims.get(key);
  }

  /** Adds the writer's record of a new dimension (its value is the record's). */
  addDimension(key: string, dim: D): D {
    this.dims.set(key, dim);
    this.dirty = true;
    return dim;
  }

  /** Drops a dimension; the next definition marks it obsolete. */
  retireDimension(key: string): void {
    const dim = this.dims.get(key);
    if (!dim) return;
    this.dims.delete(key);
    this.retired.push([key, dim]);
    this.dirty = true;
  }

  setValue(dim: D, value: number): void {
    if (value === dim.value) return;
    dim.value = value;
    if (!this.options.digits) this.tail = undefined;
    else if (!this.dirty) this.block.set(dim.index, value); // else define() renders it anew
  }

  /** A label; labels go out in the order first set. A changed value re-sends CHART and labels. */
  setLabel(name: string, value: string): void {
    if (this.labels.get(name) === value) return;
    this.labels.set(name, value);
    this.labelsDirty = true;
  }

  hasLabel(name: string): boolean {
    return this.labels.has(name);
  }

  /** A chart variable, written with every sample; variables go out in the order first set. */
  setVariable(name: string, value: number): void {
    if (this.variables.get(name) === value) return;
    this.variables.set(name, value);
    this.tail = undefined;
  }

  /**
   * Writes one sample (the caller flushes): the definition first if it changed (a chart left
   * without dimensions is made obsolete instead), then BEGIN, values, variables, END.
   */
  sample(nowUs: number): void {
    if (this.dirty) this.define();
    else if (this.labelsDirty && this.live) this.writeChartAndLabels();
    if (!this.live) return;
    const w = this.writer;
    const elapsed = this.lastBeginUs === undefined ? undefined : nowUs - this.lastBeginUs;
    this.lastBeginUs = nowUs;
    w.beginRendered(this.beginWords, elapsed);
    if (this.options.digits) w.setBlock(this.block);
    w.ascii((this.tail ??= this.renderTail()));
  }

  private renderTail(): string {
    let text = '';
    if (!this.options.digits) this.order.forEach((dim, i) => (text += setLine(this.ids[i]!, dim.value) + '\n'));
    for (const [name, value] of this.variables) text += variableLine(name, value) + '\n';
    return text + 'END\n';
  }

  /**
   * Makes the chart obsolete on the agent (with the dimensions retired since the last definition).
   * Dimensions added later bring it back with a new definition.
   */
  obsolete(): void {
    const w = this.writer;
    if (this.live) {
      if (this.retired.length > 0) {
        w.chart(this.line);
        this.writeRetired();
      }
      w.chart(this.line, true);
    }
    this.retired = [];
    this.order = [];
    this.ids = [];
    this.block = NO_BLOCK;
    this.tail = undefined;
    this.live = false;
    this.lastBeginUs = undefined;
  }

  private define(): void {
    this.dirty = false;
    this.tail = undefined;
    if (this.dims.size === 0) return this.obsolete();
    const w = this.writer;
    this.writeChartAndLabels();
    const order: D[] = [];
    const ids: string[] = [];
    for (const [key, dim] of this.dims) {
      const line = this.lineOf(key, dim);
      w.dimension(line);
      dim.index = order.length;
      order.push(dim);
      ids.push(line.id);
    }
    this.order = order;
    // A digit chart's ids live in its block only; the few of other charts in `ids`.
    if (this.options.digits) this.block = new SetBlock(ids, order.map((d) => d.value));
    else this.ids = ids;
    this.writeRetired();
    this.retired = [];
    this.live = true;
  }

  private writeRetired(): void {
    for (const [key, dim] of this.retired) this.writer.dimension(this.lineOf(key, dim), true);
  }

  private writeChartAndLabels(): void {
    this.labelsDirty = false;
    const w = this.writer;
    w.chart(this.line);
    for (const [name, value] of this.labels) w.label(name, value);
    w.commitLabels();
    if (this.options.variablesWithLabels) this.writeVariables();
  }

  private writeVariables(): void {
    for (const [name, value] of this.variables) this.writer.chartVariable(name, value);
  }
}
