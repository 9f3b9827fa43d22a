import { describe, expect, it } from 'vitest';
import { firstAndLater, laterMedian, resyncCpu, type CpuSample } from '../../scripts/perf/bench/resync-cpu.mjs';

/** A trace every 100 ms over `seconds`: 1 ms of CPU a second, plus `bursts` (at t, ms). */
function trace(seconds: number, bursts: [number, number][]): CpuSample[] {
  const out: CpuSample[] = [];
  for (let t = 0; t <= seconds * 1000; t += 100) {
    const extra = bursts.filter(([at]) => at <= t).reduce((s, [, ms]) => s + ms, 0);
    out.push({ t, ms: t / 1000 + extra });
  }
  return out;
}

describe('resyncCpu', () => {
  it('gives each resync its burst, less the rate outside every window', () => {
    // resyncs whose listings began at 10 s and 30 s (lines 40 ms later), costing 80 and 20 ms
    const cpu = trace(60, [[10_050, 80], [30_050, 20]]);
    const lines = [10_000, 30_000].map((begin) => ({ atMs: begin + 40, listedMs: 30, completedMs: 10 }));
    const { cpuMs, rate } = resyncCpu(cpu, lines, 0);
    expect(rate).toBeCloseTo(0.001, 6);
    expect(cpuMs[0]).toBeCloseTo(80, 1);
    expect(cpuMs[1]).toBeCloseTo(20, 1);
  });

  it('leaves a resync whose window the trace does not cover untimed', () => {
    const cpu = trace(11, [[10_050, 80]]);
    const { cpuMs } = resyncCpu(cpu, [{ atMs: 10_040, listedMs: 30, completedMs: 10 }], 0);
    expect(cpuMs[0]).toBeNaN();
  });
});

describe('firstAndLater', () => {
  it('reports the first safety resync apart from the median of the later ones', () => {
    expect(firstAndLater([85, 56, 26, 24])).toBe('first 85.0 ms; later median 26.0 ms (24.0-56.0, 3)');
    expect(laterMedian([85, 56, 26, 24])).toBe(26);
    expect(firstAndLater([30, 20], 3)).toBe('from safety resync #3 on; median 30.0 ms (20.0-30.0, 2)');
  });
});
