// Ids handed out to things that come and go (a unit's dimension, a socket's charts): derived from
// the thing's key by a clean-up function of each use, so they are stable across restarts; unique
// among the ids one allocator gave out; and bounded in memory however many keys pass through.

import { nameHash } from '../units/names.js';

/** How many ids of retired keys an allocator remembers (so a returning key gets its old id back). */
export const RETIRED_IDS_KEPT = 1000;

/** The keys in use, with the id each holds (a chart's dimensions): a map, or what answers like one. */
export interface LiveIds {
  get(key: string): { readonly id: string } | undefined;
}

export class IdAllocator {
  /**
   * Ids handed out, and to which key: the live ones and the latest retired. An id that is its key
   * itself (nearly every unit name) is left out while its key is live when idFor is told the live
   * keys: they answer for it then (at 20,000 dimensions this map was 0.9 MB of hash table).
   */
  private readonly owners = new Map<string, string>();

  constructor(
    /** The id a key gets when no other key cleaned up to it first. */
    private readonly clean: (key: string) => string,
    private readonly kept = RETIRED_IDS_KEPT,
  ) {}

  get size(): number {
    return this.owners.size;
  }

  /** The key an id was given to (live or among the latest retired). */
  ownerOf(id: string): string | undefined {
    return this.owners.get(id);
  }

  /**
   * The key's id: its clean form, or, if a different key already holds that, the clean form and a
   * short hash of the key (only keys that clean up alike can meet).
   */
  idFor(key: string, live?: LiveIds): string {
    const clean = this.clean(key);
    const owner = this.owners.get(clean) ?? (live?.get(clean)?.id === clean ? clean : undefined);
    const id = owner !== undefined && owner !== key ? `${clean}_${nameHash(key)}` : clean;
    if (id !== key || !live) this.owners.set(id, key);
    return id;
  }

  /** The key gave up its id (its dimension retired): the id is remembered among the latest retired. */
  retire(key: string, id: string): void {
    if (!this.owners.has(id)) this.owners.set(id, key);
  }

  /**
   * Forgets the oldest ids of retired keys beyond the `kept` latest. Keys named anew each time
   * (Accept=yes instances, transient units) would otherwise grow the map for as long as the plugin
   * runs. `live`: the keys in use, with the id each holds.
   */
  forgetRetired(live: LiveIds): void {
    let excess = this.owners.size - this.kept;
    if (excess <= 0) return;
    // Live ids among them are not retired (some live ids may not be stored at all: see owners).
    for (const [id, owner] of this.owners) if (live.get(owner)?.id === id) excess--;
    if (excess <= 0) return;
    for (const [id, owner] of this.owners) {
      if (live.get(owner)?.id === id) continue;
      this.owners.delete(id);
      if (--excess === 0) return;
    }
  }
}
