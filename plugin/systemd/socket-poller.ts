// Reads the connection counters of Accept=yes sockets into the unit model (`unit.counters`). The
// counters are never signalled, so this is the plugin's one poll: the sample loop asks for a round
// every `socket_activity_every` seconds, for the sockets a job charts the activity of; a round reads
// a bounded number at a time, is cut short at its interval's end, and reads nothing while systemd
// is out of reach (the charts show a gap).

import { debugFor } from '../log.js';
import { unitPath } from '../units/names.js';
import type { Unit } from '../units/table.js';
import { mapLimited } from './limit.js';
import type { SystemdLink } from './link.js';
import { readCounters } from './socket-counters.js';

const debug = debugFor('activity');

/** Sockets read at once in a round: 3 calls each, well below the bus's cap of 32 in flight. */
const POLL_CONCURRENCY = 8;

/** What one round cost, for the debug log and the benchmark. */
export interface RoundStats {
  readonly sockets: number;
  readonly failed: number;
  readonly wallMs: number;
  readonly cpuMs: number;
}

export class SocketPoller {
  lastRound: RoundStats | undefined;

  constructor(
    private readonly link: Pick<SystemdLink, 'systemd'>,
    /** Who asks (the job's name), for the debug log. */
    private readonly who: string,
  ) {}

  /**
   * Reads the counters of `sockets` and stamps them `readAtUs`; a socket whose read failed keeps
   * its previous reading. `withinMs`: the round's time (its interval) before it is cut short.
   */
  async poll(sockets: readonly Unit[], readAtUs: number, withinMs: number): Promise<void> {
    const systemd = this.link.systemd;
    if (!systemd) return;
    const cpu = process.cpuUsage();
    const started = performance.now();
    // A round that outlives its interval is cut short: the next tick would be skipped anyway.
    const deadline = started + withinMs;
    const counters = await mapLimited(sockets, { concurrency: POLL_CONCURRENCY, deadline }, (u) =>
      // A systemd without NRefused (before 239) is not asked for it again.
      readCounters(systemd, unitPath(u.name), u.counters?.refused !== null),
    );
    let failed = 0;
    sockets.forEach((u, i) => {
      const c = counters[i];
      if (c === undefined) failed++;
      else u.counters = { ...c, readAtUs };
    });
    const used = process.cpuUsage(cpu);
    this.lastRound = { sockets: sockets.length, failed, wallMs: performance.now() - started, cpuMs: (used.user + used.system) / 1000 };
    debug('%s: read %d sockets (%d failed) in %d ms, %d ms CPU', this.who, sockets.length, failed, Math.round(this.lastRound.wallMs), Math.round(this.lastRound.cpuMs));
  }
}
