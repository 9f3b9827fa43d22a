// Runs async work over many items with a bound on how many run at once, and an optional deadline
// after which no new item is started. Bus calls queue behind the bus's own cap anyway; this keeps
// one feature (a polling round, a function call) from taking every slot and delaying the unit
// lookups that keep the state charts right.

export interface LimitOptions {
  readonly concurrency: number;
  /** Monotonic ms (performance.now()); items not started by then are left undone. */
  readonly deadline?: number;
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
  await Promise.all(Array.from({ length: workers }, worker));
  return results;
}
