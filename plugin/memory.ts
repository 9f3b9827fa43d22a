// Gives memory back after a full listing of systemd's units. Decoding a reply of thousands of
// units, and reading each new unit once, briefly needs several times the memory the plugin keeps;
// V8 then keeps that heap for good unless a full, compacting GC runs while the process is quiet.
// The launcher starts node with --expose-gc for this; without it, this does nothing.
//
// Only when there is something to give back: a resync that found nothing new is compared in
// place (no copy of the units) and leaves the heap as it was, and a compacting GC of 20,000 units'
// model would cost more CPU than that resync itself. "Something" is heap V8 committed, or bytes
// of ArrayBuffers (bus replies) that only a full GC frees: at 1,000 units each resync left ~0.35 MB
// of them while the heap stayed put, 13.5 -> 27 MB of own memory over 48 resyncs (such replies are
// now given back at once, see RawBody.release; this stays for any that are not).

import { debugFor } from './log.js';

const debug = debugFor('memory');
const gc = (globalThis as { gc?: (options?: { type?: 'major' | 'minor' }) => void }).gc;
/** Called after the first sample that follows a listing; a moment later all of it is garbage. */
const SETTLE_MS = 1000;
/** Heap grown by less than this since the last compaction: left as it is. */
export const COMPACT_AFTER_GROWTH = 1 << 20;
let timer: NodeJS.Timeout | undefined;
/** The heap V8 had committed right after the last compaction; 0 before the first. */
let compactedHeap = 0;
/** The heap's used bytes right after the last compaction; 0 before the first. */
let compactedUsed = 0;
/** ArrayBuffers' bytes (outside V8's heap) right after the last compaction. */
let compactedBuffers = 0;

/** Asks for one compacting GC soon (if the heap grew since the last one); calls meanwhile fold into it. */
export function releaseMemorySoon(): void {
  if (!gc || timer) return;
  timer = setTimeout(() => {
    timer = undefined;
    const before = process.memoryUsage();
    if (compactedHeap > 0 && before.heapTotal < compactedHeap + COMPACT_AFTER_GROWTH && before.arrayBuffers < compactedBuffers + COMPACT_AFTER_GROWTH) {
      debug('heap %d MB, buffers %d MB, as after the last compaction: not compacted', Math.round(before.heapTotal / 2 ** 20), Math.round(before.arrayBuffers / 2 ** 20));
      return;
    }
    compact();
    debug('compacted the heap: RSS %d → %d MB', Math.round(before.rss / 2 ** 20), Math.round(process.memoryUsage().rss / 2 ** 20));
  }, SETTLE_MS);
  timer.unref();
}

/**
 * A compacting GC now if the heap's used bytes grew by `growth` since the last compaction (any:
 * this one's or releaseMemorySoon's). For long passes of bus calls (the Accept reads at start),
 * whose garbage V8 allocates straight in its old space and keeps until a full GC.
 */
export function compactIfGrown(growth: number): void {
  if (!gc) return;
  const used = process.memoryUsage().heapUsed;
  if (used < compactedUsed + growth) return;
  const after = compact();
  debug('compacted the heap during a pass: %d → %d MB used', Math.round(used / 2 ** 20), Math.round(after.heapUsed / 2 ** 20));
}

/** A full GC, and what it left, for the next "has it grown since" check. */
function compact(): NodeJS.MemoryUsage {
  gc!();
  const after = process.memoryUsage();
  compactedHeap = after.heapTotal;
  compactedUsed = after.heapUsed;
  compactedBuffers = after.arrayBuffers;
  return after;
}

/**
 * A young-generation GC now (about a millisecond): frees what just became garbage there, such as a
 * listing reply's bytes, which V8 frees only with the young object holding them.
 */
export function releaseYoungNow(): void {
  gc?.({ type: 'minor' });
}
