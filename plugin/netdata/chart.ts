// One chart's life on the protocol, for every chart writer: its definition (CHART, labels, chart
// variables, DIMENSIONs) sent before its first sample and again whenever its dimensions change, only
// CHART and labels when only a label changed; each sample's BEGIN (with the µs since the previous
// one), values, variables and END; dimensions retired (`DIMENSION … obsolete` with the next
// definition); the whole chart made obsolete. Writers say what the labels and values are; this says
// when and how they go out.

import type { ChartLine, DimensionLine, ProtocolWriter } from './protocol.js';
import { SetBlock, setLine, variableLine } from './protocol.js';

export interface ChartDimension {
  readonly key: string;
  /** Its id on the protocol (the line's). */
  readonly id: string;
  readonly line: DimensionLine;
  /** This sample's value (kept here rather than in a per-sample array: less garbage per tick). */
  value: number;
  /** Its line in the chart's SET block. */
  index: number;
}

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

/** `D`: the writer's dimensions, a ChartDimension with what it computes the value from. */
export class Chart<D extends ChartDimension = ChartDimension> {
  private readonly labels = new Map<string, string>();
  private readonly variables = new Map<string, number>();
  private readonly dims = new Map<string, D>();
  /** Dimensions retired since the definition was last sent. */
  private retired: D[] = [];
  /** The dimensions in the definition's order. */
  private order: D[] = [];
  /** Every SET line, rendered when the dimensions change and patched per sample (digit charts). */
  private block = NO_BLOCK;
  /** The definition (CHART, labels, DIMENSIONs) must be (re)sent before the next BEGIN. */
  private dirty = true;
  /** Only the labels changed: CHART and labels are enough, the agent keeps the dimensions. */
  private labelsDirty = false;
  /** Whether the agent holds this chart (not obsolete). */
  private live = false;
  private lastBeginUs: number | undefined;
  /**
   * A sample's lines after BEGIN (SET lines but a digit chart's block, variables, END), rendered
   * when a value or variable changed: most samples repeat the previous one's.
   */
  private tail: string | undefined;

  constructor(
    private readonly writer: ProtocolWriter,
    readonly line: ChartLine,
    private readonly options: ChartOptions = {},
  ) {}

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

  /** `extra`: the writer's own fields of the dimension (what its value is computed from). */
  addDimension(key: string, line: DimensionLine, extra: Omit<D, keyof ChartDimension>, value = 0): D {
    const dim = { key, id: line.id, line, value, index: -1, ...extra } as D;
    this.dims.set(key, dim);
    this.dirty = true;
    return dim;
  }

  /** Drops a dimension; the next definition marks it obsolete. */
  retireDimension(key: string): void {
    const dim = this.dims.get(key);
    if (!dim) return;
    this.dims.delete(key);
    this.retired.push(dim);
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
    w.begin(this.line.fullId, elapsed);
    if (this.options.digits) w.setBlock(this.block);
    w.rendered((this.tail ??= this.renderTail()));
  }

  private renderTail(): string {
    const lines: string[] = [];
    if (!this.options.digits) for (const dim of this.order) lines.push(setLine(dim.line.id, dim.value));
    for (const [name, value] of this.variables) lines.push(variableLine(name, value));
    lines.push('END');
    return lines.join('\n');
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
        for (const dim of this.retired) w.dimension(dim.line, true);
      }
      w.chart(this.line, true);
    }
    this.retired = [];
    this.order = [];
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
    this.order = [...this.dims.values()];
    this.order.forEach((dim, i) => {
      w.dimension(dim.line);
      dim.index = i;
    });
    if (this.options.digits) {
      this.block = new SetBlock(
        this.order.map((d) => d.line.id),
        this.order.map((d) => d.value),
      );
    }
    for (const dim of this.retired) w.dimension(dim.line, true);
    this.retired = [];
    this.live = true;
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
