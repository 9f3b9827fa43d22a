// The benchmark's report code (scripts/perf/bench): the tick the floor program replays, and the
// rows that hold the plugin against the floor and the targets.
import { describe, expect, it } from 'vitest';
import { oneTick } from '../../scripts/perf/bench/tools.mjs';
import { buildRows, type PerN, type PluginFigures } from '../../scripts/perf/bench/report.mjs';

describe('oneTick', () => {
  it('takes a whole burst between gaps, of median size, never the first or last (they may be cut)', () => {
    const chunks = [
      { atMs: 0, chunk: 'END\n' }, // the tail of a tick the capture started in
      { atMs: 1000, chunk: 'BEGIN a\nSET x = 1\n' },
      { atMs: 1001, chunk: 'END\n' },
      { atMs: 2000, chunk: 'BEGIN a\nSET x = 1\nEND\nBEGIN b\nSET y = 2\nEND\n' }, // a tick with a round of counters
      { atMs: 3000, chunk: 'BEGIN a\nSET x = 10\nEND\n' },
      { atMs: 4000, chunk: 'BEGIN a\nSET' }, // cut by the end of the capture
    ];
    expect(oneTick(chunks)).toBe('BEGIN a\nSET x = 10\nEND\n'); // sizes 22, 23, 45: the middle one
  });

  it('has nothing when no burst has a gap on both sides', () => {
    expect(oneTick([{ atMs: 0, chunk: 'BEGIN a\n' }, { atMs: 100, chunk: 'END\n' }])).toBeUndefined();
    expect(oneTick([])).toBeUndefined();
  });
});

const plugin = (cpuPct: number): PluginFigures => ({
  startupMs: 300,
  startupCpuMs: { value: 250 },
  window: { startS: 15, seconds: 60, loadAvg: [0.5, 0.6] },
  cpuPct: { value: cpuPct },
  setLinesPerS: 200,
  bytesPerS: 6000,
  dims: { sockets: 100, services: 98, total: 394 },
  rssFirstMb: 55,
  ownFirstMb: 14,
  rssSteadyMb: 54,
  ownSteadyMb: 12,
  rssPeakMb: 59,
  latencyMs: [500],
  latencyMissed: 0,
  reload: undefined,
  busCostMsPerMin: { value: 0 },
  charts: [],
  stray: [],
});

const perN = (n: number, dflt: number, floor: number): PerN => ({
  n,
  mix: { plain: n - 4, accept: 2, failed: 1, flip: 1 },
  services: n - 2,
  growS: 1,
  idle: { seconds: 10, systemdMsPerMin: 1, dbusMsPerMin: 1 },
  dflt: plugin(dflt),
  states: plugin(dflt / 2),
  floor: { window: { startS: 15, seconds: 60, loadAvg: [0.5, 0.6] }, batchBytes: 12000, batchSetLines: 388, setLinesPerS: 388, floorCpuPct: { value: floor }, idleCpuPct: { value: floor / 2 }, floorOwnMb: 6, idleOwnMb: 6 },
  resync: { notMeasured: 'the plugin ignores SYSTEMDUNITS_RESYNC_EVERY' },
  standalone: { notMeasured: 'absent' },
  ne: { scrapes: 1, errors: 0, lastError: '', wallMs: [100], cpuMs: [{ value: 90 }], busCostMs: [{ value: 70 }], rssMb: 20, rssPeakMb: 20, unitsSeen: n, failedSeen: 1 },
  systemctl: { runs: 1, wallMs: [10], cpuMs: [10], busCostMs: [{ value: 5 }], maxRssMb: 5 },
  checkSystemd: undefined,
  loadAvg: [0.5, 0.6],
});

const cells = (rows: ReturnType<typeof buildRows>, figure: string) => rows.find((r) => r.figure === figure)?.cells;

describe('buildRows', () => {
  it("holds the default job's CPU against the floor (≤ 2×) and the issue's targets at 100 and 10,000 only", () => {
    const rows = buildRows([perN(100, 0.06, 0.04), perN(1000, 0.5, 0.04), perN(10000, 0.25, 0.05)]);
    expect(cells(rows, 'plugin ÷ floor, steady CPU: the default job')).toEqual(['1.50× ✓', '12.50× ✗', '5.00× ✗']);
    expect(cells(rows, 'plugin ÷ floor, steady CPU: states only')).toEqual(['0.75×', '6.25×', '2.50×']);
    expect(cells(rows, 'steady CPU, % of one core')?.slice(0, 3)).toEqual(['0.060 ✓', '0.500', '0.250 ✗']);
  });

  it("marks the default job's window against the issue's (≥ 15 s after exec, ≥ 60 s long)", () => {
    const short = perN(1000, 0.5, 0.04);
    (short.dflt as PluginFigures).window = { startS: 5, seconds: 10, loadAvg: [1, 1] };
    const rows = buildRows([perN(100, 0.06, 0.04), short]);
    expect(cells(rows, 'steady window: s after exec, length s (load average at its start/end)')).toEqual(['15, 60 (0.50/0.60) ✓', '5, 10 (1.00/1.00) ✗']);
  });

  it('says why the safety resync was not measured instead of leaving figures out', () => {
    const rows = buildRows([perN(100, 0.06, 0.04)]);
    expect(rows.some((r) => r.figure === 'not measured: the plugin ignores SYSTEMDUNITS_RESYNC_EVERY')).toBe(true);
    expect(rows.some((r) => r.figure === 'not measured: absent')).toBe(true);
  });
});
