// The plugin's stdout as the benchmark sees it: chunks stamped with their arrival time on the pipe
// (wall clock, µs, comparable with systemd's StateChangeTimestamp), read by the harness's protocol
// parser in its light mode (no lines or samples kept), and only the little the figures need kept:
// which charts and dimensions are defined, when the first complete batch arrived, how many SET
// lines went by, and when the value of a few watched units changed. Kept light on purpose: at
// 10,000 units this reads 10,000 SET lines a second on the same 2 cores.
import { ProtocolParser } from './protocol.js';

/** Wall-clock now in µs, from the monotonic clock (what systemd's *Timestamp properties use). */
export const nowUs = (): number => Math.round((performance.timeOrigin + performance.now()) * 1000);

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
  /** every change of a watched unit's value, oldest first */
  readonly changes: ValueChange[] = [];
  /** called once, synchronously, when the first complete batch has arrived (e.g. to read RSS then) */
  onFirstComplete: ((atUs: number) => void) | undefined;

  private readonly parser: ProtocolParser;
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
  ) {
    this.parser = new ProtocolParser({
      keepLines: false,
      keepSamples: false,
      maxStray: 5,
      hooks: {
        chart: (c) => {
          if (!this.charts.has(c.id)) this.charts.set(c.id, new Map());
          this.ended.delete(c.id); // (re)defined: must complete a batch again
        },
        dimension: (c, id, name) => {
          const dims = this.charts.get(c.id)!;
          if (!dims.has(id) && this.isBenchUnit(name)) this.benchDims++;
          dims.set(id, name);
          if (this.watched.has(name)) this.watchedIds.set(id, name);
        },
        set: (id, value, atUs) => {
          const unit = this.watchedIds.get(id);
          if (unit === undefined || this.lastValue.get(unit) === value) return;
          this.lastValue.set(unit, value);
          this.changes.push({ unit, value, atUs });
        },
        end: (chart, atUs) => {
          if (chart !== undefined) this.ended.add(chart);
          if (this.firstCompleteUs === undefined && this.isComplete()) {
            this.firstCompleteUs = atUs;
            this.onFirstComplete?.(atUs);
          }
        },
      },
    });
  }

  get setLines(): number {
    return this.parser.setLines;
  }
  get batches(): number {
    return this.parser.batches;
  }
  get bytes(): number {
    return this.parser.bytes;
  }
  get strayLines(): string[] {
    return this.parser.strayLines;
  }

  /** One chunk from the pipe, as it arrived. */
  push(chunk: string, atUs: number = nowUs()): void {
    this.parser.push(chunk, atUs);
  }

  /** The value a watched unit had in the last batch. */
  lastValueOf(unit: string): number | undefined {
    return this.lastValue.get(unit);
  }

  /** The first change of `unit` to `value` that arrived at or after `sinceUs`. */
  changeTo(unit: string, value: number, sinceUs: number): ValueChange | undefined {
    return this.changes.find((c) => c.unit === unit && c.value === value && c.atUs >= sinceUs);
  }

  /** Every bench unit has a dimension, and every chart defined so far has sent a batch. */
  private isComplete(): boolean {
    if (this.benchDims < this.expectedUnits) return false;
    for (const id of this.charts.keys()) if (!this.ended.has(id)) return false;
    return true;
  }
}
