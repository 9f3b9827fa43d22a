// Waiting on conditions, for tests and scripts: poll a probe until it holds, within a deadline,
// and fail saying what was awaited and what was last seen. A fixed sleep is left for the two cases
// that have no condition: a span in which a test asserts that nothing happens, and a fault that
// lasts a set time (dbus gone for 15 s, systemd frozen for 10 s).

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface UntilOptions {
  /** default 10 s */
  timeoutMs?: number;
  /** between probes; default 50 ms */
  everyMs?: number;
  /** Checked after each probe that did not hold: a reason to give up at once (e.g. the process died). */
  abort?: () => string | undefined;
  /** Appended to the error (logs, state). */
  context?: () => string | Promise<string>;
  /** A probe that throws counts as not yet (e.g. an API not answering yet); by default it fails the wait. */
  retryOnError?: boolean;
}

type Maybe<T> = T | undefined | null | false;

/**
 * Polls `probe` until it returns a value other than undefined, null or false, and returns that
 * value.
 */
export async function until<T>(what: string, probe: () => Maybe<T> | Promise<Maybe<T>>, opts: UntilOptions = {}): Promise<T> {
  const { timeoutMs = 10_000, everyMs = 50 } = opts;
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== null && v !== false) return v;
      last = v;
    } catch (err) {
      if (!opts.retryOnError) throw err;
      last = err;
    }
    const stop = opts.abort?.();
    if (stop !== undefined) throw new Error(`${stop} while waiting for ${what}${await extra(opts)}`);
    if (Date.now() > deadline) {
      const why = last instanceof Error ? ` (last: ${last.message})` : last === undefined ? '' : ` (last: ${JSON.stringify(last)})`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}${await extra(opts)}`);
    }
    await sleep(everyMs);
  }
}

async function extra(opts: UntilOptions): Promise<string> {
  const c = await opts.context?.();
  return c ? `\n${c}` : '';
}
