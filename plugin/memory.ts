// Gives memory back after a full listing of systemd's units. Decoding a reply of thousands of
// units, and reading each new unit once, briefly needs several times the memory the plugin keeps;
// V8 then keeps that heap for good unless a full, compacting GC runs while the process is quiet.
// The launcher starts node with --expose-gc for this; without it, this does nothing.

import { debugFor } from './log.js';

const debug = debugFor('memory');
const gc = (globalThis as { gc?: () => void }).gc;
/** Called after the first sample that follows a listing; a moment later all of it is garbage. */
const SETTLE_MS = 1000;
let timer: NodeJS.Timeout | undefined;

/** Asks for one compacting GC soon; calls meanwhile fold into it. */
export function releaseMemorySoon(): void {
  if (!gc || timer) return;
  timer = setTimeout(() => {
    timer = undefined;
    const before = process.memoryUsage.rss();
    gc();
    debug('compacted the heap: RSS %d → %d MB', Math.round(before / 2 ** 20), Math.round(process.memoryUsage.rss() / 2 ** 20));
  }, SETTLE_MS);
  timer.unref();
}
