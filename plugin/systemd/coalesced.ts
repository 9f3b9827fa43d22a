// A piece of background work that must not run twice at once, and must not miss a request that
// came while it ran: a full resync, a round of reads of what is missing.

/**
 * Runs `work` now or, while a run is under way, once more right after it: any number of requests
 * during a run fold into that one extra run. Each caller gets the promise of the runs that cover
 * its request.
 */
export class CoalescedRun {
  private running: Promise<void> | undefined;
  private again = false;

  constructor(
    private readonly work: () => Promise<void>,
    /** Checked before an extra run: true once its owner has stopped. */
    private readonly stopped: () => boolean = () => false,
  ) {}

  get busy(): boolean {
    return this.running !== undefined;
  }

  request(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      try {
        do {
          this.again = false;
          await this.work();
        } while (this.again && !this.stopped());
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }
}
