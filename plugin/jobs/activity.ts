// Socket activity of one job (`socket_activity: true`): for each Accept=yes socket unit the job
// selects, three charts (accepted/s, current, refused/s) fed by reading systemd's counters every
// `socket_activity_every` seconds. The counters are never signalled, so this is the plugin's one
// poll; it reads only Accept=yes sockets (the only ones whose counters move, see
// systemd/socket-counters.ts), a bounded number at a time, skips a round while the previous one
// still runs, and reads nothing while systemd is out of reach (the charts show a gap).

import { SOCKET_ACTIVITY, SOCKET_ACTIVITY_CHARTS, fillSocket, type SocketActivityChart } from '../../charts/socket-activity.js';
import type { JobConfig } from '../config.js';
import { debugFor } from '../log.js';
import type { ChartLine, ProtocolWriter } from '../netdata/protocol.js';
import { safeId, safeWord } from '../netdata/protocol.js';
import { Scheduler } from '../scheduler.js';
import { mapLimited } from '../systemd/limit.js';
import type { SystemdManager } from '../systemd/manager.js';
import type { SystemdLink } from '../systemd/link.js';
import { readCounters, type SocketAcceptIndex, type SocketCounters } from '../systemd/socket-counters.js';
import { decodeUnitName, nameHash, readableUnitName, unitPath } from '../units/names.js';
import type { Unit, UnitTable } from '../units/table.js';
import { UnitSelector } from './selector.js';
import { forgetRetiredIds } from './job.js';

const debug = debugFor('activity');

/** Sockets read at once in a round: 3 calls each, well below the bus's cap of 32 in flight. */
const POLL_CONCURRENCY = 8;

interface LiveChart {
  readonly def: SocketActivityChart;
  readonly line: ChartLine;
  lastBeginUs: number | undefined;
}

interface SocketCharts {
  unit: Unit;
  /** The socket's part of its chart ids: safe, unique in the job, stable across restarts. */
  readonly id: string;
  readonly name: string;
  readonly live: Map<SocketActivityChart, LiveChart>;
  /** False once this systemd said it has no NRefused (before 239): no refused chart then. */
  hasRefused: boolean;
}

/** What one round cost, for the debug log and the benchmark. */
export interface RoundStats {
  readonly sockets: number;
  readonly failed: number;
  readonly wallMs: number;
  readonly cpuMs: number;
}

export class SocketActivityJob {
  readonly chartType: string;
  private readonly selector: UnitSelector;
  private readonly sockets = new Map<string, SocketCharts>();
  /** Chart-id parts handed out, and to which unit name: the live ones and the latest retired. */
  private readonly idOwners = new Map<string, string>();
  private scheduler: Scheduler | undefined;
  private round: Promise<void> | undefined;
  /** Ticks skipped because the previous round was still running. */
  skipped = 0;
  lastRound: RoundStats | undefined;

  constructor(
    readonly config: JobConfig,
    private readonly table: UnitTable,
    private readonly writer: ProtocolWriter,
    private readonly accept: SocketAcceptIndex,
    private readonly systemd: () => SystemdManager | undefined,
    private readonly link: Pick<SystemdLink, 'inStep'>,
  ) {
    this.chartType = `systemdunits_${config.name}`;
    this.selector = new UnitSelector(config);
  }

  /** Call after the first batch of state charts: Accept is read in the background from then on. */
  start(): void {
    if (this.scheduler) return;
    void this.accept.refresh();
    this.scheduler = new Scheduler(this.config.socketActivityEvery, (nowUs) => this.tick(nowUs));
    this.scheduler.start();
  }

  stop(): void {
    this.scheduler?.stop();
  }

  /** One polling tick; the round it starts writes and flushes its batch when its reads are done. */
  tick(nowUs: number): void {
    if (this.round) {
      this.skipped++;
      debug('%s: previous round still running; tick skipped (%d so far)', this.config.name, this.skipped);
      return;
    }
    const systemd = this.systemd();
    if (!systemd) return; // out of reach: nothing read, a gap on the charts
    void this.accept.refresh(); // new sockets, or everything again after a reload
    const selected = this.select();
    this.retireMissing(selected);
    this.writer.flush();
    if (selected.length === 0) return;
    this.round = this.poll(systemd, selected, nowUs).finally(() => (this.round = undefined));
  }

  /** Resolves when the round under way (if any) is done: for tests and a clean shutdown. */
  settled(): Promise<void> {
    return this.round ?? Promise.resolve();
  }

  private select(): SocketCharts[] {
    const selected: SocketCharts[] = [];
    for (const unit of this.table.units()) {
      if (unit.type !== 'socket' || !this.selector.selects(unit) || this.accept.get(unit.name) !== true) continue;
      let s = this.sockets.get(unit.name);
      if (!s) {
        s = { unit, id: this.chartIdPart(unit.name), name: safeWord(readableUnitName(unit.name)), live: new Map(), hasRefused: true };
        this.sockets.set(unit.name, s);
      }
      s.unit = unit;
      selected.push(s);
    }
    return selected;
  }

