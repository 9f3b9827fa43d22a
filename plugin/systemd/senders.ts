// Who may send which signal. Any local user may send D-Bus signals, and one addressed to the
// plugin's connection (unicast: its unique name is public) reaches it whatever its match rules
// say. What cannot be forged is the sender: dbus-daemon stamps every message with the unique name
// of the connection that sent it. So systemd's signals are taken only from the unique name that
// owns org.freedesktop.systemd1 right now, and the bus driver's (NameOwnerChanged) only from
// org.freedesktop.DBus; everything else is dropped, counted, and reported at most once a minute.

import type { Signal } from './bus.js';
import { logError } from '../log.js';

export const BUS_DRIVER = 'org.freedesktop.DBus';
const BUS_DRIVER_PATH = '/org/freedesktop/DBus';

/**
 * Whether a signal comes from whom it claims to: the bus driver's own interface only from the bus
 * driver, anything else only from `systemdOwner` (systemd's current unique name; undefined while
 * not known, when nothing from systemd is taken).
 */
export function fromRealSender(s: Pick<Signal, 'sender' | 'interface' | 'path'>, systemdOwner: string | undefined): boolean {
  if (s.interface === BUS_DRIVER) return s.sender === BUS_DRIVER && s.path === BUS_DRIVER_PATH;
  return systemdOwner !== undefined && systemdOwner.startsWith(':') && s.sender === systemdOwner;
}

/** Distinct senders remembered per report: a flood from many connections stays a few bytes. */
const MAX_SENDERS = 100;
/** What a report may quote of a signal (its names come from the sender). */
const MAX_QUOTE = 200;

/**
 * Counts dropped signals and says so on stderr at most once per window: the first drop at once,
 * the rest of a window in one line when it ends. Each line names one sender, with its uid and pid
 * asked of the bus once per line (never per signal).
 */
export class DroppedSignals {
  /** Every signal dropped since start, for tests and debugging. */
  total = 0;
  private count = 0;
  private readonly senders = new Set<string>();
  private example: { sender: string; what: string } | undefined;
  private lastReport = -Infinity;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    /** Who a unique name is (`:1.42 (uid 65534, pid 1234)`); may reject, then the name alone is said. */
    private readonly describe: (sender: string) => Promise<string>,
    private readonly write: (line: string) => void = logError,
    private readonly windowMs = 60_000,
    private readonly now: () => number = () => performance.now(),
  ) {}

  drop(s: Pick<Signal, 'sender' | 'interface' | 'member' | 'path'>): void {
    this.total++;
    this.count++;
    if (this.senders.size < MAX_SENDERS) this.senders.add(s.sender);
    this.example ??= { sender: s.sender, what: `${s.interface}.${s.member} on ${s.path}`.slice(0, MAX_QUOTE) };
    if (this.timer) return;
    this.timer = setTimeout(() => void this.report(), Math.max(0, this.lastReport + this.windowMs - this.now()));
    this.timer.unref();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private async report(): Promise<void> {
    const { count, example } = this;
    const others = this.senders.size - 1;
    this.count = 0;
    this.senders.clear();
    this.example = undefined;
    this.lastReport = this.now();
    // A drop while the sender is asked about schedules the next line a full window from here.
    this.timer = undefined;
    if (!example) return;
    const who = await this.describe(example.sender).catch(() => example.sender);
    const more = others > 0 ? ` and ${others}${others + 1 >= MAX_SENDERS ? '+' : ''} other sender${others === 1 ? '' : 's'}` : '';
    this.write(
      `ignored ${count} D-Bus signal${count === 1 ? '' : 's'} not sent by systemd or the bus daemon ` +
        `(e.g. ${example.what} from ${who}${more}): someone may be trying to forge unit states`,
    );
  }
}
