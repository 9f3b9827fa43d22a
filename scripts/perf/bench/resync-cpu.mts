// The CPU of each resync from a trace of the plugin's CPU, one way for every script that times
// resyncs (bench.mts's safety resync, memory.mts): from a little before its listing (its
// `resync:` line is written when it completes and says how long it took) to 2.5 s after that line
// (the GC the plugin may run after a listing comes ~1 s after the next sample), less the plugin's
// rate outside every such window (socket counters, pings, the sample ticks), from `quietFrom` on.
//
// Resyncs are reported by their place in the run, not as one median: V8 compiles a resync's code
// over the first ones (the compare-in-place path never runs at start-up), so at 20,000 units the
// first safety resyncs 80 s apart cost 137 / 58 / 43 ms (load 0.5), while resyncs 5 s apart,
// from the 3rd on, cost 20-25 ms: a median of three is the second, half-compiled one; a median
// over many resyncs a few seconds apart is the later ones'. A plugin resyncs every 5 minutes for
// as long as it runs: the first is once per start, the later ones' cost depends on how much of the
// compiled code V8 keeps over 5 minutes.

/** The plugin's CPU used so far (ms) at time t (ms, performance.now()), oldest first. */
export interface CpuSample {
  t: number;
  ms: number;
}

/** A `resync: N units, … (listed in L ms, completed in C ms)` line, read at atMs (performance.now()). */
export interface ResyncLine {
  atMs: number;
  listedMs: number;
  completedMs: number;
}

/** How long before a resync's listing, and after its line, its window runs. */
export const BEFORE_MS = 300;
export const AFTER_MS = 2500;

export const windowOf = (r: ResyncLine): [number, number] => [r.atMs - r.listedMs - r.completedMs - BEFORE_MS, r.atMs + AFTER_MS];

/** CPU ms at t, interpolated between the samples around it. */
export function cpuAt(cpu: readonly CpuSample[], t: number): number {
  let i = cpu.findIndex((x) => x.t >= t);
  if (i < 0) i = cpu.length - 1;
  if (i === 0 || cpu[i]!.t === t) return cpu[i]!.ms;
  const a = cpu[i - 1]!;
  const b = cpu[i]!;
  return a.ms + ((b.ms - a.ms) * (t - a.t)) / (b.t - a.t);
}

/**
 * Each resync's CPU (ms, in the order given; NaN for one whose window the trace does not cover)
 * and the rate (CPU ms per ms) subtracted: the trace's outside every window, from quietFrom on.
 */
export function resyncCpu(cpu: readonly CpuSample[], resyncs: readonly ResyncLine[], quietFrom: number): { cpuMs: number[]; rate: number } {
  const windows = resyncs.map(windowOf);
  let quietMs = 0;
  let quietT = 0;
  for (let i = 1; i < cpu.length; i++) {
    const a = cpu[i - 1]!;
    const b = cpu[i]!;
    if (a.t < quietFrom || windows.some(([x, y]) => b.t > x && a.t < y)) continue;
    quietMs += b.ms - a.ms;
    quietT += b.t - a.t;
  }
  const rate = quietT > 0 ? quietMs / quietT : 0;
  const last = cpu.at(-1)?.t ?? -Infinity;
  const cpuMs = windows.map(([x, y]) => (y > last || x < (cpu[0]?.t ?? Infinity) ? NaN : Math.max(0, cpuAt(cpu, y) - cpuAt(cpu, x) - rate * (y - x))));
  return { cpuMs, rate };
}

/**
 * The first safety resync's CPU and the later ones' median, min and max: `first 85.0 ms; later
 * median 26.0 ms (18.0-31.0, 5)`. `firstIs`: which safety resync of the run cpuMs[0] is (1: the
 * first after the start-up's listing); a window that starts later has no first to report.
 */
export function firstAndLater(cpuMs: readonly number[], firstIs = 1): string {
  const later = (firstIs === 1 ? cpuMs.slice(1) : cpuMs).filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  const first = firstIs !== 1 ? `from safety resync #${firstIs} on` : Number.isFinite(cpuMs[0]) ? `first ${cpuMs[0]!.toFixed(1)} ms` : 'first not timed';
  if (later.length === 0) return first;
  return `${first}; ${firstIs === 1 ? 'later ' : ''}median ${later[later.length >> 1]!.toFixed(1)} ms (${later[0]!.toFixed(1)}-${later.at(-1)!.toFixed(1)}, ${later.length})`;
}

/** The median of the resyncs after the first (undefined when there are none). */
export function laterMedian(cpuMs: readonly number[]): number | undefined {
  const later = cpuMs.slice(1).filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  return later.length === 0 ? undefined : later[later.length >> 1];
}