  /** Sockets no longer selected (unloaded, excluded, Accept=no after a reload): charts obsoleted. */
  private retireMissing(selected: readonly SocketCharts[]): void {
    if (selected.length === this.sockets.size) return;
    const keep = new Set(selected.map((s) => s.unit.name));
    for (const [name, s] of this.sockets) {
      if (keep.has(name)) continue;
      for (const chart of s.live.values()) this.writer.chart(chart.line, true);
      this.sockets.delete(name);
      debug('%s: %s no longer charted', this.config.name, name);
    }
    // Sockets made and dropped at run time (transient ones) would otherwise grow it for good.
    forgetRetiredIds(this.idOwners, this.sockets);
  }

  private async poll(systemd: SystemdManager, selected: SocketCharts[], nowUs: number): Promise<void> {
    const cpu = process.cpuUsage();
    const started = performance.now();
    // A round that outlives its interval is cut short: the next tick would be skipped anyway.
    const deadline = started + this.config.socketActivityEvery * 1000;
    const counters = await mapLimited(selected, { concurrency: POLL_CONCURRENCY, deadline }, (s) =>
      readCounters(systemd, unitPath(s.unit.name), s.hasRefused),
    );
    if (!this.link.inStep) return; // lost systemd meanwhile: no half-true batch
    let failed = 0;
    selected.forEach((s, i) => {
      const c = counters[i];
      if (c === undefined) failed++;
      // A socket unloaded while being read is retired on the next tick.
      else if (this.sockets.get(s.unit.name) === s) this.writeSocket(s, c, nowUs);
    });
    this.writer.flush();
    const used = process.cpuUsage(cpu);
    this.lastRound = {
      sockets: selected.length,
      failed,
      wallMs: performance.now() - started,
      cpuMs: (used.user + used.system) / 1000,
    };
    debug('%s: read %d sockets (%d failed) in %d ms, %d ms CPU', this.config.name, selected.length, failed, Math.round(this.lastRound.wallMs), Math.round(this.lastRound.cpuMs));
  }

  private writeSocket(s: SocketCharts, c: SocketCounters, nowUs: number): void {
    if (c.refused === null) s.hasRefused = false;
    for (const def of SOCKET_ACTIVITY_CHARTS) {
      const value = def.counter === 'NAccepted' ? c.accepted : def.counter === 'NConnections' ? c.connections : c.refused;
      if (value === null) continue;
      let chart = s.live.get(def);
      if (!chart) {
        chart = { def, line: this.chartLine(def, s), lastBeginUs: undefined };
        s.live.set(def, chart);
        this.define(chart, s);
      }
      const elapsed = chart.lastBeginUs === undefined ? undefined : nowUs - chart.lastBeginUs;
      chart.lastBeginUs = nowUs;
      this.writer.begin(chart.line.fullId, elapsed).set(def.dimension.id, value).end();
    }
  }

  private define(chart: LiveChart, s: SocketCharts): void {
    this.writer.chart(chart.line);
    this.writer.label(SOCKET_ACTIVITY.unitLabel, s.name);
    this.writer.label(SOCKET_ACTIVITY.jobLabel, this.config.name);
    this.writer.commitLabels();
    const d = chart.def.dimension;
    this.writer.dimension({ id: d.id, name: d.name, algorithm: d.algorithm });
  }

  private chartLine(def: SocketActivityChart, s: SocketCharts): ChartLine {
    return {
      fullId: `${this.chartType}.${fillSocket(def.id, s.id, s.name)}`,
      title: fillSocket(def.title, s.id, s.name),
      units: def.units,
      family: SOCKET_ACTIVITY.family,
      context: def.context,
      chartType: def.chartType,
      priority: def.priority,
      updateEvery: this.config.socketActivityEvery,
      plugin: SOCKET_ACTIVITY.plugin,
      module: SOCKET_ACTIVITY.module,
    };
  }

  private chartIdPart(unitName: string): string {
    return socketChartId(unitName, this.idOwners);
  }
}

/**
 * The socket's part of a chart id: its decoded name without `.socket`, dots and unsafe characters
 * turned into `_` (the agent splits `type.id` at the first dot). Two names that clean up alike
 * are told apart by a short hash of the raw name, given to the later one.
 */
export function socketChartId(unitName: string, idOwners: Map<string, string>): string {
  let id = safeId(decodeUnitName(unitName).replace(/\.socket$/, '')).replaceAll('.', '_');
  const owner = idOwners.get(id);
  if (owner !== undefined && owner !== unitName) id = `${id}_${nameHash(unitName)}`;
  idOwners.set(id, unitName);
  return id;
}
