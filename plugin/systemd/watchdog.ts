// Watches the connection to systemd for the two things signals cannot tell:
// - systemd hung (a stopped or livelocked PID 1): the bus is up but nothing comes. After a quiet
//   spell (no signal from systemd and no answer to any call) it pings systemd
//   (org.freedesktop.DBus.Peer.Ping, answered by sd-bus itself); no answer within the call timeout
//   means the charts must pause (a gap) rather than repeat the last states, until systemd answers
//   again and a resync brings the table back.
// - the connection itself stuck (nothing comes through it, though the socket is open): the bus
//   daemon is pinged too, on the same connection, once systemd is slow to answer; when neither
//   answers, a new connection is the cure, and the caller replaces it (with backoff, as for a lost
//   bus).
// - dbus-next's message serials never wrap: after 2^32 − 1 messages on one connection every call
//   fails. Long before that the connection is replaced on purpose.
// One ping at a time, never more: a hung systemd cannot make calls pile up. No wake-up of its own
// while the sample loop ticks: the check runs in the tick (tick()), so an idle plugin wakes once a
// second, not twice. Its own timer, due when the quiet spell would be long enough, serves only
// while ticks do not come (before the first sample, or an update_every above the quiet spell).

import { debugFor, errorText } from '../log.js';
import { ReusedTimer } from '../reused-timer.js';

const debug = debugFor('watchdog');

/** How long systemd may take to answer a ping before the bus daemon is asked too. */
const BUS_PING_AFTER_MS = 1000;

export interface WatchdogOptions {
  /** Ping systemd after this long without a signal from it. */
  readonly quietMs: number;
  /** Replace the connection once it has sent this many messages. */
  readonly maxMessages: number;
  /** Messages sent on the current connection; undefined while there is none. */
  sent(): number | undefined;
  /** When systemd last answered a call on the current connection (Date.now()): alive then, as a signal says. */
  answeredAt?(): number | undefined;
  /** Pings systemd; rejects on timeout or error. Undefined while there is no connection. */
  ping(): Promise<void> | undefined;
  /** Pings the bus daemon on the same connection; rejects on timeout or error. */
  pingBus(): Promise<void> | undefined;
  /** Whether an error means "no answer" (as opposed to a lost connection, handled elsewhere). */
  isTimeout(err: unknown): boolean;
  /** systemd stopped answering. */
  onUnresponsive(reason: string): void;
  /** systemd answers again after onUnresponsive. */
  onResponsive(): void;
  /** Time to replace the connection. */
  onWornOut(sent: number): void;
  /** Neither systemd nor the bus daemon answered on this connection: replace it. */
  onStuck(reason: string): void;
}

export class Watchdog {
  private lastHeard = Date.now();
  private readonly timer = new ReusedTimer(() => void this.fire(), false);
  private running = false;
  private pinging = false;
  private unresponsive = false;
  /** systemd said it is reloading: its silence is explained (see reloading). */
  private reloadingNow = false;

  constructor(private readonly options: WatchdogOptions) {}

  start(): void {
    this.stop();
    this.running = true;
    this.arm();
  }

  stop(): void {
    this.running = false;
    this.timer.clear();
  }

  /**
   * The next check: when the quiet spell will have lasted quietMs (signals that come meanwhile only
   * move lastHeard; the check then finds it not yet due and waits the rest), or, while systemd does
   * not answer, soon (a ping at a time until one is answered).
   */
  private arm(): void {
    const retryMs = Math.min(1000, this.options.quietMs);
    const dueMs = this.unresponsive ? retryMs : this.lastHeard + this.options.quietMs - Date.now();
    this.timer.set(Math.min(Math.max(1, dueMs), this.options.quietMs));
  }

  /**
   * The sample loop's tick: the check runs now, in a wake-up the plugin has anyway, and the own
   * timer moves a quiet spell ahead (it fires only if the ticks stop or come further apart). A ping
   * then goes at the first tick after quietMs of quiet, at most one tick later than the timer's.
   */
  tick(): void {
    if (!this.running) return;
    if (!this.retireWornOut() && this.due()) void this.check();
    if (this.running) this.timer.set(this.options.quietMs);
  }

  private async fire(): Promise<void> {
    if (!this.retireWornOut() && this.due()) await this.check();
    if (this.running && !this.timer.pending) this.arm();
  }

  /** systemd said something: it is alive. */
  heard(): void {
    this.lastHeard = Date.now();
  }

  /**
   * systemd is reloading (true) or done (false). A reload keeps PID 1 from answering for seconds
   * (minutes at 10,000 units) and its unit signals are muted meanwhile: that silence is not a hang,
   * and no ping is sent until it ends (the sync gives a reload whose end never comes 60 s). A
   * systemd already found not answering is still pinged.
   */
  reloading(started: boolean): void {
    this.reloadingNow = started;
    this.heard();
  }

  /** A new connection: forget what was said of the old one. */
  reset(): void {
    this.lastHeard = Date.now();
    this.unresponsive = false;
    this.reloadingNow = false;
  }

  /** A connection that has sent its share of messages: the owner is told to replace it (true), and no ping goes on it. */
  private retireWornOut(): boolean {
    const sent = this.options.sent();
    if (sent === undefined || sent < this.options.maxMessages) return false;
    this.options.onWornOut(sent);
    return true;
  }

  /** Whether a ping is due: after quietMs without a signal or an answer from systemd (and not while it reloads). */
  private due(): boolean {
    if (this.pinging) return false;
    // Once unresponsive, only an answer to a ping says systemd is back (its signals may resume first).
    if (this.unresponsive) return true;
    const answeredAt = this.options.answeredAt?.() ?? 0;
    if (answeredAt > this.lastHeard) this.lastHeard = answeredAt;
    return !this.reloadingNow && Date.now() - this.lastHeard >= this.options.quietMs;
  }

  private async check(): Promise<void> {
    const ping = this.options.ping();
    if (!ping) return;
    // The bus daemon is asked too once systemd is slow to answer (it answers at once): a stuck
    // connection is still told within a call timeout and that moment, and a systemd that answers
    // costs one call, not two (a D-Bus call is most of what a quiet plugin spends).
    let pingBus: Promise<boolean> | undefined;
    const askBus = (): Promise<boolean> | undefined =>
      (pingBus ??= this.options.pingBus()?.then(
        () => true,
        (err: unknown) => !this.options.isTimeout(err),
      ));
    const late = setTimeout(askBus, Math.min(BUS_PING_AFTER_MS, this.options.quietMs));
    late.unref();
    this.pinging = true;
    try {
      await ping;
      this.heard();
      if (this.unresponsive) {
        this.unresponsive = false;
        debug('systemd answers again');
        this.options.onResponsive();
      }
    } catch (err) {
      if (!this.options.isTimeout(err)) return debug('ping: %s', errorText(err));
      if ((await askBus()) === false) {
        return this.options.onStuck(`no answer on the connection: neither systemd nor the bus daemon answered a ping (${errorText(err)})`);
      }
      if (!this.unresponsive) {
        this.unresponsive = true;
        this.options.onUnresponsive(errorText(err));
      }
    } finally {
      clearTimeout(late);
      this.pinging = false;
    }
  }
}
