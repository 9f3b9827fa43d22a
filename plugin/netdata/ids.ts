// Ids handed out to things that come and go (a unit's dimension, a socket's charts): derived from
// the thing's key by a clean-up function of each use, so they are stable across restarts; unique
// among the ids one allocator gave out; and bounded in memory however many keys pass through.

import { nameHash } from '../units/names.js';

/** How many ids of retired keys an allocator remembers (so a returning key gets its old id back). */
export const RETIRED_IDS_KEPT = 1000;

export class IdAllocator {
  /** Ids handed out, and to which key: the live ones and the latest retired. */
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
  idFor(key: string): string {
    let id = this.clean(key);
    const owner = this.owners.get(id);
    if (owner !== undefined && owner !== key) id = `${id}_${nameHash(key)}`;
    this.owners.set(id, key);
    return id;
  }

  /**
   * Forgets the oldest ids of retired keys beyond the `kept` latest. Keys named anew each time
   * (Accept=yes instances, transient units) would otherwise grow the map for as long as the plugin
   * runs. `live`: the keys in use, with the id each holds.
   */
  forgetRetired(live: ReadonlyMap<string, { readonly id: string }>): void {
    let excess = this.owners.size - live.size - this.kept;
    if (excess <= 0) return;
    for (const [id, owner] of this.owners) {
      if (live.get(owner)?.id === id) continue;
      this.owners.delete(id);
      if (--excess === 0) return;
    }
  }
}
