// Why a unit failed, a systemd reader: told of every entry into `failed` by the unit model, it
// writes one stderr line with systemd's Result and, for a socket, the state of the service it
// triggers (read only then, never polled). The same finding, when it says more than "the service
// is inactive", goes into the model (`unit.triggered`) for the alarm's text.

import type { SystemdLink } from './link.js';
import { errorText, debugFor, logError } from '../log.js';
import type { Unit, UnitTable } from '../units/table.js';
import { unitPath } from '../units/names.js';
import { crashText, exitText } from '../units/exits.js';
import { readMainExit } from './manager.js';
import type { MainExit } from '../units/table.js';

const debug = debugFor('reasons');

const UNIT_IFACE = 'org.freedesktop.systemd1.Unit';

/** At most this many failure lines per window; the rest are counted and summed up in one line. */
export const LINES_PER_WINDOW = 10;
export const WINDOW_MS = 60_000;

/** The state of a unit a failed socket triggers. */
export interface TriggeredState {
  readonly name: string;
  /** undefined when systemd does not have it loaded */
  readonly activeState?: string;
  readonly subState?: string;
  readonly result?: string;
  /** For a service: how its main process last ended. */
  readonly exit?: MainExit;
}

/** The stderr line for a failure, e.g. `web.socket failed (Result=service-start-limit-hit); …`. */
export function failureLine(unit: Pick<Unit, 'name' | 'failedResult' | 'failedExit'>, triggered: readonly TriggeredState[] = []): string {
  const exit = unit.failedExit && exitText(unit.failedExit);
  let line = `${unit.name} failed (Result=${unit.failedResult ?? 'unknown'}${exit ? `, ${exit}` : ''})`;
  for (const t of triggered) {
    line += t.activeState === undefined
      ? `; it triggers ${t.name}, which is not loaded`
      : `; it triggers ${t.name}, which is ${t.activeState}/${t.subState ?? '?'}${t.result && t.result !== 'success' ? ` (Result=${t.result}${exitOf(t)})` : ''}`;
  }
  return line;
}

/**
 * The short form for the alarm text, or undefined when the triggered unit is merely inactive (the
 * usual case when the socket's own start failed: it says nothing the Result does not).
 */
export function triggeredSummary(triggered: readonly TriggeredState[]): string | undefined {
  const telling = triggered.filter((t) => t.activeState !== undefined && !(t.activeState === 'inactive' && (t.result ?? 'success') === 'success'));
  if (telling.length === 0) return undefined;
  return telling.map((t) => `${t.name} ${t.activeState}${t.result && t.result !== 'success' ? ` ${t.exit ? crashText(t.result, t.exit, ' ') : t.result}` : ''}`).join(' ');
}

function exitOf(t: TriggeredState): string {
  const text = t.exit && exitText(t.exit);
  return text ? `, ${text}` : '';
}

/**
 * Lines per fixed window: the first LINES_PER_WINDOW are written at once; the rest are counted and
 * reported in one line when the window ends, so a storm (hundreds of units failing on a reload)
 * costs at most LINES_PER_WINDOW + 1 lines a minute in the agent's log.
 */
export class RateLimitedLog {
  private windowStart = -Infinity;
  private said = 0;
  private suppressed = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly write: (line: string) => void,
    private readonly perWindow = LINES_PER_WINDOW,
    private readonly windowMs = WINDOW_MS,
    private readonly now: () => number = () => performance.now(),
  ) {}

  say(line: string): void {
    if (this.admit()) this.write(line);
  }

  /**
   * Takes a line's place in the window (then write it with `write`), or counts it as not listed.
   * Lets a caller skip the work of composing a line that would not be written.
   */
  admit(): boolean {
    const t = this.now();
    if (t - this.windowStart >= this.windowMs) {
      this.windowStart = t;
      this.said = 0;
    }
    if (this.said < this.perWindow) {
      this.said++;
      return true;
    }
    if (this.suppressed++ === 0) {
      this.timer = setTimeout(() => this.summarize(), Math.max(0, this.windowStart + this.windowMs - t));
      this.timer.unref();
    }
    return false;
  }

  writeAdmitted(line: string): void {
    this.write(line);
  }

  private summarize(): void {
    const n = this.suppressed;
    this.suppressed = 0;
    this.timer = undefined;
    if (n > 0) {
      this.write(`${n} more unit failure${n === 1 ? '' : 's'} not listed (at most ${this.perWindow} lines per ${this.windowMs / 1000} s); systemctl --failed lists the failed units`);
    }
  }

  stop(): void {
    clearTimeout(this.timer);
  }
}

