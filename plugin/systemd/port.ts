// The systemd port: what UnitSync needs of systemd, and nothing more. The real one (BusPort) is a
// D-Bus connection (bus.ts) with systemd's typed calls (manager.ts); unit tests hand the sync a
// fake one, with units in memory and answers whose order and timing the test decides.

import { Bus, type Seq, type Signal } from './bus.js';
import { MATCH_RULES, SystemdManager, UNIT_SIGNAL_RULES, type ListedUnit, type Listing } from './manager.js';

/** One connection to systemd. Calls reject with BusCallError (CLOSED_ERROR once it is closed). */
export interface SystemdSession {
  /** When it was made (Date.now()): a connection lost soon after counts as short-lived. */
  readonly openedAt: number;
  /** Messages sent on it so far (the connection is replaced long before dbus-next's serials wrap). */
  readonly sent: number;
  /** When systemd last answered a call on it (Date.now(); 0 before any): alive then (watchdog.ts). */
  readonly answeredAt?: number;
  /** systemd's typed API on this connection, for readers other than the sync (see link.ts). */
  readonly systemd: SystemdManager;
  /**
   * Every signal, raw (the sender not yet checked), each with its arrival `seq` among the replies;
   * and `close` once, with why, when the connection is gone for whatever reason.
   */
  on(event: 'signal', handler: (s: Signal) => void): void;
  once(event: 'close', handler: (reason: string) => void): void;
  /** Adds the match rules that bring systemd's unit signals and NameOwnerChanged (MATCH_RULES). */
  watch(): Promise<void>;
  /**
   * Removes (true) or adds back (false) the rules of the units' own signals (UNIT_SIGNAL_RULES),
   * for a daemon-reload: dbus-daemon then drops its thousands of UnitRemoved/UnitNew instead of
   * the plugin decoding each one to ignore it. No-op when already so. Adding back sends every
   * AddMatch before it awaits any, so a call made after it (the listing after the reload) reaches
   * the bus after them: every change after that listing is signalled. Rejects when a rule could not
   * be changed. Optional: a port without it keeps its rules (the reload's signals are ignored).
   */
  muteUnitSignals?(muted: boolean): Promise<void>;
  /** GetNameOwner of systemd's name; `owner` '' when it has none. */
  owner(): Promise<{ owner: string; seq: Seq }>;
  subscribe(): Promise<void>;
  listUnits(patterns: readonly string[]): Promise<Listing>;
  /** The unit of that exact name if loaded, without loading it. */
  listUnit(name: string): Promise<{ unit: ListedUnit | undefined; seq: Seq }>;
  isTransient(path: string): Promise<boolean>;
  result(path: string, name: string): Promise<string | undefined>;
  /** Peer.Ping of systemd (answered unless systemd is hung). */
  ping(): Promise<void>;
  /** NameHasOwner, asked of the bus daemon on this connection. */
  isOnBus(): Promise<boolean>;
  /** Who a sender is, for the line about dropped signals. */
  describeSender(name: string): Promise<string>;
  close(reason?: string): void;
}

/** Makes connections; rejects when the bus cannot be reached (no session was made). */
export type SystemdPort = () => Promise<SystemdSession>;

export interface BusPortOptions {
  readonly address: string;
  readonly callTimeoutMs: number;
  readonly maxInFlight: number;
}

/** The real port: a dbus-next connection to the bus at `address`. */
export function busPort(options: BusPortOptions): SystemdPort {
  return async () => new BusSession(await Bus.connect(options));
}

class BusSession implements SystemdSession {
  readonly systemd: SystemdManager;
  /** The unit signals' rules are off (see muteUnitSignals). */
  private muted = false;

  constructor(private readonly bus: Bus) {
    this.systemd = new SystemdManager(bus);
  }

  get openedAt(): number {
    return this.bus.openedAt;
  }

  get sent(): number {
    return this.bus.sent;
  }

  get answeredAt(): number {
    return this.bus.answeredAt;
  }

  on(event: 'signal', handler: (s: Signal) => void): void {
    this.bus.on(event, handler);
  }

  once(event: 'close', handler: (reason: string) => void): void {
    this.bus.once(event, handler);
  }

  async watch(): Promise<void> {
    for (const rule of MATCH_RULES) await this.bus.addMatch(rule);
  }

  async muteUnitSignals(muted: boolean): Promise<void> {
    if (muted === this.muted) return;
    this.muted = muted;
    await Promise.all(UNIT_SIGNAL_RULES.map((rule) => (muted ? this.bus.removeMatch(rule) : this.bus.addMatch(rule))));
  }

  owner(): Promise<{ owner: string; seq: Seq }> {
    return this.systemd.owner();
  }

  subscribe(): Promise<void> {
    return this.systemd.subscribe();
  }

  listUnits(patterns: readonly string[]): Promise<Listing> {
    return this.systemd.listUnits(patterns);
  }

  listUnit(name: string): Promise<{ unit: ListedUnit | undefined; seq: Seq }> {
    return this.systemd.listUnit(name);
  }

  isTransient(path: string): Promise<boolean> {
    return this.systemd.isTransient(path);
  }

  result(path: string, name: string): Promise<string | undefined> {
    return this.systemd.result(path, name);
  }

  ping(): Promise<void> {
    return this.systemd.ping();
  }

  isOnBus(): Promise<boolean> {
    return this.systemd.isOnBus();
  }

  describeSender(name: string): Promise<string> {
    return this.systemd.describeSender(name);
  }

  close(reason?: string): void {
    this.bus.close(reason);
  }
}
