import { afterEach, describe, expect, it, vi } from 'vitest';
import { MAX_DRIFT_MS, Scheduler, firstTick, nextTick, type Clock } from '../../plugin/scheduler.js';

describe('tick planning', () => {
  it('aligns the first tick to the next wall-clock boundary', () => {
    const clock: Clock = { mono: () => 500, wall: () => 1_700_000_000_300 };
    expect(firstTick(clock, 1000)).toBe(1200);
    expect(firstTick({ mono: () => 0, wall: () => 10_000 }, 5000)).toBe(5000);
  });

  it('skips ticks missed while stalled instead of replaying them', () => {
    expect(nextTick(1000, 1000, 1000)).toBe(2000);
    expect(nextTick(1000, 1000, 1999.9)).toBe(2000);
    expect(nextTick(1000, 1000, 5300)).toBe(6000);
    expect(nextTick(1000, 1000, 400)).toBe(1000);
  });
});

/**
 * A Scheduler of 1 s on fake timers and a fake clock whose wall time is `wallOffsetMs` past a
 * whole second at start; `step(ms)` moves both clocks on together.
 */
function runScheduler(wallOffsetMs: number): { ticks: number[]; step: (ms: number) => void; stop: () => void } {
  vi.useFakeTimers();
  let mono = 0;
  const clock: Clock = { mono: () => mono, wall: () => 1_000_000 + wallOffsetMs + mono };
  const ticks: number[] = [];
  const s = new Scheduler(1, (us) => ticks.push(us), clock);
  s.start();
  const step = (ms: number) => {
    mono += ms;
    vi.advanceTimersByTime(ms);
  };
  return { ticks, step, stop: () => s.stop() };
}

describe('Scheduler', () => {
  afterEach(() => vi.useRealTimers());

  it('ticks at once, then once per step on the grid, with monotonic microseconds', () => {
    const { ticks, step, stop } = runScheduler(250);
    for (let i = 0; i < 3500; i += 10) step(10);
    stop();
    expect(ticks).toEqual([10_000, 750_000, 1_750_000, 2_750_000]);
  });

  it('leaves at least half a step after a tick that fired late, rather than tick again at once', () => {
    const { ticks, step, stop } = runScheduler(300);
    step(1); // the first tick, at once; the grid is 700, 1700, 2700…
    step(699); // 700: on time
    step(1995); // starved: the timer due at 1700 fires at 2695, 5 ms before the next grid point
    for (let i = 0; i < 2000; i++) step(1);
    stop();
    expect(ticks.slice(0, 3)).toEqual([1_000, 700_000, 2_695_000]);
    expect(ticks[3]).toBe(3_700_000); // not 2,700,000: 5 ms after the late one
    for (let i = 1; i < ticks.length; i++) expect(ticks[i]! - ticks[i - 1]!).toBeGreaterThanOrEqual(500_000);
  });

  it('re-arms one timer while the ticks come on time, and comes back to the grid before they drift MAX_DRIFT_MS', () => {
    vi.useFakeTimers();
    // Counted by a wrapper of our own, not vi.spyOn: vitest keeps a spy in its registry after
    // mockRestore(), and another file's restoreAllMocks (the same worker: isolate is off) then put
    // this fake setTimeout back on globalThis for good, and that file's timers never fired.
    const fakeSetTimeout = globalThis.setTimeout;
    let made = 0;
    globalThis.setTimeout = ((...args: Parameters<typeof setTimeout>) => (made++, fakeSetTimeout(...args))) as typeof setTimeout;
    let mono = 0;
    // Each tick takes 1 ms: the re-armed timer, measured from when the tick began, comes 1 ms later each time.
    const clock: Clock = { mono: () => mono, wall: () => 1_000_000 + mono };
    const ticks: number[] = [];
    const s = new Scheduler(1, (us) => (ticks.push(us / 1000), (mono += 1)), clock);
    s.start();
    try {
      for (let i = 0; i < 100_000; i++) {
        mono += 1;
        vi.advanceTimersByTime(1);
      }
    } finally {
      s.stop();
      globalThis.setTimeout = fakeSetTimeout; // before useRealTimers puts the real one back
    }
    expect(ticks.length).toBeGreaterThanOrEqual(98);
    const late = ticks.slice(1).map((t) => t % 1000);
    expect(Math.max(...late)).toBeLessThanOrEqual(MAX_DRIFT_MS);
    expect(late.filter((l) => l === 0).length).toBeGreaterThanOrEqual(5); // back on the grid now and then
    expect(made).toBeLessThan(ticks.length / 3); // a new timer per tick before
  });

  it('does not tick after stop', () => {
    vi.useFakeTimers();
    const ticks: number[] = [];
    const s = new Scheduler(1, (us) => ticks.push(us));
    s.start();
    s.stop();
    vi.advanceTimersByTime(5000);
    expect(ticks).toEqual([]);
  });
});