/** Looping services remembered at once (a name and two numbers each): bounded whatever a storm brings. */
const MAX_LOOPING = 1000;

/**
 * A service that Restart= keeps restarting fails again every few hundred milliseconds: a line for
 * each failure would take the whole budget of LINES_PER_WINDOW and hide other units' failures.
 * Once it has restarted, it gets one line per window; its failures in between are summed up in one
 * line when the window ends (the restart loop alarm names it too).
 */
export class LoopingServices {
  private readonly seen = new Map<string, { at: number; more: number }>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly say: (line: string) => void,
    private readonly windowMs = WINDOW_MS,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Whether this failure gets its own line; false when it is counted into the unit's summary. */
  admit(unit: Pick<Unit, 'name' | 'type' | 'restarts'>): boolean {
    if (unit.type !== 'service' || unit.restarts === 0) return true;
    const t = this.now();
    const s = this.seen.get(unit.name);
    if (s && t - s.at < this.windowMs) {
      s.more++;
      this.timer ??= setTimeout(() => this.summarize(), this.windowMs).unref();
      return false;
    }
    if (s) this.flush(unit.name, s);
    else if (this.seen.size >= MAX_LOOPING) return true;
    this.seen.set(unit.name, { at: t, more: 0 });
    return true;
  }

  private flush(name: string, s: { more: number }): void {
    if (s.more === 0) return;
    this.say(`${name} failed ${s.more} more time${s.more === 1 ? '' : 's'} within ${this.windowMs / 1000} s, each time restarted by systemd (Restart=); see the alarm systemd_service_unit_restart_loop`);
    s.more = 0;
  }

  private summarize(): void {
    this.timer = undefined;
    const t = this.now();
    for (const [name, s] of this.seen) {
      this.flush(name, s);
      if (t - s.at >= this.windowMs) this.seen.delete(name);
    }
  }

  stop(): void {
    clearTimeout(this.timer);
  }
}

/** How long a failure line waits for a Result that systemd did not signal before the failure. */
const RESULT_SETTLE_MS = 100;

export class FailureReporter {
  /** unit → its `transitions` when last reported: the same failed period is reported once. */
  private readonly reported = new WeakMap<Unit, number>();
  private readonly log: RateLimitedLog;
  private readonly looping: LoopingServices;
  /** Reports still reading their reason, and the samples waiting for them. */
  private inProgress = 0;
  private waiters: Array<() => void> = [];
  private readonly unsubscribe: () => void;

  constructor(
    table: UnitTable,
    /** Whether any job charts this unit: the others' failures are none of the operator's concern here. */
    private readonly wanted: (unit: Unit) => boolean,
    private readonly link: Pick<SystemdLink, 'systemd'>,
    write: (line: string) => void = logError,
  ) {
    this.log = new RateLimitedLog(write);
    this.looping = new LoopingServices((line) => this.log.say(line));
    this.unsubscribe = table.onFailure((unit) => {
      try {
        this.onFailure(unit);
      } catch (err) {
        debug('failure report of %s: %s', unit.name, errorText(err));
      }
    });
  }

  stop(): void {
    this.unsubscribe();
    this.looping.stop();
    this.log.stop();
    this.release();
  }

