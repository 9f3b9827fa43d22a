// The figures of one run and the one table they are printed as: a row per figure, a column per N,
// the issue's target last; plain text for the terminal, markdown for the README.
import { median, quantile } from './proc.mjs';
import { laterMedian } from './resync-cpu.mjs';

/** CPU from getrusage (the peers run as commands) counts in clock ticks: a value below one tick is
 * shown as "<tick". Process CPU from schedstat is exact to the ns: no resolution. */
export interface Measured {
  value: number;
  /** smallest non-zero amount the measurement can see, same unit */
  resolution?: number;
}

/** A measuring window: from when, after the process's exec, and for how long; the load average at its ends. */
export interface Window {
  startS: number;
  seconds: number;
  loadAvg: [number, number];
}

export interface PluginFigures {
  /** exec → first complete batch */
  startupMs: number;
  startupCpuMs: Measured | undefined;
  /** counters on: from exec until every Accept=yes socket had its charts */
  activity?: { wallS: number; cpuMs: Measured; complete: boolean; charted: number };
  window: Window;
  /** plugin CPU over the window (schedstat), % of one core */
  cpuPct: Measured;
  setLinesPerS: number;
  bytesPerS: number;
  /** dimensions charted at the window's end: of bench sockets, of their services, in all */
  dims: { sockets: number; services: number; total: number };
  rssFirstMb: number | undefined;
  ownFirstMb: number | undefined;
  /** medians over the window */
  rssSteadyMb: number | undefined;
  ownSteadyMb: number | undefined;
  /** VmHWM at the window's end: the start-up listing's peak */
  rssPeakMb: number | undefined;
  /** undefined when not timed in this run */
  latencyMs: number[] | undefined;
  /** failures whose SET … = 5 never arrived (within 10 s) */
  latencyMissed: number;
  /** the resync after a daemon-reload (Manager.Reload), when forced */
  reload: { reloadMs: number; reloadBusCpuS: number; pluginCpuMs: number; pluginReportedMs: number; ownAfterMb: number | undefined; rssAfterMb: number | undefined; peakAfterMb: number | undefined } | undefined;
  /** systemd + dbus-daemon CPU over the window, minus the idle rate, per minute */
  busCostMsPerMin: Measured;
  /** each second of the window: SET lines, batches, plugin CPU ms (JSON only: where a window's CPU goes) */
  perSecond?: Array<{ sets: number; batches: number; cpuMs: number }>;
  charts: string[];
  /** protocol lines the agent would reject */
  stray: string[];
}

/** floor.mjs over the same window as the states-only run: the plugin's batch pre-rendered, and an idle node. */
export interface FloorFigures {
  window: Window;
  batchBytes: number;
  batchSetLines: number;
  /** SET lines per second the bench read from the floor program: the batch's, once a second */
  setLinesPerS: number;
  floorCpuPct: Measured;
  idleCpuPct: Measured;
  floorOwnMb: number | undefined;
  idleOwnMb: number | undefined;
}

/** The safety resync, made frequent with SYSTEMDUNITS_RESYNC_EVERY, in a run of the default job of its own. */
export interface ResyncFigures {
  everyS: number;
  /** units in the plugin's table, as its resync line says */
  units: number;
  /** the plugin's CPU for each resync (schedstat, its rate between resyncs subtracted), ms */
  cpuMs: number[];
  /** listed + completed, as its resync line says, ms */
  reportedMs: number[];
  /** own memory (median) after the start-up and before the first resync; then SETTLE_S after each */
  ownBeforeMb: number | undefined;
  ownAfterMb: number[];
  rssBeforeMb: number | undefined;
  rssAfterMb: number[];
  peakMb: number | undefined;
}

export interface NotMeasured {
  notMeasured: string;
}

export interface NeFigures {
  scrapes: number;
  errors: number;
  lastError: string;
  wallMs: number[];
  cpuMs: Measured[];
  busCostMs: Measured[];
  rssMb: number | undefined;
  rssPeakMb: number | undefined;
  unitsSeen: number;
  failedSeen: number;
}

