// Socket activity charts of one job (`socket_activity`, on by default): for each Accept=yes socket unit the
// job selects, three charts (accepted/s, current, refused/s) of the counters the socket poller
// (systemd/socket-poller.ts) keeps in the model, sampled every `socket_activity_every` with the
// values known current for the round (read then, or unchanged since). Reads the model only.

import { SOCKET_ACTIVITY, SOCKET_ACTIVITY_CHARTS, socketValues } from '../../charts/socket-activity.js';
import { chartLine } from '../../charts/shape.js';
import { debugFor } from '../log.js';
import { Chart } from '../netdata/chart.js';
import { IdAllocator } from '../netdata/ids.js';
import type { DimensionLine, ProtocolWriter } from '../netdata/protocol.js';
import { safeId, safeWord } from '../netdata/protocol.js';
import { decodeUnitName, readableUnitName } from '../units/names.js';
import type { Selection } from '../units/selector.js';
import { UnitSelector } from '../units/selector.js';
import type { SocketCounters, Unit, UnitTable } from '../units/table.js';

const debug = debugFor('activity');

interface SocketCharts {
  unit: Unit;
  /** The socket's part of its chart ids: safe, unique in the job, stable across restarts. */
  readonly id: string;
  readonly name: string;
  /** Its charts made so far, by their place in SOCKET_ACTIVITY_CHARTS (a Map each was ~0.2 KB a socket). */
  readonly live: (Chart | undefined)[];
}

export interface ActivitySelection extends Selection {
  readonly name: string;
  readonly socketActivityEvery: number;
  readonly contextPrefix: string;
}

export class SocketActivityCharts {
  readonly chartType: string;
  private readonly selector: UnitSelector;
  private readonly sockets = new Map<string, SocketCharts>();
  /** The sockets of the latest selection. */
  private selected: SocketCharts[] = [];
  /**
   * The socket units the job selects, whatever their Accept, as of the table's membership and load
   * state versions: matching every unit's name against the globs each round cost more than the
   * round's charts at 10,000 units.
   */
  private candidates: Unit[] = [];
  private seenMembership = -1;
  private seenLoad = -1;
  private readonly ids = new IdAllocator(socketIdOf);
  /** Each kind's context, as its first chart had it. */
  private readonly contexts: string[] = [];

  constructor(
    readonly config: ActivitySelection,
    private readonly table: UnitTable,
    private readonly writer: ProtocolWriter,
  ) {
    this.chartType = `systemdunits_${config.name}`;
    this.selector = new UnitSelector(config);
  }

  /**
   * The sockets whose activity the job charts now (selected, Accept=yes): the ones to read. Those
   * no longer selected (unloaded, excluded, Accept=no after a reload) have their charts obsoleted.
   */
  select(): Unit[] {
    if (this.table.membership !== this.seenMembership || this.table.loadStates !== this.seenLoad) {
      this.seenMembership = this.table.membership;
      this.seenLoad = this.table.loadStates;
      this.candidates = [];
      for (const unit of this.table.units()) if (unit.type === 'socket' && this.selector.selects(unit)) this.candidates.push(unit);
    }
    const selected: SocketCharts[] = [];
    // Accept is read in the background, and again after a reload: looked at every round.
    for (const unit of this.candidates) {
      if (unit.accept !== true) continue;
      let s = this.sockets.get(unit.name);
      if (!s) {
        s = { unit, id: this.ids.idFor(unit.name, this.sockets), name: safeWord(readableUnitName(unit.name)), live: SOCKET_ACTIVITY_CHARTS.map(() => undefined) }; // at its length
        this.sockets.set(unit.name, s);
      }
      s.unit = unit;
      selected.push(s);
    }
    this.selected = selected;
    this.retireMissing(selected);
    return selected.map((s) => s.unit);
  }

  /** Writes the counters of the selected sockets known current for the round at `nowUs` (the caller flushes). */
  sample(nowUs: number): void {
    for (const s of this.selected) {
      const c = s.unit.counters;
      // A socket unloaded meanwhile is retired on the next selection; one whose counters may have
      // moved but could not be read (failed, or waiting past the cap) keeps a gap.
      if (c?.currentAtUs === nowUs && this.sockets.get(s.unit.name) === s) this.writeSocket(s, c, nowUs);
    }
  }

  private retireMissing(selected: readonly SocketCharts[]): void {
    if (selected.length === this.sockets.size) return;
    const keep = new Set(selected.map((s) => s.unit.name));
    for (const [name, s] of this.sockets) {
      if (keep.has(name)) continue;
      for (const chart of s.live) chart?.obsolete();
      this.sockets.delete(name);
      debug('%s: %s no longer charted', this.config.name, name);
    }
    // Sockets made and dropped at run time (transient ones) would otherwise grow it for good.
    this.ids.forgetRetired(this.sockets);
  }

  private writeSocket(s: SocketCharts, c: SocketCounters, nowUs: number): void {
    for (let i = 0; i < SOCKET_ACTIVITY_CHARTS.length; i++) {
      const def = SOCKET_ACTIVITY_CHARTS[i]!;
      const value = def.counter === 'NAccepted' ? c.accepted : def.counter === 'NConnections' ? c.connections : c.refused;
      if (value === null) continue;
      let chart = s.live[i];
      if (!chart) {
        const line = chartLine(def, socketValues(s.id, s.name), { chartType: this.chartType, priority: 0, updateEvery: this.config.socketActivityEvery, contextPrefix: this.config.contextPrefix });
        // The context is the same for every socket: one copy (600 charts at 10,000 sockets).
        const shared = { ...line, context: (this.contexts[i] ??= line.context) };
        const kind = CHART_KINDS[i]!;
        chart = new Chart(this.writer, shared, kind.lineOf, kind.options);
        chart.setLabel(SOCKET_ACTIVITY.unitLabel, s.name);
        chart.setLabel(SOCKET_ACTIVITY.jobLabel, this.config.name);
        chart.addDimension(def.dimension.id, undefined);
        s.live[i] = chart;
      }
      chart.setValue(0, value);
      chart.sample(nowUs);
    }
  }
}

/**
 * What every chart of a kind shares: its one dimension's line, and its key, the dimension's id (the
 * chart then keeps no array of keys). Made once, not two closures and an object per chart.
 */
const CHART_KINDS = SOCKET_ACTIVITY_CHARTS.map((def) => {
  const dimension = def.dimension;
  return { lineOf: (): DimensionLine => dimension, options: { keyOf: (): string => dimension.id } };
});

/**
 * The socket's part of a chart id: its decoded name without `.socket`, dots and unsafe characters
 * turned into `_` (the agent splits `type.id` at the first dot). Two names that clean up alike are
 * told apart by the allocator.
 */
export function socketIdOf(unitName: string): string {
  return safeId(decodeUnitName(unitName).replace(/\.socket$/, '')).replaceAll('.', '_');
}
