// Runs async work over many items with a bound on how many run at once, and an optional deadline
// after which no new item is started. Bus calls queue behind the bus's own cap anyway; this keeps
// one feature (a polling round, a function call) from taking every slot and delaying the unit
// lookups that keep the state charts right.

export interface LimitOptions {
  readonly concurrency: number;
  /** Monotonic ms (performance.now()); items not started by then are left undone. */
  readonly deadline?: number;
  /**
   * Also resolve at the deadline, with what is done by then, instead of waiting for the calls
   * under way (they finish in the background, bounded by the bus's call timeout).
   */
  readonly settleByDeadline?: boolean;
  readonly now?: () => number;
}

/**
 * Calls `fn` on every item, at most `concurrency` at a time. Resolves with the results by index;
 * an item whose call threw, or that was never started before the deadline, has `undefined`.
 */
export async function mapLimited<T, R>(
  items: readonly T[],
  options: LimitOptions,
  fn: (item: T) => Promise<R>,
): Promise<(R | undefined)[]> {
  const results: (R | undefined)[] = new Array(items.length).fill(undefined);
  const now = options.now ?? (() => performance.now());
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      if (options.deadline !== undefined && now() >= options.deadline) return;
      const i = next++;
      try {
        results[i] = await fn(items[i]!);
      } catch {
        results[i] = undefined;
      }
    }
  };
  const workers = Math.max(1, Math.min(options.concurrency, items.length));
  const all = Promise.all(Array.from({ length: workers }, worker));
  if (options.settleByDeadline && options.deadline !== undefined) {
    await withDeadline(all, options.deadline, undefined);
    return [...results];
  }
  await all;
  return results;
}

/** The promise's value, or `fallback` if it has not settled by the deadline (monotonic ms). */
export async function withDeadline<T, F>(promise: Promise<T>, deadline: number, fallback: F): Promise<T | F> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<F>((resolve) => {
    timer = setTimeout(() => resolve(fallback), Math.max(0, deadline - performance.now()));
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}
