// Reads the connection counters of Accept=yes sockets into the unit model (`unit.counters`). The
// counters are never signalled, so this is the plugin's one poll: the sample loop asks for a round
// every `socket_activity_every` seconds, for the sockets a job charts the activity of; a round reads
// a bounded number at a time, is cut short at its interval's end, and reads nothing while systemd
// is out of reach (the charts show a gap).
//
// Its cost is bounded whatever the host (socket activity is on by default): a round reads at most
// `socket_activity_max_sockets` sockets. With more, the sockets take turns (TurnTaking below) and
// each is read every `turns` rounds; the reading says so (`everyS`), and its charts are defined
// with that interval, so the agent stores one right value per interval instead of gaps or repeats.

import { debugFor } from '../log.js';
import { MAX_UPDATE_EVERY } from '../config/schema.js';
import { unitPath } from '../units/names.js';
import type { Unit } from '../units/table.js';
import { mapLimited } from './limit.js';
import type { SystemdLink } from './link.js';
import { readCounters } from './socket-counters.js';

const debug = debugFor('activity');

/** Sockets read at once in a round: 3 calls each, well below the bus's cap of 32 in flight. */
export const POLL_CONCURRENCY = 8;

/** What one round cost, for the debug log and the benchmark. */
export interface RoundStats {
  readonly sockets: number;
  readonly failed: number;
  readonly wallMs: number;
  readonly cpuMs: number;
}

export interface PollPolicy {
  /** Seconds between rounds (`socket_activity_every`). */
  readonly everyS: number;
  /** Sockets one round reads at most (`socket_activity_max_sockets`). */
  readonly maxSockets: number;
}

/**
 * Which sockets a round reads, and every how many rounds each comes back. With n sockets and a cap
 * of m a round, each is read every `turns` = ⌈n/m⌉ rounds, n/turns of them per round (split as
 * evenly as whole sockets allow), those tried longest ago first: each socket is read once in
 * `turns` rounds, and one that appears waits at most a cycle or two for its first read.
 * `turns` grows at once and shrinks only when the sockets fit in fewer turns with a tenth of the
 * cap to spare, so a socket or two coming and going at a boundary does not redefine every chart.
 * It never exceeds what keeps the interval within the agent's bound (3600 s); past that (more than
 * m × 3600 / every sockets) some are read less often than their interval and show gaps.
 */
export class TurnTaking {
  /** Rounds each socket waits for its turn (its charts' interval is `turns` × every). */
  turns = 1;
  private round = 0;
  /** The round each socket was last tried in (read or failed), by unit name. */
  private readonly tried = new Map<string, number>();
  private readonly maxTurns: number;

  constructor(private readonly policy: PollPolicy) {
    this.maxTurns = Math.max(1, Math.floor(MAX_UPDATE_EVERY / policy.everyS));
  }

  /** This round's sockets, of `sockets` (the job's current ones, in a stable order). */
  next(sockets: readonly Unit[]): Unit[] {
    this.round++;
    const n = sockets.length;
    const cap = this.policy.maxSockets;
    const needed = Math.min(this.maxTurns, Math.max(1, Math.ceil(n / cap)));
    if (needed > this.turns || (needed < this.turns && n <= (this.turns - 1) * cap - Math.ceil(cap / 10))) this.turns = needed;
    // This round's share of a cycle of `turns` rounds: n split as evenly as whole sockets allow.
    const i = this.round % this.turns;
    const take = Math.min(cap, Math.floor(((i + 1) * n) / this.turns) - Math.floor((i * n) / this.turns));
    // Forget sockets gone from the selection (units made and dropped at run time).
    if (this.tried.size > n) {
      const names = new Set(sockets.map((u) => u.name));
      for (const name of this.tried.keys()) if (!names.has(name)) this.tried.delete(name);
    }
    let chosen: Unit[];
    if (take >= n) chosen = [...sockets];
    else {
      // Never tried first (-1), then the longest ago; ties keep the selection's order (stable sort).
      chosen = [...sockets].sort((a, b) => (this.tried.get(a.name) ?? -1) - (this.tried.get(b.name) ?? -1)).slice(0, take);
    }
    for (const u of chosen) this.tried.set(u.name, this.round);
    return chosen;
  }

  /** Seconds between two reads of one socket. */
  get everyS(): number {
    return this.turns * this.policy.everyS;
  }
}

export class SocketPoller {
  lastRound: RoundStats | undefined;
  private readonly turns: TurnTaking;

  constructor(
    private readonly link: Pick<SystemdLink, 'systemd'>,
    /** Who asks (the job's name), for the debug log. */
    private readonly who: string,
    policy: PollPolicy,
  ) {
    this.turns = new TurnTaking(policy);
  }

  /**
   * Reads the counters of this round's share of `sockets` and stamps them `readAtUs`; a socket
   * whose read failed keeps its previous reading. `withinMs`: the round's time (its interval)
   * before it is cut short.
   */
  async poll(sockets: readonly Unit[], readAtUs: number, withinMs: number): Promise<void> {
    const systemd = this.link.systemd;
    if (!systemd) return;
    const cpu = process.cpuUsage();
    const started = performance.now();
    const chosen = this.turns.next(sockets);
    const everyS = this.turns.everyS;
    // A round that outlives its interval is cut short: the next tick would be skipped anyway.
    const deadline = started + withinMs;
    const counters = await mapLimited(chosen, { concurrency: POLL_CONCURRENCY, deadline }, (u) =>
      // A systemd without NRefused (before 239) is not asked for it again.
      readCounters(systemd, unitPath(u.name), u.counters?.refused !== null),
    );
    let failed = 0;
    chosen.forEach((u, i) => {
      const c = counters[i];
      if (c === undefined) failed++;
      else u.counters = { ...c, readAtUs, everyS };
    });
    const used = process.cpuUsage(cpu);
    this.lastRound = { sockets: chosen.length, failed, wallMs: performance.now() - started, cpuMs: (used.user + used.system) / 1000 };
    debug(
      '%s: read %d of %d sockets (%d failed; each every %d s) in %d ms, %d ms CPU',
      this.who, chosen.length, sockets.length, failed, everyS, Math.round(this.lastRound.wallMs), Math.round(this.lastRound.cpuMs),
    );
  }
}
