// One chart's life on the protocol, for every chart writer: its definition (CHART, labels, chart
// variables, DIMENSIONs) sent before its first sample and again whenever its dimensions change, only
// CHART and labels when only a label changed; each sample's BEGIN (with the µs since the previous
// one), values, variables and END; dimensions retired (`DIMENSION … obsolete` with the next
// definition); the whole chart made obsolete. Writers say what the labels and values are; this says
// when and how they go out.

import type { ChartLine, DimensionLine, ProtocolWriter } from './protocol.js';
import { SetBlock, beginWords, setLine, variableLine } from './protocol.js';

/**
 * The DIMENSION line of the dimension `key`, with the writer's record of it (its id, name and
 * algorithm). Called when a definition is written, and when a dimension is retired.
 */
export type DimensionLineOf<D> = (key: string, rec: D) => DimensionLine;

export interface ChartOptions {
  /**
   * Values are single digits (unit states 1..5): the SET lines are rendered once per definition and
   * patched in place per sample (at 10,000 dimensions that is most of the plugin's steady work).
   */
  readonly digits?: boolean;
  /** Chart variables go out with the labels too, not only with each sample (an alarm reads them at once). */
  readonly variablesWithLabels?: boolean;
  /** A dimension's key from its record, for records that know it: the chart then keeps no keys. */
  readonly keyOf?: (rec: never) => string;
}

const NO_BLOCK = new SetBlock([], []);

/**
 * `D`: the writer's record of each dimension, what it computes the value from (nothing for fixed
 * dimensions). A dimension is its position in the chart: thousands live for as long as the plugin
 * runs, so the chart keeps them in parallel arrays (key, record, value), not one object and one map
 * entry each; a digit chart's values live in its SET block only.
 */
export class Chart<D = undefined> {
  private readonly labels = new Map<string, string>();
  /** Made with the first variable: most charts have none (600 socket activity charts at 10,000 sockets). */
  private variables: Map<string, number> | undefined;
  /** The dimensions' records and keys (none where the records know them), in the definition's order (added ones last). */
  private recs: D[] = [];
  private keys: string[] | undefined;
  /**
   * Their values, where no SET block holds them: every chart without digits, and a digit chart's
   * while its definition is to be (re)written.
   */
  private vals: number[] | undefined = [];
  /** DIMENSION lines of dimensions retired since the definition was last sent. */
  private retired: DimensionLine[] = [];
  /** The ids of the dimensions, for charts without a block. */
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
    this.keys = options.keyOf ? undefined : [];
  }

  /** Whether the next sample writes anything: the agent holds the chart, or it is to be defined. */
  get active(): boolean {
    return this.live || this.dirty;
  }

  /** Whether the agent holds this chart now (defined, not obsolete). */
  get held(): boolean {
    return this.live;
  }

  /** How many dimensions; they are numbered 0..size-1 in the order values are written. */
  get size(): number {
    return this.recs.length;
  }

  /** The records of the dimensions, in the order values are written (don't keep the array). */
  current(): readonly D[] {
    return this.recs;
  }

  key(index: number): string {
    return this.keys ? this.keys[index]! : (this.options.keyOf as (rec: D) => string)(this.recs[index]!);
  }

  record(index: number): D {
    return this.recs[index]!;
  }

  /** Replaces the record of a dimension (the same key: its DIMENSION line must not change). */
  setRecord(index: number, rec: D): void {
    this.recs[index] = rec;
  }

  /** The dimensions' positions by key, made on each call (for a writer re-selecting its dimensions). */
  indexByKey(): Map<string, number> {
    const at = new Map<string, number>();
    for (let i = 0; i < this.recs.length; i++) at.set(this.key(i), i);
    return at;
  }

  /** Adds a dimension last; returns its position. */
  addDimension(key: string, rec: D, value = 0): number {
    const vals = this.unblock();
    this.keys?.push(key);
    this.recs.push(rec);
    vals.push(value);
    this.dirty = true;
    return this.recs.length - 1;
  }

  /** Drops, in one pass, every dimension `drop` names; the next definition marks them obsolete. */
  retireWhere(drop: (key: string, rec: D, index: number) => boolean): void {
    const { keys, recs } = this;
    let vals = this.vals;
    let kept = 0;
    for (let i = 0; i < recs.length; i++) {
      const key = this.key(i);
      const rec = recs[i]!;
      if (drop(key, rec, i)) {
        // Its line now, while the writer still knows its id.
        this.retired.push(this.lineOf(key, rec));
        vals ??= this.unblock(); // nothing moved yet: positions still match the block's
        continue;
      }
      if (keys) keys[kept] = key;
      recs[kept] = rec;
      if (vals) vals[kept] = vals[i]!;
      kept++;
    }
    if (kept === recs.length) return;
    if (keys) keys.length = kept;
    recs.length = kept;
    vals!.length = kept;
    this.dirty = true;
  }

  /** The value of the dimension at `index`. */
  value(index: number): number {
    return this.vals ? this.vals[index]! : this.block.get(index);
  }

  setValue(index: number, value: number): void {
    const vals = this.vals;
    if (!vals) return this.block.set(index, value); // a digit chart, defined: patched in place
    if (value === vals[index]) return;
    vals[index] = value;
    if (!this.options.digits) this.tail = undefined; // else define() renders it anew
  }

  /** The values, where they are not in the block (a digit chart's are taken out of it to change its dimensions). */
  private unblock(): number[] {
    if (this.vals) return this.vals;
    const block = this.block;
    const vals: number[] = [];
    for (let i = 0; i < block.size; i++) vals.push(block.get(i));
    return (this.vals = vals);
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
    const variables = (this.variables ??= new Map());
    if (variables.get(name) === value) return;
    variables.set(name, value);
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
    if (!this.options.digits) this.ids.forEach((id, i) => (text += setLine(id, this.vals![i]!) + '\n'));
    if (this.variables) for (const [name, value] of this.variables) text += variableLine(name, value) + '\n';
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
    this.unblock(); // the dimensions stay, for a definition that brings the chart back
    this.ids = [];
    this.block = NO_BLOCK;
    this.tail = undefined;
    this.live = false;
    this.lastBeginUs = undefined;
  }

  private define(): void {
    this.dirty = false;
    this.tail = undefined;
    if (this.recs.length === 0) return this.obsolete();
    const w = this.writer;
    this.writeChartAndLabels();
    // Grown by push, the arrays hold up to half again their length (16 slots for one dimension):
    // kept at their length from here on, as most charts keep their dimensions for good.
    const recs = (this.recs = this.recs.slice());
    if (this.keys) this.keys = this.keys.slice();
    const ids = new Array<string>(recs.length);
    for (let i = 0; i < recs.length; i++) {
      const line = this.lineOf(this.key(i), recs[i]!);
      w.dimension(line);
      ids[i] = line.id;
    }
    // A digit chart's ids and values live in its block only; the few of other charts in `ids`, `vals`.
    if (this.options.digits) {
      this.block = new SetBlock(ids, this.vals!);
      this.vals = undefined;
    } else {
      this.ids = ids;
      this.vals = this.vals!.slice();
    }
    this.writeRetired();
    this.retired = [];
    this.live = true;
  }

  private writeRetired(): void {
    for (const line of this.retired) this.writer.dimension(line, true);
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
    if (this.variables) for (const [name, value] of this.variables) this.writer.chartVariable(name, value);
  }
}
