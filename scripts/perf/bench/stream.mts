// The plugin's stdout as the benchmark sees it: chunks stamped with their arrival time on the pipe
// (wall clock, µs, comparable with systemd's StateChangeTimestamp), cut into lines, and only the
// little the figures need kept: which charts and dimensions are defined, when the first complete
// batch arrived, how many SET lines went by, and when the value of a few watched units changed.
// Kept light on purpose: at 10,000 units this reads 10,000 SET lines a second on the same 2 cores.
import { tokenize } from '../../../plugin/netdata/requests.js';

/** Wall-clock now in µs, from the monotonic clock (what systemd's *Timestamp properties use). */
export const nowUs = (): number => Math.round((performance.timeOrigin + performance.now()) * 1000);

/** Keywords a plugin may write; anything else would get it killed by the agent. */
const KEYWORDS = new Set(['CHART', 'DIMENSION', 'BEGIN', 'SET', 'END', 'VARIABLE', 'CLABEL', 'CLABEL_COMMIT', 'DISABLE', 'FLUSH', 'FUNCTION', 'FUNCTION_RESULT_BEGIN', 'FUNCTION_RESULT_END']);

export interface ValueChange {
  /** unit (dimension name) */
  unit: string;
  value: number;
  /** arrival of the chunk that carried the SET line, wall clock µs */
  atUs: number;
}

export class PluginStream {
  /** chart id → its dimension ids and names */
  readonly charts = new Map<string, Map<string, string>>();
  /** wall clock µs of the END that completed the first full batch (see isComplete) */
  firstCompleteUs: number | undefined;
  setLines = 0;
  batches = 0;
  bytes = 0;
  readonly strayLines: string[] = [];
  /** every change of a watched unit's value, oldest first */
  readonly changes: ValueChange[] = [];
  /** called once, synchronously, when the first complete batch has arrived (e.g. to read RSS then) */
  onFirstComplete: ((atUs: number) => void) | undefined;

  private partial = '';
  private inFunctionResult = false;
  private chart: string | undefined;
  private readonly ended = new Set<string>();
  /** dimension id → unit name, for watched units only */
  private readonly watchedIds = new Map<string, string>();
  private readonly lastValue = new Map<string, number>();
  private benchDims = 0;

  /**
   * @param watched units whose value changes are recorded (by dimension name)
   * @param isBenchUnit names the units the batch must hold before it counts as complete
   * @param expectedUnits how many of them
   */
  constructor(
    private readonly watched: ReadonlySet<string>,
    private readonly isBenchUnit: (name: string) => boolean,
    private readonly expectedUnits: number,
  ) {}

  /** One chunk from the pipe, as it arrived. */
  push(chunk: string, atUs: number = nowUs()): void {
    this.bytes += chunk.length;
    const text = this.partial + chunk;
    let start = 0;
    for (;;) {
      const nl = text.indexOf('\n', start);
      if (nl < 0) break;
      this.line(text.slice(start, nl), atUs);
      start = nl + 1;
    }
    this.partial = text.slice(start);
  }

  /** The value a watched unit had in the last batch. */
  lastValueOf(unit: string): number | undefined {
    return this.lastValue.get(unit);
  }

  /** The first change of `unit` to `value` that arrived at or after `sinceUs`. */
  changeTo(unit: string, value: number, sinceUs: number): ValueChange | undefined {
    return this.changes.find((c) => c.unit === unit && c.value === value && c.atUs >= sinceUs);
  }

  private line(line: string, atUs: number): void {
    if (this.inFunctionResult) {
      if (line === 'FUNCTION_RESULT_END') this.inFunctionResult = false;
      return;
    }
    // The hot path first: one SET per unit per second.
    if (line.startsWith('SET ')) {
      this.setLines++;
      if (this.watchedIds.size === 0) return;
      const eq = line.indexOf(' = ');
      if (eq < 0) return;
      let id = line.slice(4, eq);
      if (id.startsWith("'") && id.endsWith("'")) id = id.slice(1, -1);
      const unit = this.watchedIds.get(id);
      if (unit === undefined) return;
      const value = Number(line.slice(eq + 3));
      if (this.lastValue.get(unit) !== value) {
        this.lastValue.set(unit, value);
        this.changes.push({ unit, value, atUs });
      }
      return;
    }
    if (line.trim() === '') return; // heartbeat
    const sp = line.indexOf(' ');
    const kw = sp < 0 ? line : line.slice(0, sp);
    if (!KEYWORDS.has(kw)) {
      if (this.strayLines.length < 5) this.strayLines.push(line.slice(0, 200));
      return;
    }
    switch (kw) {
      case 'FUNCTION_RESULT_BEGIN':
        this.inFunctionResult = true;
        break;
      case 'CHART': {
        const id = tokenize(line)[1]!;
        if (!this.charts.has(id)) this.charts.set(id, new Map());
        this.ended.delete(id); // (re)defined: must complete a batch again
        this.chart = id;
        break;
      }
      case 'DIMENSION': {
        const w = tokenize(line);
        const dims = this.chart === undefined ? undefined : this.charts.get(this.chart);
        if (!dims) break;
        const id = w[1]!;
        const name = w[2] || id;
        if (!dims.has(id) && this.isBenchUnit(name)) this.benchDims++;
        dims.set(id, name);
        if (this.watched.has(name)) this.watchedIds.set(id, name);
        break;
      }
      case 'BEGIN':
        this.chart = tokenize(line)[1];
        break;
      case 'END':
        this.batches++;
        if (this.chart !== undefined) this.ended.add(this.chart);
        if (this.firstCompleteUs === undefined && this.isComplete()) {
          this.firstCompleteUs = atUs;
          this.onFirstComplete?.(atUs);
        }
        break;
    }
  }

  /** Every bench unit has a dimension, and every chart defined so far has sent a batch. */
  private isComplete(): boolean {
    if (this.benchDims < this.expectedUnits) return false;
    for (const id of this.charts.keys()) if (!this.ended.has(id)) return false;
    return true;
  }
}