  /**
   * Resolves once every report in progress has its reason, or after `maxMs`; undefined when none
   * is in progress. The sample that first shows a unit failed waits for it, because the agent
   * writes the alarm's notification with the label as it is at that moment: a reason that comes
   * one sample later never reaches the operator.
   */
  settled(maxMs: number): Promise<void> | undefined {
    if (this.inProgress === 0) return undefined;
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, maxMs);
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Counts a report in progress; call what it returns once, when the report has its reason. */
  private begin(): () => void {
    this.inProgress++;
    return () => {
      if (--this.inProgress === 0) this.release();
    };
  }

  private release(): void {
    const waiters = this.waiters;
    this.waiters = [];
    waiters.forEach((w) => w());
  }

  private onFailure(unit: Unit): void {
    if (this.reported.get(unit) === unit.transitions || !this.wanted(unit)) return;
    this.reported.set(unit, unit.transitions);
    unit.triggered = undefined;
    if (!this.looping.admit(unit)) return;
    // Beyond the rate limit nothing is read either: a storm of failures costs no D-Bus calls.
    if (!this.log.admit()) return;
    const done = this.begin();
    // The line names the failed run's Result (failedResult), kept from just before the failure:
    // by the time it is written a restarting unit's Result may say `success` again.
    if (unit.type === 'service' && unit.failedExit === undefined && unit.failedResult !== undefined && this.link.systemd) {
      // Found failed (at start, after a reconnect): its exit was never signalled; read it.
      void this.readExit(unit).finally(() => {
        done();
        this.log.writeAdmitted(failureLine(unit));
      });
      return;
    }
    if (unit.type !== 'socket') {
      if (unit.failedResult !== undefined) {
        done();
        this.log.writeAdmitted(failureLine(unit));
        return;
      }
      // None signalled before: give it a moment rather than write `Result=unknown`.
      setTimeout(() => {
        done();
        this.log.writeAdmitted(failureLine(unit));
      }, RESULT_SETTLE_MS).unref();
      return;
    }
    void this.triggeredBy(unit).then(
      (triggered) => {
        unit.triggered = triggeredSummary(triggered);
        done();
        this.log.writeAdmitted(failureLine(unit, triggered));
      },
      (err) => {
        debug('cannot read what %s triggers: %s', unit.name, errorText(err));
        done();
        this.log.writeAdmitted(failureLine(unit));
      },
    );
  }

  /** Reads a failed service's main exit into the model (failedExit), when systemd still has it failed. */
  private async readExit(unit: Unit): Promise<void> {
    const manager = this.link.systemd;
    if (!manager) return;
    const seen = unit.transitions;
    try {
      const exit = await readMainExit(manager, unitPath(unit.name));
      // Started again meanwhile: the exit read may be the next run's.
      if (exit && unit.transitions === seen && unit.failedExit === undefined) unit.failedExit = exit;
    } catch (err) {
      debug('cannot read the exit of %s: %s', unit.name, errorText(err));
    }
  }

  /** The units a socket triggers and their state, read now (Triggers is fixed until a reload). */
  private async triggeredBy(socket: Unit): Promise<TriggeredState[]> {
    const manager = this.link.systemd;
    if (!manager) return [];
    const names = await manager.getProperty(unitPath(socket.name), UNIT_IFACE, 'Triggers');
    if (!Array.isArray(names)) return [];
    const out: TriggeredState[] = [];
    for (const name of names.slice(0, 3)) {
      if (typeof name !== 'string') continue;
      // Listed, not read from its object: reading an unloaded unit's object would load it.
      const { unit } = await manager.listUnit(name);
      if (!unit || unit.loadState === 'not-found') {
        out.push({ name });
        continue;
      }
      const result = unit.activeState === 'failed' || unit.activeState === 'inactive' ? await manager.result(unit.path, name).catch(() => undefined) : undefined;
      const exit = result !== undefined && result !== 'success' && name.endsWith('.service') ? await readMainExit(manager, unit.path).catch(() => undefined) : undefined;
      out.push({ name, activeState: unit.activeState, subState: unit.subState, ...(result !== undefined ? { result } : {}), ...(exit ? { exit } : {}) });
    }
    return out;
  }
}
