// plugin/memory.ts: the compacting GC after a listing runs only when the heap has grown since the
// last one (a resync that found nothing new leaves nothing to give back, and the GC would cost more
// than the resync).

import { afterEach, expect, it, vi } from 'vitest';

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
  delete (globalThis as { gc?: unknown }).gc;
});

/** plugin/memory.ts loaded afresh (it reads `gc` once, and keeps what the last compaction left) with `gc` as node's --expose-gc. */
async function memoryWith(gc: () => void): Promise<typeof import('../../plugin/memory.js')> {
  (globalThis as { gc?: unknown }).gc = gc;
  vi.resetModules();
  return import('../../plugin/memory.js');
}

/** What the plugin does after a listing: asks (twice, folded into one) and lets the settle time pass. */
async function afterListing(releaseMemorySoon: () => void): Promise<void> {
  releaseMemorySoon();
  releaseMemorySoon();
  await vi.advanceTimersByTimeAsync(2000);
}

it('compacts after the first listing, then only once the heap has grown by COMPACT_AFTER_GROWTH', async () => {
  vi.useFakeTimers();
  const gc = vi.fn();
  const { releaseMemorySoon, COMPACT_AFTER_GROWTH } = await memoryWith(gc);
  let heapTotal = 20 << 20;
  vi.spyOn(process, 'memoryUsage').mockImplementation(() => ({ rss: 60 << 20, heapTotal, heapUsed: heapTotal / 2, external: 0, arrayBuffers: 0 }));
  const listing = (): Promise<void> => afterListing(releaseMemorySoon);
  await listing();
  expect(gc).toHaveBeenCalledTimes(1);
  await listing(); // a resync that grew nothing
  expect(gc).toHaveBeenCalledTimes(1);
  heapTotal += COMPACT_AFTER_GROWTH - 1;
  await listing();
  expect(gc).toHaveBeenCalledTimes(1);
  heapTotal += 1;
  await listing();
  expect(gc).toHaveBeenCalledTimes(2);
});

it('compacts after a listing also when bus replies\' ArrayBuffers grew by COMPACT_AFTER_GROWTH while the heap stayed put', async () => {
  // What a resync at 1,000 units did: ~0.35 MB of reply buffers left each time, freed only by a
  // full GC, while V8's heap stayed the same size (own memory 13.5 -> 27 MB over 48 resyncs).
  vi.useFakeTimers();
  const gc = vi.fn();
  const { releaseMemorySoon, COMPACT_AFTER_GROWTH } = await memoryWith(gc);
  let arrayBuffers = 200 << 10;
  gc.mockImplementation(() => (arrayBuffers = 200 << 10)); // what a full GC leaves
  vi.spyOn(process, 'memoryUsage').mockImplementation(() => ({ rss: 60 << 20, heapTotal: 10 << 20, heapUsed: 6 << 20, external: arrayBuffers, arrayBuffers }));
  const listing = (): Promise<void> => afterListing(releaseMemorySoon);
  await listing();
  expect(gc).toHaveBeenCalledTimes(1);
  arrayBuffers += COMPACT_AFTER_GROWTH - 1;
  await listing();
  expect(gc).toHaveBeenCalledTimes(1);
  arrayBuffers += 1;
  await listing();
  expect(gc).toHaveBeenCalledTimes(2);
  await listing(); // the GC gave them back: nothing to do
  expect(gc).toHaveBeenCalledTimes(2);
});

it('compactIfGrown: a pass of bus calls compacts whenever the used heap grew by the given bytes since the last compaction, and not before', async () => {
  const gc = vi.fn();
  const { compactIfGrown } = await memoryWith(gc);
  let heapUsed = 6 << 20;
  gc.mockImplementation(() => (heapUsed = 16 << 20)); // what a GC leaves
  vi.spyOn(process, 'memoryUsage').mockImplementation(() => ({ rss: 60 << 20, heapTotal: 40 << 20, heapUsed, external: 0, arrayBuffers: 0 }));
  const growth = 8 << 20;
  compactIfGrown(growth); // less than that since start
  expect(gc).not.toHaveBeenCalled();
  heapUsed = 40 << 20; // a listing's garbage, before the pass
  compactIfGrown(growth);
  expect(gc).toHaveBeenCalledTimes(1);
  heapUsed = (16 << 20) + growth - 1;
  compactIfGrown(growth);
  expect(gc).toHaveBeenCalledTimes(1);
  heapUsed += 1;
  compactIfGrown(growth);
  expect(gc).toHaveBeenCalledTimes(2);
});
