// Sample ticks: the first at once (charts appear as soon as the units are listed, not up to one
// interval later), then aligned to update_every boundaries of the wall clock (as the agent's own
// collectors are) and kept on the monotonic clock so clock steps cannot bunch or skip samples.
// The agent takes the shorter first interval from BEGIN's microseconds. A tick missed because the
// process was stalled is skipped, not replayed, and no two ticks come less than half a step apart.
// One timer object serves every tick (reused-timer.ts), re-armed for a whole step while the ticks
// come on time (see arm).

import { performance } from 'node:perf_hooks';
import { ReusedTimer } from './reused-timer.js';

export interface Clock {
  /** Monotonic milliseconds. */
  mono(): number;
  /** Wall-clock milliseconds since the epoch. */
  wall(): number;
}

export const systemClock: Clock = { mono: () => performance.now(), wall: () => Date.now() };

/** The monotonic time of the first tick: the next wall-clock multiple of `stepMs`. */
export function firstTick(clock: Clock, stepMs: number): number {
  return clock.mono() + (stepMs - (clock.wall() % stepMs));
}

/** The next tick strictly after `now` on the grid `anchor + k·stepMs`. */
export function nextTick(anchor: number, stepMs: number, now: number): number {
  const k = Math.floor((now - anchor) / stepMs) + 1;
  return anchor + Math.max(k, 0) * stepMs;
}

/**
 * How late against the grid a tick may come when its timer is simply re-armed for a whole step
 * (each such tick is a fraction of a millisecond later than the one before); past it, a timer is
 * set for the exact delay and the ticks are back on the grid.
 */
export const MAX_DRIFT_MS = 10;

export class Scheduler {
  private readonly timer = new ReusedTimer(() => this.fire());
  private running = false;
  private anchor = 0;
  private due = 0;

  constructor(
    private readonly everySec: number,
    /** Called with the monotonic time in microseconds. */
    private readonly onTick: (nowUs: number) => void,
    private readonly clock: Clock = systemClock,
  ) {}

  start(): void {
    const stepMs = this.everySec * 1000;
    this.anchor = firstTick(this.clock, stepMs);
    this.due = this.clock.mono();
    this.running = true;
    this.arm();
  }

  stop(): void {
    this.running = false;
    this.timer.clear();
  }

  /** `afterTick`: right after a tick, whose timer may be re-armed for a whole step. */
  private arm(afterTick = false): void {
    const stepMs = this.everySec * 1000;
    const delayMs = Math.max(0, this.due - this.clock.mono());
    // Within MAX_DRIFT_MS of a whole step: a whole step, so that the timer of the previous tick is
    // re-armed as it is (measured from this turn of the event loop, so the tick comes that much late).
    const onTime = afterTick && stepMs - delayMs >= 0 && stepMs - delayMs < MAX_DRIFT_MS;
    this.timer.set(onTime ? stepMs : delayMs);
  }

  private fire(): void {
    const now = this.clock.mono();
    // Timers may fire a hair early; never sample before the boundary.
    if (now < this.due - 0.5) return this.arm();
    this.onTick(Math.round(now * 1000));
    // At least half a step to the next tick: a tick that fired late (the process was starved of
    // CPU) would otherwise be followed a few ms later by the one on the next grid point, and the
    // agent would get two samples milliseconds apart.
    const stepMs = this.everySec * 1000;
    this.due = nextTick(this.anchor, stepMs, Math.max(this.clock.mono(), now + stepMs / 2));
    if (this.running) this.arm(true);
  }
}
