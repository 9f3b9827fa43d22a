// Reads the connection counters of Accept=yes sockets into the unit model (`unit.counters`), only
// when they may have moved. systemd never signals the counters, but it signals what moves them
// (systemd 252's socket_enter_running, checked against a sandbox):
// - NAccepted and NConnections go up when systemd accepts a connection, which makes it signal the
//   socket ("notify clients about changed counters") and create the connection's service instance
//   (UnitNew, then its state changes); NConnections goes down when that instance stops (its state
//   changes, then UnitRemoved). The sync notes each such signal on the table (noteSocketActivity).
// - NRefused goes up without any signal, but only when NConnections is at MaxConnections (or one
//   source's connections at MaxConnectionsPerSource, which takes NConnections at least that high:
//   an instance that stopped, failed ones that stay loaded too, holds no connection);
//   the other refusals (trigger limit, a pending stop) come with the socket's own state change.
// So a round reads (1) sockets never read, (2) sockets with activity since their last read, (3)
// sockets at their refusal limit, and (4) now and then one not read for SAFETY_REFRESH_S, in case
// a signal was lost; every other socket's counters are still exactly what systemd would answer,
// and are marked current for the round without asking. An idle socket costs no call. After a new
// connection to systemd (signals may have been lost meanwhile) every socket is read again, its
// charts a gap until it is. After a daemon-reload or a daemon-reexec (the link's generation moves)
// every socket is read again too, after those with activity, still charted meanwhile: systemd
// rebuilt its counters from its serialized state, signals may have gone unheard for a moment (the
// unit signals' rules are off during a reload; a new owner is heard from its NameOwnerChanged
// on), and the limits may have changed.
//
// The cost stays bounded whatever the host: a round reads at most `socket_activity_max_sockets`
// sockets; more that need it (a connection storm on many sockets) wait for later rounds, those
// tried longest ago first, and their charts show a gap until read rather than stale values. A
// round is cut short at its interval's end and reads nothing while systemd is out of reach.

import { debugFor } from '../log.js';
import { unitPath } from '../units/names.js';
import type { SocketCounters, Unit, UnitTable } from '../units/table.js';
import { mapLimited } from './limit.js';
import type { SystemdLink } from './link.js';
import { readCounters, readLimit } from './socket-counters.js';

const debug = debugFor('activity');

/** Sockets read at once in a round: 3 calls each, well below the bus's cap of 32 in flight. */
export const POLL_CONCURRENCY = 8;
/** A socket not read for this long may be read again, in case a signal about it was lost. */
export const SAFETY_REFRESH_S = 300;
/** At most one such safety read per this many seconds: a guard, not a poll (3 calls each). */
export const SAFETY_GAP_S = 30;

/** What one round cost, for the debug log and the benchmark. */
export interface RoundStats {
  /** Sockets read. */
  readonly sockets: number;
  readonly failed: number;
  /** Sockets known current without a read. */
  readonly current: number;
  /** Sockets that needed a read and wait for a later round (past the cap). */
  readonly waiting: number;
  readonly wallMs: number;
  readonly cpuMs: number;
}

export interface PollPolicy {
  /** Sockets one round reads at most (`socket_activity_max_sockets`). */
  readonly maxSockets: number;
}

/** Why a socket is read this round. */
type Need = 'stale' | 'reread' | 'safety';

export class SocketPoller {
  lastRound: RoundStats | undefined;
  /** The round each socket was last tried in (read or failed), by unit name: who waited longest. */
  private readonly tried = new Map<string, number>();
  private round = 0;
  /** The connection the counters were last read through; a new one puts every reading in doubt. */
  private session: object | undefined;
  /** Readings older than this (monotonic µs) predate the current connection: read again. */
  private trustFromUs = 0;
  private lastSafetyUs = -Infinity;

  constructor(
    private readonly link: Pick<SystemdLink, 'systemd' | 'generation'>,
    private readonly table: Pick<UnitTable, 'socketActivityOf'>,
    /** Who asks (the job's name), for the debug log. */
    private readonly who: string,
    private readonly policy: PollPolicy,
  ) {}

