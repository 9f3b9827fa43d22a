// The connection to systemd, kept up: connect through the port (match rules, systemd's owner,
// Subscribe), reconnect with backoff when it is lost, replace it when it is stuck or worn out,
// watch systemd's liveness (watchdog.ts), and take signals only from systemd's current owner
// (senders.ts). It holds the link state everyone else reads (SystemdLink: in step, generation) and
// knows nothing about units: what a connection means for the unit model is its owner's (UnitSync),
// told through ConnectionHooks.

import { BusCallError, CLOSED_ERROR, TIMEOUT_ERROR, type Seq, type Signal } from './bus.js';
import type { SystemdLink } from './link.js';
import { decodeSignal, type SystemdManager, type UnitEvent } from './manager.js';
import type { SystemdPort, SystemdSession } from './port.js';
import { DroppedSignals, fromRealSender } from './senders.js';
import { Watchdog } from './watchdog.js';
import { debugFor, errorText, logError, logErrorThrottled } from '../log.js';

const debug = debugFor('sync');
const debugEvents = debugFor('events');

export const BACKOFF_MS = [250, 1000, 2000, 4000, 8000, 15000, 30000];
/**
 * While the bus cannot even be reached (socket gone, connection refused) retries stay this close:
 * a refused connect costs nobody anything, and a bus that comes back must be used at once.
 */
export const UNREACHABLE_RETRY_MS = 500;
/**
 * A connection lost sooner than this after it was made counts as short-lived: a bus that breaks
 * every connection (bad data, a stuck link) must not have the plugin reconnect and resync in a
 * tight loop, so the backoff carries over from one short-lived connection to the next.
 */
export const SHORT_LIVED_MS = 60_000;
/** dbus-next serials never wrap: reconnect well before 2^32 messages. */
const MAX_MESSAGES_PER_CONNECTION = 2 ** 31;

/** Start-up failures the operator must act on: no bus, or no systemd on it. */
export class NoSystemdError extends Error {}

export interface ConnectionOptions {
  readonly port: SystemdPort;
  /** The bus address, for messages. */
  readonly address: string;
  /** Replace the connection after this many messages (default 2^31; lower only to test it). */
  readonly maxMessagesPerConnection?: number;
  /** Ping systemd after this long without a signal or an answer from it (default 5 s). */
  readonly quietMs?: number;
}

/** What the connection's owner does with it (UnitSync: the unit model). */
export interface ConnectionHooks {
  /** A new connection is up (owner known, subscribed): bring the model in step; a rejection retries. */
  connected(): Promise<void>;
  /** Reconnected after a loss (or a slow start), and brought in step. */
  reconnected(): void;
  /** The connection is gone or replaced: what was known per connection (arrival seqs) is void. */
  dropped(): void;
  /** A reconnect begins: no resync is due until it succeeds. */
  reconnecting(): void;
  /** A unit event from systemd's current owner. */
  event(e: Exclude<UnitEvent, { kind: 'owner' }>): void;
  /** systemd's name has a new owner (daemon-reexec, a restarted manager): resync. */
  ownerChanged(): void;
  /** systemd answers pings again after it did not: resync. */
  responsive(): void;
  /** A listing is under way: not a moment to replace the connection. */
  busy(): boolean;
}

export class SystemdConnection implements SystemdLink {
  private current: SystemdSession | undefined;
  private stopped = false;
  /** False until the first snapshot and while systemd cannot be reached: charts then leave gaps. */
  private synced = false;
  /** See SystemdLink.generation. */
  private reloads = 0;
  private attempt = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private reconnectLoop = false;
  /** Whether the latest failed connection attempt reached the bus (then back off further). */
  private reachedBus = true;
  /** Connections lost in a row, each soon after it was made (see SHORT_LIVED_MS). */
  private shortLived = 0;
  private readonly watchdog: Watchdog;
  /**
   * systemd's unique name on this connection, the only sender its signals are taken from:
   * undefined until GetNameOwner answers after connecting, '' while systemd is off the bus.
   */
  private systemdOwner: string | undefined;
  /** Arrival of what set systemdOwner: an older answer must not undo a newer NameOwnerChanged. */
  private ownerSeq: Seq = 0;
  private readonly dropped: DroppedSignals;
  /** A connection's first listing is under way: the model may be marked in step but half filled. */
  private connecting = false;
  /** Callers of whenInStep waiting for the model to be in step; checked after every listing. */
  private readonly inStepWaiters = new Set<() => void>();

