// One timer object for a job that wakes again and again (the sample ticks, the watchdog): re-armed
// with refresh() when the delay is the one it was set with, a new setTimeout only when the delay
// changes. A new Timeout per wake-up (an object, a timer list, the event loop's reference toggled
// off and on) cost more than the rest of a tick at 100 units.

export class ReusedTimer {
  private timer: NodeJS.Timeout | undefined;
  /** The delay the timer was made with (refresh() re-arms it with the same). */
  private ms = -1;
  private waiting = false;
  /** Made once: a wake-up allocates no closure. */
  private readonly fire = (): void => {
    this.waiting = false;
    this.callback();
  };

  constructor(
    private readonly callback: () => void,
    /** Whether the timer alone may keep the process alive (false: unref'd). */
    private readonly keepsAlive = true,
  ) {}

  /** Set, and neither fired nor cleared since. */
  get pending(): boolean {
    return this.waiting;
  }

  /** Calls back in `ms` (replacing any earlier setting). */
  set(ms: number): void {
    this.waiting = true;
    if (this.timer !== undefined && this.ms === ms) {
      this.timer.refresh();
      return;
    }
    clearTimeout(this.timer);
    this.ms = ms;
    this.timer = setTimeout(this.fire, ms);
    if (!this.keepsAlive) this.timer.unref();
  }

  clear(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.waiting = false;
  }
}
