// Service restarts per job, for the restart loop alarm (charts/unit-summary.ts UNIT_RESTARTS_CHART).
//
// Counted from the table's per-unit restart counters, which systemd's NRestarts signals move, so
// every restart counts, between two samples too. Per service, only those that restarted within the
// window are remembered (a few numbers each, at most MAX_TRACKED services): enough to name the
// looping ones and to say the most restarts of one service in the window, which the alarm reads.

import { UNIT_RESTARTS_CHART } from '../../charts/unit-summary.js';
import type { ProtocolWriter } from '../netdata/protocol.js';
import { crashText } from '../units/exits.js';
import type { Unit, UnitTable } from '../units/table.js';
import { dimensionName } from './names.js';
import { SummaryCharts, type SummaryChart } from './summary.js';
import type { JobCharts } from './job-charts.js';

/** How many services the `restarting_units` label names, in how many characters at most. */
const LABEL_MAX_UNITS = 5;
const LABEL_MAX_CHARS = 600;
/** Services whose restarts in the window are remembered: a storm of restarts is bounded too. */
export const MAX_TRACKED = 1000;

interface Recent {
  readonly unit: Unit;
  /** [sample number, restarts in that sample], oldest first, none older than the window. */
  readonly samples: [number, number][];
  sum: number;
}

interface Counter {
  /** Per unit: its restarts already reported (none when absent). */
  readonly seen: WeakMap<Unit, number>;
  /** Services that restarted within the window, by name. */
  readonly recent: Map<string, Recent>;
  /**
   * What the label was made of, when it was: each named service's last crash, in `recent`'s order
   * (a crash may be signalled without a restart counted). Undefined: make it anew.
   */
  labelled?: (Recent['unit']['lastCrash'])[];
}

export class UnitRestarts extends SummaryCharts {
  private readonly counters = new Map<SummaryChart, Counter>();
  /** The table's restart version at the previous sample: units restarted after it did so in this interval. */
  private seenRestarts: number;
  private sampleNo = 0;
  /** The window in samples of the job's interval. */
  private readonly windowSamples: number;

  constructor(
    job: JobCharts,
    private readonly table: UnitTable,
    writer: ProtocolWriter,
    /** The job's restart_loop_threshold and restart_loop_window (seconds). */
    private readonly threshold: number,
    windowSeconds: number,
  ) {
    super(UNIT_RESTARTS_CHART, job, writer);
    this.seenRestarts = table.restartsVersion;
    this.windowSamples = Math.max(1, Math.ceil(windowSeconds / job.updateEvery));
  }

  /** Only services restart: the chart is theirs alone. */
  override reselect(wanted: ReadonlyMap<string, readonly Unit[]>): void {
    const services = wanted.get(UNIT_RESTARTS_CHART.unitType);
    super.reselect(services ? new Map([[UNIT_RESTARTS_CHART.unitType, services]]) : new Map());
  }

  override sample(nowUs: number, failSeq: number): void {
    this.sampleNo++;
    super.sample(nowUs, failSeq);
    this.seenRestarts = this.table.restartsVersion;
  }

  protected override changeUnits(chart: SummaryChart, next: readonly Unit[]): void {
    const c = this.counter(chart);
    // A service new to the chart entered the table since the previous sample (selection is by name
    // and Transient, both fixed): every restart the table counted of it is this interval's.
    const names = new Set(next.map((u) => u.name));
    for (const name of c.recent.keys()) if (!names.has(name)) c.recent.delete(name);
    if (next.length === 0) this.counters.delete(chart);
  }

  protected compute(chart: SummaryChart, _failSeq: number): boolean {
    const c = this.counter(chart);
    let total = 0;
    let moved = false;
    if (this.table.restartsVersion !== this.seenRestarts) {
      for (const u of chart.units) {
        if (u.restartedAt <= this.seenRestarts) continue;
        const d = u.restarts - (c.seen.get(u) ?? 0);
        c.seen.set(u, u.restarts);
        if (d <= 0) continue;
        total += d;
        let r = c.recent.get(u.name);
        if (!r || r.unit !== u) {
          if (!r && c.recent.size >= MAX_TRACKED) continue;
          c.recent.set(u.name, (r = { unit: u, samples: [], sum: 0 }));
        }
        r.samples.push([this.sampleNo, d]);
        r.sum += d;
        moved = true;
      }
    }
    let max = 0;
    const oldest = this.sampleNo - this.windowSamples;
    for (const [name, r] of c.recent) {
      while (r.samples.length > 0 && r.samples[0]![0] <= oldest) {
        r.sum -= r.samples.shift()![1];
        moved = true;
      }
      if (r.sum <= 0) c.recent.delete(name);
      else if (r.sum > max) max = r.sum;
    }
    chart.values[0] = total;
    // Made anew only when a count moved or a crash was signalled (it sorts and formats every name).
    if (moved || !sameCrashes(c)) {
      chart.chart.setLabel(UNIT_RESTARTS_CHART.restartingLabel, restartingLabel([...c.recent.values()]));
      c.labelled = [...c.recent.values()].map((r) => r.unit.lastCrash);
    }
    chart.chart.setVariable(UNIT_RESTARTS_CHART.thresholdVariable, this.threshold);
    chart.chart.setVariable(UNIT_RESTARTS_CHART.maxVariable, max);
    return true;
  }

  private counter(chart: SummaryChart): Counter {
    let c = this.counters.get(chart);
    if (!c) this.counters.set(chart, (c = { seen: new WeakMap(), recent: new Map() }));
    return c;
  }
}

/** Whether the services in the window have the crashes the label was made with. */
function sameCrashes(c: Counter): boolean {
  if (c.labelled === undefined || c.labelled.length !== c.recent.size) return false;
  let i = 0;
  for (const r of c.recent.values()) if (r.unit.lastCrash !== c.labelled[i++]) return false;
  return true;
}

/**
 * `crashy.service 12 restarts (exit-code status=1/FAILURE); b.service 6 restarts (signal SIGSEGV)`:
 * the services with most restarts in the window first, with why each last crashed (no commas: the
 * agent turns them into dots in labels). `none` when no service restarted in the window.
 */
export function restartingLabel(recent: Recent[]): string {
  if (recent.length === 0) return 'none';
  recent.sort((a, b) => b.sum - a.sum);
  let text = '';
  let shown = 0;
  for (const r of recent) {
    const crash = r.unit.lastCrash;
    const item = `${dimensionName(r.unit.name)} ${r.sum} restart${r.sum === 1 ? '' : 's'}${crash ? ` (${crashText(crash.result, crash.exit, ' ')})` : ''}`;
    if (shown === LABEL_MAX_UNITS || (shown > 0 && text.length + item.length + 2 > LABEL_MAX_CHARS)) break;
    text += (shown++ ? '; ' : '') + item;
  }
  const more = recent.length - shown;
  return text + (more > 0 ? `; and ${more} more` : '');
}
