// The figures of one run and the one table they are printed as: a row per figure, a column per N,
// the issue's target last; plain text for the terminal, markdown for the README.
import { median, quantile } from './proc.mjs';

/** CPU from /proc and getrusage counts in clock ticks: a value below one tick is shown as "<tick". */
export interface Measured {
  value: number;
  /** smallest non-zero amount the measurement can see, same unit */
  resolution?: number;
}

export interface PluginFigures {
  /** exec → first complete batch */
  startupMs: number;
  startupCpuMs: Measured | undefined;
  latencyMs: number[];
  /** failures whose SET … = 5 never arrived (within 10 s) */
  latencyMissed: number;
  cpuPct: Measured;
  setLinesPerS: number;
  /** the moment the first complete batch is read: the start-up peak, before any GC gives it back */
  rssFirstMb: number | undefined;
  /** SETTLE_S after the first batch: what the initial snapshot leaves behind */
  rssSettledMb: number | undefined;
  rssSteadyMb: number | undefined;
  rssAfterResyncMb: number | undefined;
  rssPeakMb: number | undefined;
  /** the forced resync; undefined when not forced (counters run) or it failed */
  resync: { reloadMs: number; reloadBusCpuS: number; pluginReportedMs: number | undefined; cpuMs: Measured } | undefined;
  /** systemd + dbus-daemon CPU over the steady window, minus the idle rate, per minute */
  busCostMsPerMin: Measured;
  charts: string[];
  /** protocol lines the agent would reject */
  stray: string[];
  /** counters run: from exec until every Accept=yes socket had its charts (Accept read of every socket, then reads in turns) */
  activity?: { wallS: number; cpuMs: Measured; complete: boolean; charted: number };
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
  growS: number;
  idle: { seconds: number; systemdMsPerMin: number; dbusMsPerMin: number };
  states: PluginFigures;
  /** figures, or why there are none */
  counters: PluginFigures | { notMeasured: string };
  ne: NeFigures;
  floor: ExecFigures;
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
 * Seconds after the first batch (and after a resync) at which RSS counts as what the listing left
 * behind: the plugin's own GC runs 1 s after the sample that follows a listing, and V8 hands the
 * freed pages back to the OS within about 10 s (its memory reducer).
 */
export const SETTLE_S = 12;

const mark = (ok: boolean | undefined): Mark => (ok === undefined ? '' : ok ? '✓' : '✗');
const withMark = (text: string, ok: boolean | undefined) => (ok === undefined || text === '-' ? text : `${text} ${mark(ok)}`);

// ---- the rows ----
const isPlugin = (c: PerN['counters']): c is PluginFigures => !('notMeasured' in c);

function pluginRows(title: string, runs: Array<PluginFigures | { notMeasured: string }>, ns: number[], neBusPerMin: Array<Measured | undefined>): Row[] {
  const rows: Row[] = [{ section: title, figure: '', cells: [], target: '' }];
  const missing = runs.find((r) => !isPlugin(r)) as { notMeasured: string } | undefined;
  if (missing && runs.every((r) => !isPlugin(r))) {
    rows.push({ figure: 'NOT MEASURED (see the note below the table)', cells: ns.map(() => 'n/m'), target: '' });
    return rows;
  }
  const row = (figure: string, target: string, f: (p: PluginFigures, i: number) => string) =>
    rows.push({ figure, target, cells: runs.map((r, i) => (isPlugin(r) ? f(r, i) : 'n/m')) });
  row('start-up: exec → first complete batch, ms', '≤ 500 at 1k, ≤ 2,000 at 10k', (p, i) =>
    withMark(fmt(p.startupMs), ns[i] === 1000 ? p.startupMs <= 500 : ns[i] === 10000 ? p.startupMs <= 2000 : undefined));
  row('start-up: plugin CPU, ms', '', (p) => fmtM(p.startupCpuMs));
  if (runs.some((r) => isPlugin(r) && r.activity)) {
    row('every Accept=yes socket charted: s from exec / plugin CPU after the first batch, ms', '', (p) =>
      p.activity ? `${fmt(p.activity.wallS, 1)}${p.activity.complete ? '' : ` (only ${p.activity.charted})`}/${fmtM(p.activity.cpuMs)}` : '-');
  }
  row('detection latency, median ms', '', (p) => fmt(median(p.latencyMs)));
  row('detection latency, p95 ms', '≤ 1,000 at every N', (p) => {
    const p95 = quantile(p.latencyMs, 0.95);
    return withMark(fmt(p95), p95 === undefined ? undefined : p95 <= 1000 && p.latencyMissed === 0);
  });
  row('  flips timed (missed)', '≥ 20', (p) => `${p.latencyMs.length} (${p.latencyMissed})`);
  row('steady CPU, % of one core', '≤ 0.5 at 10k', (p, i) => withMark(fmtM(p.cpuPct, 2), ns[i] === 10000 ? p.cpuPct.value <= 0.5 : undefined));
  row('  SET lines written per second', '≈ N', (p) => fmt(p.setLinesPerS));
  row('RSS at the first batch (start-up transient), MB', '', (p) => fmt(p.rssFirstMb, 1));
  row(`RSS after the initial snapshot (${SETTLE_S} s on), MB`, '≤ 64 at 10k', (p, i) => withMark(fmt(p.rssSettledMb, 1), ns[i] === 10000 && p.rssSettledMb !== undefined ? p.rssSettledMb <= 64 : undefined));
  row('RSS steady (median), MB', '≤ 64 at 10k', (p, i) => withMark(fmt(p.rssSteadyMb, 1), ns[i] === 10000 && p.rssSteadyMb !== undefined ? p.rssSteadyMb <= 64 : undefined));
  row(`RSS after a resync (daemon-reload; ${SETTLE_S} s on), MB`, '≤ 64 at 10k', (p, i) =>
    withMark(p.resync ? fmt(p.rssAfterResyncMb, 1) : 'not forced', ns[i] === 10000 && p.rssAfterResyncMb !== undefined ? p.rssAfterResyncMb <= 64 : undefined));
  row('RSS peak (VmHWM), MB', '', (p) => fmt(p.rssPeakMb, 1));
  row('resync after daemon-reload: plugin CPU, ms', '', (p) => (p.resync ? fmtM(p.resync.cpuMs) : 'not forced'));
  row('  the daemon-reload itself: wall s / systemd+dbus CPU s', '', (p) => (p.resync ? `${fmt(p.resync.reloadMs / 1000, 1)}/${fmt(p.resync.reloadBusCpuS, 1)}` : '-'));
  row('systemd + dbus-daemon CPU caused, ms/min', '≤ node_exporter/100 at 5k', (p, i) => {
    const ne = neBusPerMin[i];
    return withMark(fmtM(p.busCostMsPerMin), ns[i] === 5000 && ne ? Math.max(p.busCostMsPerMin.value, 0) <= ne.value / 100 : undefined);
  });
  return rows;
}

export function buildRows(results: readonly PerN[]): Row[] {
  const ns = results.map((r) => r.n);
  const nePerMin = (r: PerN, pick: (ne: NeFigures) => Measured[]): Measured | undefined => {
    const m = medianOf(pick(r.ne));
    return m && { value: m.value * 4, resolution: m.resolution === undefined ? undefined : m.resolution * 4 };
  };
  const neBus = results.map((r) => nePerMin(r, (ne) => ne.busCostMs));
  const neCpu = results.map((r) => nePerMin(r, (ne) => ne.cpuMs));
  const rows: Row[] = [];
  rows.push({ figure: 'bench sockets (plain / Accept=yes / failed / flipped)', target: '', cells: results.map((r) => `${r.mix.plain}/${r.mix.accept}/${r.mix.failed}/${r.mix.flip}`) });
  rows.push({ figure: 'started in, s', target: '', cells: results.map((r) => fmt(r.growS, 1)) });
  rows.push({ figure: 'load average (1 min) before / after', target: '', cells: results.map((r) => `${fmt(r.loadAvg[0], 2)}/${fmt(r.loadAvg[1], 2)}`) });
  rows.push(...pluginRows('plugin, unit states only (update_every 1)', results.map((r) => r.states), ns, neBus));
  rows.push(...pluginRows('plugin, the default: states + socket counters (every 10 s, ≤ 40 sockets a round)', results.map((r) => r.counters), ns, neBus));

  rows.push({ section: 'node_exporter, systemd collector only (bench sockets)', figure: '', cells: [], target: '' });
  rows.push({ figure: 'one scrape: wall time, median ms', target: '', cells: results.map((r) => fmt(median(r.ne.wallMs))) });
  rows.push({ figure: 'one scrape: node_exporter CPU, ms', target: '', cells: results.map((r) => fmtM(medianOf(r.ne.cpuMs))) });
  rows.push({ figure: 'one scrape: systemd + dbus-daemon CPU, ms', target: '', cells: results.map((r) => fmtM(medianOf(r.ne.busCostMs))) });
  rows.push({ figure: 'at a 15 s interval: node_exporter CPU, ms/min', target: '', cells: neCpu.map((m) => fmtM(m)) });
  rows.push({ figure: 'at a 15 s interval: systemd + dbus-daemon CPU, ms/min', target: '', cells: neBus.map((m) => fmtM(m)) });
  rows.push({ figure: 'RSS after the scrapes / peak, MB', target: '', cells: results.map((r) => `${fmt(r.ne.rssMb, 1)}/${fmt(r.ne.rssPeakMb, 1)}`) });
  rows.push({ figure: 'detection latency: 15 s interval + scrape, ms', target: '', cells: results.map((r) => `15,000 + ${fmt(median(r.ne.wallMs))}`) });
  rows.push({ figure: '  scrapes (errors); sockets reported (failed)', target: '', cells: results.map((r) => `${r.ne.scrapes} (${r.ne.errors}); ${r.ne.unitsSeen} (${r.ne.failedSeen})`) });

  rows.push({ section: 'floor: `systemctl list-units --type=socket --all` over dbus-daemon', figure: '', cells: [], target: '' });
  rows.push({ figure: 'one call: wall time, median ms', target: '', cells: results.map((r) => fmt(median(r.floor.wallMs))) });
  rows.push({ figure: 'one call: systemctl CPU, ms', target: '', cells: results.map((r) => fmt(median(r.floor.cpuMs))) });
  rows.push({ figure: 'one call: systemd + dbus-daemon CPU, ms', target: '', cells: results.map((r) => fmtM(medianOf(r.floor.busCostMs))) });

  if (results.some((r) => r.checkSystemd)) {
    rows.push({ section: 'check_systemd (one run, as root: private socket)', figure: '', cells: [], target: '' });
    rows.push({ figure: 'one run: wall time, median ms', target: '', cells: results.map((r) => fmt(median(r.checkSystemd?.wallMs ?? []))) });
    rows.push({ figure: 'one run: CPU of check_systemd and its children, ms', target: '', cells: results.map((r) => fmt(median(r.checkSystemd?.cpuMs ?? []))) });
    rows.push({ figure: 'one run: systemd + dbus-daemon CPU, ms', target: '', cells: results.map((r) => fmtM(medianOf(r.checkSystemd?.busCostMs ?? []))) });
  }

  rows.push({ section: 'ratios, node_exporter at 15 s ÷ plugin at 1 s (same run)', figure: '', cells: [], target: '' });
  const pluginCpuPerMin = (p: PluginFigures): Measured => ({ value: p.cpuPct.value * 600, resolution: p.cpuPct.resolution === undefined ? undefined : p.cpuPct.resolution * 600 });
  rows.push({
    figure: 'systemd + dbus-daemon CPU per minute, states only',
    target: '≥ 100× at 5k',
    cells: results.map((r, i) => {
      const q = ratio(neBus[i], r.states.busCostMsPerMin);
      return withMark(fmtRatio(q), r.n === 5000 && q ? q.value >= 100 : undefined);
    }),
  });
  rows.push({
    figure: 'systemd + dbus-daemon CPU per minute, counters on',
    target: '',
    cells: results.map((r, i) => (isPlugin(r.counters) ? fmtRatio(ratio(neBus[i], r.counters.busCostMsPerMin)) : 'n/m')),
  });
  rows.push({ figure: 'own CPU per minute, states only', target: '', cells: results.map((r, i) => fmtRatio(ratio(neCpu[i], pluginCpuPerMin(r.states)))) });
  rows.push({
    figure: 'RSS (steady)',
    target: '',
    cells: results.map((r) => fmtRatio(ratio(r.ne.rssMb === undefined ? undefined : { value: r.ne.rssMb }, r.states.rssSteadyMb === undefined ? undefined : { value: r.states.rssSteadyMb }))),
  });
  rows.push({
    figure: 'detection latency, median',
    target: '',
    cells: results.map((r) => {
      const ne = median(r.ne.wallMs);
      const p = median(r.states.latencyMs);
      return fmtRatio(ne === undefined || p === undefined ? undefined : ratio({ value: 15000 + ne }, { value: p }));
    }),
  });
  return rows;
}

export function renderText(rows: readonly Row[], ns: readonly number[]): string {
  const head = ['', ...ns.map((n) => `N=${fmt(n)}`), 'target (issue 4)'];
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
  const out = [`| | ${ns.map((n) => `N=${fmt(n)}`).join(' | ')} | target (issue 4) |`, `|---|${ns.map(() => '---:').join('|')}|---|`];
  for (const r of rows) {
    if (r.section) out.push(`| **${esc(r.section)}** |${ns.map(() => ' |').join('')} |`);
    else out.push(`| ${esc(r.figure.trim())} | ${r.cells.map(esc).join(' | ')} | ${esc(r.target)} |`);
  }
  return out.join('\n');
}

export function headerLines(info: RunInfo): string[] {
  return [
    `systemdunits.plugin benchmark, ${info.date}, commit ${info.commit}${info.quick ? ' (--quick)' : ''}`,
    `machine: ${info.cpus}, kernel ${info.kernel}; ${info.systemd} in a sandbox (PID 1 fd limit ${fmt(info.pid1NoFile)}); node ${info.node}; ` +
      `${info.nodeExporter}; ${info.checkSystemd}`,
    `load average ${fmt(info.loadStart, 2)} at start, ${fmt(info.loadEnd, 2)} at end (2 cores shared with other work: expect noise); ` +
      `steady windows ${info.seconds} s, ${info.flips} flips, ${info.scrapes} scrapes per N; took ${fmt(info.durationS / 60, 1)} min`,
  ];
}