export interface ExecFigures {
  runs: number;
  wallMs: number[];
  cpuMs: number[];
  busCostMs: Measured[];
  maxRssMb: number;
}

export interface PerN {
  n: number;
  mix: { plain: number; accept: number; failed: number; flip: number };
  /** the bench sockets' services systemd has loaded (in the default job's listing) */
  services: number;
  growS: number;
  idle: { seconds: number; systemdMsPerMin: number; dbusMsPerMin: number };
  /** the default job: every unit type, socket activity at its defaults */
  dflt: PluginFigures | NotMeasured;
  /** the same job with socket_activity: false */
  states: PluginFigures | NotMeasured;
  floor: FloorFigures | NotMeasured;
  resync: ResyncFigures | NotMeasured;
  standalone: PluginFigures | NotMeasured;
  ne: NeFigures;
  systemctl: ExecFigures;
  checkSystemd: ExecFigures | undefined;
  loadAvg: [number, number];
}

export interface RunInfo {
  date: string;
  commit: string;
  cpus: string;
  kernel: string;
  systemd: string;
  node: string;
  nodeExporter: string;
  checkSystemd: string;
  pid1NoFile: number;
  loadStart: number;
  loadEnd: number;
  seconds: number;
  warmS: number;
  resyncEveryS: number;
  flips: number;
  scrapes: number;
  quick: boolean;
  durationS: number;
}

const medianOf = (v: readonly Measured[]): Measured | undefined => {
  const m = median(v.map((x) => x.value));
  return m === undefined ? undefined : { value: m, resolution: v[0]?.resolution };
};

// ---- cells ----
type Mark = '✓' | '✗' | '';
export interface Row {
  /** a section heading row when set (cells ignored) */
  section?: string;
  figure: string;
  cells: string[];
  target: string;
}