  constructor(
    private readonly options: ConnectionOptions,
    private readonly hooks: ConnectionHooks,
  ) {
    this.watchdog = new Watchdog({
      quietMs: options.quietMs ?? 5000,
      maxMessages: options.maxMessagesPerConnection ?? MAX_MESSAGES_PER_CONNECTION,
      sent: () => this.current?.sent,
      answeredAt: () => this.current?.answeredAt,
      ping: () => this.current?.ping(),
      pingBus: () => this.current?.isOnBus().then(() => undefined),
      isTimeout: (err) => err instanceof BusCallError && err.dbusName === TIMEOUT_ERROR,
      onUnresponsive: (reason) => {
        this.synced = false;
        logError(`systemd does not answer (${reason}); charts pause until it does`);
      },
      onResponsive: () => {
        logError('systemd answers again; resyncing');
        this.hooks.responsive();
      },
      onWornOut: (sent) => this.replace(sent),
      // A frozen connection, unlike a frozen systemd, is cured by a new one: onLost reconnects.
      onStuck: (reason) => this.current?.close(reason),
    });
    this.dropped = new DroppedSignals((sender) => this.current?.describeSender(sender) ?? Promise.resolve(sender));
  }

  /** The connection in use; undefined while there is none. */
  get session(): SystemdSession | undefined {
    return this.current;
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  /** Signals dropped because of who sent them (see senders.ts). */
  get droppedSignals(): number {
    return this.dropped.total;
  }

  get inStep(): boolean {
    return this.synced;
  }

  get generation(): number {
    return this.reloads;
  }

  /** systemd's API while the model is in step with it; undefined while it is out of reach. */
  get systemd(): SystemdManager | undefined {
    return this.synced ? this.current?.systemd : undefined;
  }

  /** A full listing was applied: the model matches systemd. */
  markInStep(): void {
    this.synced = true;
  }

  /** systemd cannot be listed now: charts pause (a gap) until it can. */
  markOutOfStep(): void {
    this.synced = false;
  }

  /**
   * systemd is reloading (true) or done (false): the unit signals' rules come off for the reload
   * and back before the resync after it (see SystemdSession.muteUnitSignals), and the watchdog
   * does not take the reload's silence for a hang. The model ignores
   * what still comes meanwhile either way. A rule that cannot be changed ends the connection: a
   * new one adds every rule afresh and resyncs, where one left without its unit rules would be
   * deaf to every change until the next safety resync.
   */
  reloading(started: boolean): void {
    this.watchdog.reloading(started);
    const session = this.current;
    session?.muteUnitSignals?.(started).catch((err: unknown) => {
      if (session !== this.current || isConnectionError(err)) return;
      session.close(`cannot ${started ? 'remove' : 'add back'} the unit signals' match rules around a daemon-reload: ${errorText(err)}`);
    });
  }

  /** The sample loop's tick: the watchdog checks in it rather than wake the plugin itself. */
  tick(): void {
    this.watchdog.tick();
  }

  /** systemd reloaded its unit files: constant-until-reload properties must be read again. */
  newGeneration(): void {
    this.reloads++;
  }

  /**
   * Connects and brings the model in step (hooks.connected). Resolves true when that is done,
   * false when systemd is on the bus but slow (a busy boot, a stopped PID 1): then it keeps trying
   * in the background. Rejects with NoSystemdError when there is nothing to watch: no bus, or no
   * systemd on it.
   */
  async start(): Promise<boolean> {
    this.watchdog.start();
    try {
      await this.connect();
    } catch (err) {
      const reached = this.current !== undefined;
      this.dropSession();
      const name = (err as BusCallError).dbusName;
      if (name === 'org.freedesktop.DBus.Error.ServiceUnknown' || name === 'org.freedesktop.DBus.Error.NameHasNoOwner') {
        throw new NoSystemdError(`systemd is not on the system bus at ${this.options.address} (is systemd PID 1 here?)`);
      }
      if (!reached) {
        const hint = busHint(err);
        throw new NoSystemdError(`cannot reach the system bus at ${this.options.address}: ${errorText(err)}${hint ? ` (${hint})` : ''}`);
      }
      logError(`systemd does not answer yet (${errorText(err)}); charts start once it does`);
      void this.reconnect();
      return false;
    }
    return true;
  }

  stop(): void {
    this.stopped = true;
    this.watchdog.stop();
    clearTimeout(this.reconnectTimer);
    this.dropped.stop();
    this.current?.close();
    this.wakeInStep();
  }

  /**
   * systemd's API once the model is in step with it: at once, or when the listing under way (the
   * first one, or a reconnect's) has been applied; undefined if that has not happened by `deadline`
   * (monotonic ms), i.e. systemd is really out of reach. A Function called right after start-up
   * waits here rather than answer "out of reach" while systemd is fine.
   */
  whenInStep(deadline: number): Promise<SystemdManager | undefined> {
    const inStep = (): SystemdManager | undefined => (this.connecting ? undefined : this.systemd);
    if (inStep() || this.stopped) return Promise.resolve(inStep());
    return new Promise((resolve) => {
      const done = (manager: SystemdManager | undefined): void => {
        clearTimeout(timer);
        this.inStepWaiters.delete(check);
        resolve(manager);
      };
      const check = (): void => {
        const manager = inStep();
        if (manager || this.stopped) done(manager);
      };
      const timer = setTimeout(() => done(undefined), Math.max(0, deadline - performance.now()));
      this.inStepWaiters.add(check);
    });
  }

  /** Tells whenInStep's callers to look again (after a listing, or a connection attempt). */
  wakeInStep(): void {
    for (const check of [...this.inStepWaiters]) check();
  }

  /** After a success: the next failure backs off from the start again. */
  resetBackoff(): void {
    this.attempt = 0;
  }

  /** How long until the next retry of a failed resync; each call backs off further. */
  nextRetryDelay(): number {
    return this.backoff(this.attempt++);
  }

  private async connect(): Promise<void> {
    this.connecting = true;
    try {
      await this.connectOnce();
    } finally {
      this.connecting = false;
      this.wakeInStep();
    }
  }

  private async connectOnce(): Promise<void> {
    const session = await this.options.port();
    this.current = session;
    this.systemdOwner = undefined;
    this.ownerSeq = 0;
    session.on('signal', (s: Signal) => {
      if (session === this.current) this.onSignal(s);
    });
    session.once('close', (reason: string) => this.onLost(session, reason));
    // Rules first, then the owner: a change of owner in between is then signalled, not missed.
    await session.watch();
    const { owner, seq } = await session.owner();
    if (this.ownerSeq < seq) [this.systemdOwner, this.ownerSeq] = [owner, seq];
    if (!owner) throw new BusCallError('org.freedesktop.systemd1 has no owner', 'org.freedesktop.DBus.Error.NameHasNoOwner');
    debug('systemd is %s on this connection', this.systemdOwner);
    await session.subscribe();
    this.watchdog.reset();
    this.reloads++;
    await this.hooks.connected();
  }

  private onSignal(s: Signal): void {
    if (!fromRealSender(s, this.systemdOwner)) {
      // Until GetNameOwner answers, systemd's own signals cannot be told from forged ones: dropped
      // unreported, and the resync that follows the connect covers what they said.
      if (this.systemdOwner !== undefined || s.interface === 'org.freedesktop.DBus') this.dropped.drop(s);
      return;
    }
    const event = decodeSignal(s);
    if (!event) return;
    if (event.kind !== 'owner') this.watchdog.heard();
    if (debugEvents.enabled) debugEvents('%s %o', event.kind, event);
    if (event.kind !== 'owner') return this.hooks.event(event);
    // From the bus driver (senders.ts): from now on systemd's signals come from this name.
    [this.systemdOwner, this.ownerSeq] = [event.owner, event.seq];
    if (event.owner === '') {
      logError('systemd left the system bus; charts pause until it is back');
      this.synced = false;
      return;
    }
    // daemon-reexec or a restarted manager: subscribe again (harmless if still subscribed).
    this.current?.subscribe().catch((err) => debug('re-subscribe: %s', errorText(err)));
    this.reloads++;
    this.hooks.ownerChanged();
  }

  private onLost(session: SystemdSession, reason: string): void {
    if (this.stopped || session !== this.current) return;
    this.current = undefined;
    this.hooks.dropped();
    this.synced = false;
    logErrorThrottled('lost', `lost the system bus (${reason}); charts pause, reconnecting`);
    this.shortLived = Date.now() - session.openedAt < SHORT_LIVED_MS ? this.shortLived + 1 : 0;
    this.attempt = Math.max(this.attempt, this.shortLived - 1);
    if (!this.reconnectLoop) void this.reconnect();
  }

  /**
   * Replaces a connection that has sent `sent` messages with a new one, at a quiet moment: the
   * model stays in step meanwhile (the new connection resyncs before it is used), so no gap.
   */
  private replace(sent: number): void {
    const old = this.current;
    if (!old || this.reconnectLoop || this.hooks.busy() || this.stopped) return;
    logError(`replacing the D-Bus connection after ${sent} messages (dbus-next cannot number more than 2^32)`);
    this.current = undefined;
    this.hooks.dropped();
    old.close('replaced on purpose');
    this.attempt = 0;
    void this.reconnect(0);
  }

  /** Retries with backoff until connected (and resynced) or stopped. */
  private async reconnect(firstDelayMs?: number): Promise<void> {
    this.reconnectLoop = true;
    this.hooks.reconnecting();
    try {
      let delay = firstDelayMs ?? this.backoff(this.attempt);
      while (!this.stopped) {
        await new Promise((resolve) => (this.reconnectTimer = setTimeout(resolve, delay)));
        this.attempt++;
        if (this.stopped) return;
        debug('connection attempt %d (after %d ms)', this.attempt, delay);
        try {
          await this.connect();
          this.reachedBus = true;
          this.hooks.reconnected();
          return;
        } catch (err) {
          this.synced = false;
          const reached = this.current !== undefined;
          // The bus is back (systemd may take a moment to rejoin it): back off afresh from there.
          if (reached && !this.reachedBus) this.attempt = 0;
          this.reachedBus = reached;
          logErrorThrottled('reconnect', `cannot reconnect to the system bus: ${errorText(err)}; retrying`);
          this.dropSession();
          delay = this.backoff(this.attempt);
        }
      }
    } finally {
      this.reconnectLoop = false;
    }
  }

  private dropSession(): void {
    const session = this.current;
    this.current = undefined;
    session?.close();
  }

  private backoff(attempt: number): number {
    const ms = BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)]!;
    return this.reachedBus ? ms : Math.min(ms, UNREACHABLE_RETRY_MS);
  }
}

/** Whether an error means the connection is gone (onLost's to handle), not that a call failed. */
export function isConnectionError(err: unknown): boolean {
  return err instanceof BusCallError && err.dbusName === CLOSED_ERROR;
}

/**
 * What to check when the bus cannot be reached, for the causes where a hint helps; undefined where
 * the message says it all (an address of a kind the plugin refuses names what to change already).
 */
export function busHint(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  const text = errorText(err);
  if (code === 'ENOENT' || /\bENOENT\b/.test(text)) {
    return 'no socket there: is systemd running? in a container, is /run/dbus mounted? set DBUS_SYSTEM_BUS_ADDRESS to override';
  }
  if (code === 'ECONNREFUSED' || /\bECONNREFUSED\b/.test(text)) return 'nothing listens on that socket: is dbus running?';
  if (code === 'EACCES' || /\bEACCES\b/.test(text)) return "the agent's user may not open that socket: check its mode and the dbus policy";
  return undefined;
}