  /**
   * Brings the counters of `sockets` (the job's current ones, in a stable order) up to date for
   * the round at `nowUs`: reads those that may have moved (at most the cap) and marks the others
   * current (`counters.currentAtUs = nowUs`). A socket whose read failed or waits keeps its
   * previous reading, not current. `withinMs`: the round's time (its interval) before it is cut short.
   */
  async poll(sockets: readonly Unit[], nowUs: number, withinMs: number): Promise<void> {
    const systemd = this.link.systemd;
    if (!systemd) return;
    const cpu = process.cpuUsage();
    const started = performance.now();
    this.round++;
    if (systemd !== this.session) {
      // Reconnected (or the first round): what happened while no signal could come is unknown.
      this.session = systemd;
      this.trustFromUs = nowUs;
    }
    const generation = this.link.generation;
    const stale: Unit[] = [];
    // Read in an older generation (before a reload or re-exec): read again, charted meanwhile.
    const reread: Unit[] = [];
    let safety: Unit | undefined;
    for (const u of sockets) {
      const c = u.counters;
      if (c === undefined || c.readAtUs < this.trustFromUs || c.activity !== this.table.socketActivityOf(u.name) || c.connections >= c.limit) {
        stale.push(u);
        continue;
      }
      c.currentAtUs = nowUs;
      if (c.limitGeneration !== generation) reread.push(u);
      else if (nowUs - c.readAtUs >= SAFETY_REFRESH_S * 1e6 && (safety === undefined || c.readAtUs < safety.counters!.readAtUs)) safety = u;
    }
    const chosen = this.choose(stale, reread, safety !== undefined && nowUs - this.lastSafetyUs >= SAFETY_GAP_S * 1e6 ? safety : undefined);
    if (chosen.some(([, need]) => need === 'safety')) this.lastSafetyUs = nowUs;
    if (this.tried.size > sockets.length) this.forgetGone(sockets);
    // A round that outlives its interval is cut short: the next tick would be skipped anyway.
    const deadline = started + withinMs;
    const results = await mapLimited(chosen, { concurrency: POLL_CONCURRENCY, deadline }, async ([u]): Promise<SocketCounters> => {
      const before = u.counters;
      const path = unitPath(u.name);
      // Taken before asking: a signal while the answer is on its way makes the next round read again.
      const activity = this.table.socketActivityOf(u.name);
      // A systemd without NRefused (before 239) is not asked for it again.
      const values = await readCounters(systemd, path, before?.refused !== null);
      // One after the other: at most 3 calls in flight per socket.
      const limit = before !== undefined && before.limitGeneration === generation ? before.limit : await readLimit(systemd, path);
      return { ...values, limit, limitGeneration: generation, activity, readAtUs: nowUs, currentAtUs: nowUs };
    });
    let failed = 0;
    chosen.forEach(([u], i) => {
      const r = results[i];
      if (r === undefined) failed++;
      else u.counters = r;
    });
    const used = process.cpuUsage(cpu);
    const waiting = stale.length - chosen.filter(([, need]) => need === 'stale').length;
    this.lastRound = { sockets: chosen.length, failed, current: sockets.length - stale.length, waiting, wallMs: performance.now() - started, cpuMs: (used.user + used.system) / 1000 };
    debug(
      '%s: read %d of %d sockets (%d changed or at their limit, %d wait; %d failed) in %d ms, %d ms CPU',
      this.who, chosen.length, sockets.length, stale.length, waiting, failed, Math.round(this.lastRound.wallMs), Math.round(this.lastRound.cpuMs),
    );
  }

  /** This round's reads, at most the cap: stale ones first (tried longest ago first), then re-reads, then the safety read. */
  private choose(stale: Unit[], reread: Unit[], safety: Unit | undefined): [Unit, Need][] {
    const cap = this.policy.maxSockets;
    // Never tried first (-1), then the longest ago; ties keep the selection's order (stable sort).
    const byWait = (a: Unit, b: Unit): number => (this.tried.get(a.name) ?? -1) - (this.tried.get(b.name) ?? -1);
    const chosen: [Unit, Need][] = (stale.length > cap ? [...stale].sort(byWait).slice(0, cap) : stale).map((u) => [u, 'stale']);
    if (chosen.length < cap && reread.length > 0) chosen.push(...[...reread].sort(byWait).slice(0, cap - chosen.length).map((u): [Unit, Need] => [u, 'reread']));
    if (chosen.length < cap && safety) chosen.push([safety, 'safety']);
    for (const [u] of chosen) this.tried.set(u.name, this.round);
    return chosen;
  }

  /** Forgets sockets gone from the selection (units made and dropped at run time). */
  private forgetGone(sockets: readonly Unit[]): void {
    const names = new Set(sockets.map((u) => u.name));
    for (const name of this.tried.keys()) if (!names.has(name)) this.tried.delete(name);
  }
}