export function fmt(v: number | undefined, digits = 0): string {
  if (v === undefined || !Number.isFinite(v)) return '-';
  return v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function fmtM(m: Measured | undefined, digits = 0): string {
  if (!m) return '-';
  if (m.resolution !== undefined && m.value < m.resolution) return `<${fmt(m.resolution, digits)}`;
  return fmt(m.value, digits);
}

/** peer / plugin; a lower bound (">") when the plugin's figure is below what can be measured */
export function ratio(peer: Measured | undefined, plugin: Measured | undefined): { value: number; lowerBound: boolean } | undefined {
  if (!peer || !plugin || !Number.isFinite(peer.value) || !Number.isFinite(plugin.value)) return undefined;
  const res = plugin.resolution ?? 0;
  if (plugin.value < res || plugin.value <= 0) {
    if (res <= 0 || peer.value < res) return undefined;
    return { value: peer.value / res, lowerBound: true };
  }
  return { value: peer.value / plugin.value, lowerBound: false };
}

function fmtRatio(r: ReturnType<typeof ratio>): string {
  if (!r) return '-';
  const v = r.value;
  return (r.lowerBound ? '>' : '') + (v >= 100 ? fmt(v) : v >= 10 ? fmt(v, 1) : fmt(v, 2)) + '×';
}

/**
 * Seconds after a listing (the start-up's, a resync's) at which memory counts as what the listing left
 * behind: the plugin's own GC runs 1 s after the sample that follows a listing, and V8 hands the
 * freed pages back to the OS within about 10 s (its memory reducer).
 */
export const SETTLE_S = 12;
/** Own memory after the last resync this much above before the first counts as lasting growth. */
export const GROWTH_TOLERANCE_MB = 1;

const mark = (ok: boolean | undefined): Mark => (ok === undefined ? '' : ok ? '✓' : '✗');
const withMark = (text: string, ok: boolean | undefined) => (ok === undefined || text === '-' ? text : `${text} ${mark(ok)}`);

// ---- the rows ----
export const measured = <T extends object>(c: T | NotMeasured): c is T => !('notMeasured' in c);

/** The issue's CPU target at N for the default job: ≤ 0.07% at 100, ≤ 0.1% at 10,000 (none between). */
export const cpuTargetPct = (n: number): number | undefined => (n === 100 ? 0.07 : n === 10000 ? 0.1 : undefined);

function pluginRows(title: string, runs: Array<PluginFigures | NotMeasured>, ns: number[], opts: { targets: boolean }): Row[] {
  const rows: Row[] = [{ section: title, figure: '', cells: [], target: '' }];
  if (runs.every((r) => !measured(r))) {
    const why = [...new Set(runs.map((r) => (r as NotMeasured).notMeasured))];
    rows.push({ figure: `not measured: ${why.join('; ')}`, cells: ns.map(() => 'n/m'), target: '' });
    return rows;
  }
  const t = opts.targets;
  const row = (figure: string, target: string, f: (p: PluginFigures, i: number) => string) =>
    rows.push({ figure, target, cells: runs.map((r, i) => (measured(r) ? f(r, i) : 'n/m')) });
  row('dimensions charted: bench sockets / their services / all', '', (p) => `${fmt(p.dims.sockets)}/${fmt(p.dims.services)}/${fmt(p.dims.total)}`);
  row('start-up: exec → first complete batch, ms', t ? '≤ 500 at 1k, ≤ 2,000 at 10k' : '', (p, i) =>
    withMark(fmt(p.startupMs), !t ? undefined : ns[i] === 1000 ? p.startupMs <= 500 : ns[i] === 10000 ? p.startupMs <= 2000 : undefined));
  row('start-up: plugin CPU, ms', '', (p) => fmtM(p.startupCpuMs));
  if (runs.some((r) => measured(r) && r.activity)) {
    row('every Accept=yes socket charted: s from exec / plugin CPU after the first batch, ms', '', (p) =>
      p.activity ? `${fmt(p.activity.wallS, 1)}${p.activity.complete ? '' : ` (only ${p.activity.charted})`}/${fmtM(p.activity.cpuMs)}` : '-');
  }
  row('steady window: s after exec, length s (load average at its start/end)', t ? '≥ 15, ≥ 60' : '', (p) =>
    withMark(`${fmt(p.window.startS)}, ${fmt(p.window.seconds)} (${fmt(p.window.loadAvg[0], 2)}/${fmt(p.window.loadAvg[1], 2)})`,
      t ? p.window.startS >= 15 && Math.round(p.window.seconds) >= 60 : undefined));
  row('steady CPU, % of one core', t ? '≤ 0.07 at 100, ≤ 0.1 at 10k' : '', (p, i) => {
    const target = t ? cpuTargetPct(ns[i]!) : undefined;
    return withMark(fmtM(p.cpuPct, 3), target === undefined ? undefined : p.cpuPct.value <= target);
  });
  row('  SET lines / kB written per second', '≈ dimensions', (p) => `${fmt(p.setLinesPerS)} / ${fmt(p.bytesPerS / 1024, 1)}`);
  row('own memory (RssAnon+RssShmem) steady, median MB', t ? '≤ 20 at 10k' : '', (p, i) =>
    withMark(fmt(p.ownSteadyMb, 1), t && ns[i] === 10000 && p.ownSteadyMb !== undefined ? p.ownSteadyMb <= 20 : undefined));
  row('RSS steady, median MB', '', (p) => fmt(p.rssSteadyMb, 1));
  row('RSS / own memory at the first batch (start-up transient), MB', '', (p) => `${fmt(p.rssFirstMb, 1)} / ${fmt(p.ownFirstMb, 1)}`);
  row('RSS peak (VmHWM) at the window\'s end, MB', t ? '≤ 90 at 10k' : '', (p, i) =>
    withMark(fmt(p.rssPeakMb, 1), t && ns[i] === 10000 && p.rssPeakMb !== undefined ? p.rssPeakMb <= 90 : undefined));
  if (runs.some((r) => measured(r) && r.latencyMs)) {
    row('detection latency, median ms', '', (p) => fmt(p.latencyMs && median(p.latencyMs)));
    row('detection latency, p95 ms', '≤ 1,000 at every N', (p) => {
      const p95 = p.latencyMs && quantile(p.latencyMs, 0.95);
      return withMark(fmt(p95), p95 === undefined ? undefined : p95 <= 1000 && p.latencyMissed === 0);
    });
    row('  flips timed (missed)', '≥ 20', (p) => (p.latencyMs ? `${p.latencyMs.length} (${p.latencyMissed})` : '-'));
  }
  if (runs.some((r) => measured(r) && r.reload)) {
    row('resync after a daemon-reload: plugin CPU, ms', '', (p) => (p.reload ? fmt(p.reload.pluginCpuMs) : 'not forced'));
    row(`  own memory / RSS ${SETTLE_S} s after it / peak since start, MB`, '', (p) =>
      p.reload ? `${fmt(p.reload.ownAfterMb, 1)} / ${fmt(p.reload.rssAfterMb, 1)} / ${fmt(p.reload.peakAfterMb, 1)}` : '-');
    row('  the daemon-reload itself: wall s / systemd+dbus CPU s', '', (p) => (p.reload ? `${fmt(p.reload.reloadMs / 1000, 1)}/${fmt(p.reload.reloadBusCpuS, 1)}` : '-'));
  }
  row('systemd + dbus-daemon CPU caused, ms/min', '', (p) => fmtM(p.busCostMsPerMin));
  return rows;
}

const pct = (m: Measured | undefined) => fmtM(m, 3);

export function buildRows(results: readonly PerN[]): Row[] {
  const ns = results.map((r) => r.n);
  const nePerMin = (r: PerN, pick: (ne: NeFigures) => Measured[]): Measured | undefined => {
    const m = medianOf(pick(r.ne));
    return m && { value: m.value * 4, resolution: m.resolution === undefined ? undefined : m.resolution * 4 };
  };
  const neBus = results.map((r) => nePerMin(r, (ne) => ne.busCostMs));
  const neCpu = results.map((r) => nePerMin(r, (ne) => ne.cpuMs));
  const rows: Row[] = [];
  rows.push({ figure: 'bench sockets (plain / Accept=yes / failed / flipped); their services loaded', target: '', cells: results.map((r) => `${r.mix.plain}/${r.mix.accept}/${r.mix.failed}/${r.mix.flip}; ${fmt(r.services)}`) });
  rows.push({ figure: 'started in, s', target: '', cells: results.map((r) => fmt(r.growS, 1)) });
  rows.push({ figure: 'load average (1 min) at the start / end of this N', target: '', cells: results.map((r) => `${fmt(r.loadAvg[0], 2)}/${fmt(r.loadAvg[1], 2)}`) });
  rows.push(...pluginRows('plugin, the default job: every unit type, socket activity at its defaults (update_every 1)', results.map((r) => r.dflt), ns, { targets: true }));

  // the floor program, and the ratios the issue asks for
  rows.push({ section: 'floor: floor.mjs writing the default job\'s batch, pre-rendered, once a second (same window as the states-only run)', figure: '', cells: [], target: '' });
  const fl = (f: (x: FloorFigures, r: PerN) => string) => results.map((r) => (measured(r.floor) ? f(r.floor, r) : 'n/m'));
  rows.push({ figure: 'the batch: bytes / SET lines (read back per second)', target: '', cells: fl((x) => `${fmt(x.batchBytes)} / ${fmt(x.batchSetLines)} (${fmt(x.setLinesPerS)})`) });
  rows.push({ figure: 'floor CPU, % of one core', target: '', cells: fl((x) => pct(x.floorCpuPct)) });
  rows.push({ figure: 'idle node waking once a second, % of one core', target: '', cells: fl((x) => pct(x.idleCpuPct)) });
  rows.push({ figure: 'own memory: floor / idle node, MB', target: '', cells: fl((x) => `${fmt(x.floorOwnMb, 1)} / ${fmt(x.idleOwnMb, 1)}`) });
  const floorRatio = (p: PluginFigures | NotMeasured, r: PerN, targets: boolean) => {
    if (!measured(p) || !measured(r.floor) || r.floor.floorCpuPct.value <= 0) return 'n/m';
    const q = p.cpuPct.value / r.floor.floorCpuPct.value;
    return withMark(`${fmt(q, 2)}×`, targets ? q <= 2 : undefined);
  };
  rows.push({ figure: 'plugin ÷ floor, steady CPU: the default job', target: '≤ 2×', cells: results.map((r) => floorRatio(r.dflt, r, true)) });
  rows.push({ figure: 'plugin ÷ floor, steady CPU: states only', target: '', cells: results.map((r) => floorRatio(r.states, r, false)) });
  rows.push({
    figure: 'the default job: plugin / floor / target, % of one core',
    target: '≤ 0.07 at 100, ≤ 0.1 at 10k',
    cells: results.map((r) => {
      const t = cpuTargetPct(r.n);
      return `${measured(r.dflt) ? pct(r.dflt.cpuPct) : 'n/m'} / ${measured(r.floor) ? pct(r.floor.floorCpuPct) : 'n/m'} / ${t === undefined ? '-' : `≤ ${t}`}`;
    }),
  });

  // the safety resync
  rows.push({ section: 'safety resync (the default job, SYSTEMDUNITS_RESYNC_EVERY; no daemon-reload)', figure: '', cells: [], target: '' });
  const rs = (f: (x: ResyncFigures, r: PerN) => string) => results.map((r) => (measured(r.resync) ? f(r.resync, r) : 'n/m'));
  if (results.every((r) => !measured(r.resync))) {
    const why = [...new Set(results.map((r) => (r.resync as NotMeasured).notMeasured))];
    rows.push({ figure: `not measured: ${why.join('; ')}`, target: '', cells: ns.map(() => 'n/m') });
  } else {
    rows.push({ figure: 'units listed (every s; resyncs timed)', target: '', cells: rs((x) => `${fmt(x.units)} (${x.everyS}; ${x.cpuMs.length})`) });
    // By place, not one median: V8 compiles the resync's code over the first ones (see resync-cpu.mts).
    rows.push({ figure: 'plugin CPU, the first safety resync, ms', target: '≤ 50 at 20,000 units', cells: rs((x) => {
      const v = x.cpuMs[0];
      return withMark(fmt(v), v === undefined || x.units < 19000 ? undefined : v <= 50);
    }) });
    rows.push({ figure: '  the later ones: median (max) ms', target: '≤ 50 at 20,000 units', cells: rs((x) => {
      const m = laterMedian(x.cpuMs);
      if (m === undefined) return '-'; // one resync timed (--resyncs 1)
      return withMark(`${fmt(m)} (${fmt(Math.max(...x.cpuMs.slice(1)))})`, x.units < 19000 ? undefined : m <= 50);
    }) });
    rows.push({ figure: '  as the plugin reports it: listed + completed, median ms', target: '', cells: rs((x) => fmt(median(x.reportedMs))) });
    rows.push({ figure: `own memory before the first / ${SETTLE_S} s after each, MB`, target: '≤ 20 at 10k', cells: rs((x, r) => {
      const last = x.ownAfterMb.at(-1);
      return withMark(`${fmt(x.ownBeforeMb, 1)} / ${x.ownAfterMb.map((v) => fmt(v, 1)).join(', ')}`, r.n === 10000 && last !== undefined ? Math.max(last, x.ownBeforeMb ?? 0) <= 20 : undefined);
    }) });
    rows.push({ figure: '  lasting growth: own memory after the last − before the first, MB', target: `none (≤ ${GROWTH_TOLERANCE_MB})`, cells: rs((x) => {
      const last = x.ownAfterMb.at(-1);
      if (last === undefined || x.ownBeforeMb === undefined) return '-';
      const d = last - x.ownBeforeMb;
      return withMark(`${d >= 0 ? '+' : ''}${fmt(d, 1)}`, d <= GROWTH_TOLERANCE_MB);
    }) });
    rows.push({ figure: `RSS before / ${SETTLE_S} s after each / peak, MB`, target: '', cells: rs((x) => `${fmt(x.rssBeforeMb, 1)} / ${x.rssAfterMb.map((v) => fmt(v, 1)).join(', ')} / ${fmt(x.peakMb, 1)}`) });
  }
  rows.push({
    figure: 'a daemon-reload costs the plugin X ms vs one listing Y ms (the first safety resync)',
    target: 'X ≤ Y',
    cells: results.map((r) => {
      const reload = measured(r.dflt) ? r.dflt.reload : undefined;
      if (!reload) return 'not run';
      // The reload's resync is its run's first: compared with the first safety resync (the same
      // code, compiled as far; see resync-cpu.mts).
      const listing = measured(r.resync) ? r.resync.cpuMs[0] : undefined;
      return withMark(`${fmt(reload.pluginCpuMs)} vs ${fmt(listing)}`, listing === undefined ? undefined : reload.pluginCpuMs <= listing);
    }),
  });

  rows.push(...pluginRows('plugin, states only (socket_activity: false), the same job otherwise', results.map((r) => r.states), ns, { targets: false }));
  rows.push(...pluginRows('the standalone executable (dist/release/systemdunits.plugin, through the launcher), the default job', results.map((r) => r.standalone), ns, { targets: false }));

  rows.push({ section: 'node_exporter, systemd collector only (bench sockets)', figure: '', cells: [], target: '' });
  rows.push({ figure: 'one scrape: wall time, median ms', target: '', cells: results.map((r) => fmt(median(r.ne.wallMs))) });
  rows.push({ figure: 'one scrape: node_exporter CPU, ms', target: '', cells: results.map((r) => fmtM(medianOf(r.ne.cpuMs))) });
  rows.push({ figure: 'one scrape: systemd + dbus-daemon CPU, ms', target: '', cells: results.map((r) => fmtM(medianOf(r.ne.busCostMs))) });
  rows.push({ figure: 'at a 15 s interval: node_exporter CPU, ms/min', target: '', cells: neCpu.map((m) => fmtM(m)) });
  rows.push({ figure: 'at a 15 s interval: systemd + dbus-daemon CPU, ms/min', target: '', cells: neBus.map((m) => fmtM(m)) });
  rows.push({ figure: 'RSS after the scrapes / peak, MB', target: '', cells: results.map((r) => `${fmt(r.ne.rssMb, 1)}/${fmt(r.ne.rssPeakMb, 1)}`) });
  rows.push({ figure: 'detection latency: 15 s interval + scrape, ms', target: '', cells: results.map((r) => `15,000 + ${fmt(median(r.ne.wallMs))}`) });
  rows.push({ figure: '  scrapes (errors); sockets reported (failed)', target: '', cells: results.map((r) => `${r.ne.scrapes} (${r.ne.errors}); ${r.ne.unitsSeen} (${r.ne.failedSeen})`) });

  rows.push({ section: 'systemctl: `systemctl list-units --type=socket --all` over dbus-daemon', figure: '', cells: [], target: '' });
  rows.push({ figure: 'one call: wall time, median ms', target: '', cells: results.map((r) => fmt(median(r.systemctl.wallMs))) });
  rows.push({ figure: 'one call: systemctl CPU, ms', target: '', cells: results.map((r) => fmt(median(r.systemctl.cpuMs))) });
  rows.push({ figure: 'one call: systemd + dbus-daemon CPU, ms', target: '', cells: results.map((r) => fmtM(medianOf(r.systemctl.busCostMs))) });

  if (results.some((r) => r.checkSystemd)) {
    rows.push({ section: 'check_systemd (one run, as root: private socket)', figure: '', cells: [], target: '' });
    rows.push({ figure: 'one run: wall time, median ms', target: '', cells: results.map((r) => fmt(median(r.checkSystemd?.wallMs ?? []))) });
    rows.push({ figure: 'one run: CPU of check_systemd and its children, ms', target: '', cells: results.map((r) => fmt(median(r.checkSystemd?.cpuMs ?? []))) });
    rows.push({ figure: 'one run: systemd + dbus-daemon CPU, ms', target: '', cells: results.map((r) => fmtM(medianOf(r.checkSystemd?.busCostMs ?? []))) });
  }

  rows.push({ section: 'ratios, node_exporter at 15 s ÷ plugin at 1 s, the default job (same run)', figure: '', cells: [], target: '' });
  const dflt = (r: PerN) => (measured(r.dflt) ? r.dflt : undefined);
  rows.push({ figure: 'systemd + dbus-daemon CPU per minute', target: '', cells: results.map((r, i) => fmtRatio(ratio(neBus[i], dflt(r)?.busCostMsPerMin))) });
  rows.push({
    figure: 'own CPU per minute',
    target: '',
    cells: results.map((r, i) => {
      const p = dflt(r);
      return fmtRatio(ratio(neCpu[i], p && { value: p.cpuPct.value * 600 }));
    }),
  });
  rows.push({
    figure: 'RSS (steady)',
    target: '',
    cells: results.map((r) => {
      const p = dflt(r)?.rssSteadyMb;
      return fmtRatio(ratio(r.ne.rssMb === undefined ? undefined : { value: r.ne.rssMb }, p === undefined ? undefined : { value: p }));
    }),
  });
  rows.push({
    figure: 'detection latency, median',
    target: '',
    cells: results.map((r) => {
      const ne = median(r.ne.wallMs);
      const l = dflt(r)?.latencyMs;
      const p = l && median(l);
      return fmtRatio(ne === undefined || p === undefined ? undefined : ratio({ value: 15000 + ne }, { value: p }));
    }),
  });
  return rows;
}

export function renderText(rows: readonly Row[], ns: readonly number[]): string {
  const head = ['', ...ns.map((n) => `N=${fmt(n)}`), 'target (issues 4, 14)'];
  const body = rows.map((r) => (r.section ? [r.section] : [r.figure, ...r.cells, r.target]));
  const widths = head.map((h, i) => Math.max([...h].length, ...body.filter((b) => b.length > 1).map((b) => [...(b[i] ?? '')].length)));
  const pad = (s: string, w: number, left: boolean) => {
    const n = w - [...s].length;
    return left ? s + ' '.repeat(Math.max(0, n)) : ' '.repeat(Math.max(0, n)) + s;
  };
  const line = (cells: string[]) => cells.map((c, i) => pad(c, widths[i]!, i === 0 || i === cells.length - 1)).join('  ').trimEnd();
  const out = [line(head), widths.map((w) => '-'.repeat(w)).join('  ')];
  for (const b of body) out.push(b.length === 1 ? `[${b[0]}]` : line(b));
  return out.join('\n');
}

export function renderMarkdown(rows: readonly Row[], ns: readonly number[]): string {
  const esc = (s: string) => s.replaceAll('|', '\\|');
  const out = [`| | ${ns.map((n) => `N=${fmt(n)}`).join(' | ')} | target (issues 4, 14) |`, `|---|${ns.map(() => '---:').join('|')}|---|`];
  for (const r of rows) {
    if (r.section) out.push(`| **${esc(r.section)}** |${ns.map(() => ' |').join('')} |`);
    else out.push(`| ${esc(r.figure.trim())} | ${r.cells.map(esc).join(' | ')} | ${esc(r.target)} |`);
  }
  return out.join('\n');
}

export function headerLines(info: RunInfo): string[] {
  const short = info.warmS < 15 || info.seconds < 60;
  return [
    `systemdunits.plugin benchmark, ${info.date}, commit ${info.commit}${info.quick ? ' (--quick)' : ''}`,
    `machine: ${info.cpus}, kernel ${info.kernel}; ${info.systemd} in a sandbox (PID 1 fd limit ${fmt(info.pid1NoFile)}); node ${info.node}; ` +
      `${info.nodeExporter}; ${info.checkSystemd}`,
    `load average ${fmt(info.loadStart, 2)} at start, ${fmt(info.loadEnd, 2)} at end (2 cores shared with other work: expect noise); ` +
      `steady windows from ${info.warmS} s after exec, ${info.seconds} s long${short ? ` (${info.quick ? 'quick: ' : ''}not the issue's windows: ≥ 15 s after launch, ≥ 60 s)` : ''}; ` +
      `${info.flips} flips, ${info.scrapes} scrapes per N; safety resync every ≥ ${info.resyncEveryS} s in its own run; took ${fmt(info.durationS / 60, 1)} min`,
  ];
}
