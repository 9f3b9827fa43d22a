// A fake systemd behind the port UnitSync uses (plugin/systemd/port.ts), for deterministic unit
// tests of the sync: units in memory, signals sent when the test changes them, and answers the
// test may hold back and release in the order it chooses.
//
// It keeps the one ordering rule a real connection has: systemd's replies and signals arrive in
// the order systemd sent them. A held call is answered from the units as they are when the test
// releases it, and its reply takes its place (`seq`) among the signals at that moment; a signal
// emitted right after a release, before the sync's code resumes, is newer than that reply, as when
// dbus-next hands over a reply and a signal from one read.

import { createRequire } from 'node:module';
import { afterEach, beforeEach, vi } from 'vitest';
import { BusCallError, CLOSED_ERROR, type Seq, type Signal } from '../../plugin/systemd/bus.js';
import { SYSTEMD, SystemdManager, escapeGlob, type ListedUnit, type Listing } from '../../plugin/systemd/manager.js';
import { decodeUnitList, RawBody } from '../../plugin/systemd/listing.js';
import type { SystemdPort, SystemdSession } from '../../plugin/systemd/port.js';
import { UnitSync, type SyncOptions } from '../../plugin/systemd/sync.js';
import { unitPath } from '../../plugin/units/names.js';
import { UnitTable } from '../../plugin/units/table.js';

export type Method = 'watch' | 'owner' | 'subscribe' | 'listUnits' | 'isTransient' | 'result' | 'ping' | 'isOnBus' | 'describeSender';

export interface FakeUnit {
  name: string;
  loadState: string;
  activeState: string;
  subState: string;
  transient: boolean;
  result?: string;
}

export interface Call {
  readonly method: Method;
  readonly args: readonly unknown[];
  /** Fake-clock time the call was made. */
  readonly at: number;
  /** Answers from the units as they are now. */
  answer(): void;
  fail(err: Error): void;
}

const PROPERTIES = 'org.freedesktop.DBus.Properties';
const MANAGER = 'org.freedesktop.systemd1.Manager';
const BUS_DRIVER = 'org.freedesktop.DBus';

/** fnmatch as systemd's ListUnitsByPatterns does it (FNM_NOESCAPE): `*`, `?` and `[…]`. */
function globMatches(glob: string, name: string): boolean {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[') {
      const end = glob.indexOf(']', i + 2);
      if (end < 0) re += '\\[';
      else {
        const body = glob.slice(i + 1, end).replace(/^!/, '^').replace(/[\\\]]/g, '\\$&');
        re += `[${body}]`;
        i = end;
      }
    } else re += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, 's').test(name);
}

const marshall = createRequire(import.meta.url)('dbus-next/lib/marshall.js') as (signature: string, data: unknown[]) => Buffer;

export class FakeSystemd {
  readonly units = new Map<string, FakeUnit>();
  /** Listings answered as the bus hands them over (a reply body walked in place), not as an array. */
  rawListings = false;
  /** systemd's unique name on the bus; '' while it is off the bus. */
  owner = ':1.1';
  /** False: connecting fails as with no socket (the bus itself is unreachable). */
  reachable = true;
  /** Every call made, on any connection, in order. */
  readonly calls: Call[] = [];
  /** Calls held back until the test answers them (see hold). */
  readonly held: Call[] = [];
  /** Methods that fail with this error instead of answering (see failWith). */
  private readonly failing = new Map<Method, () => Error>();
  private readonly holding = new Set<Method>();
  readonly sessions: FakeSession[] = [];
  /** Fake-clock time of every connection attempt. */
  readonly connects: number[] = [];
  private seq: Seq = 0;

  readonly port: SystemdPort = async () => {
    this.connects.push(Date.now());
    if (!this.reachable) throw Object.assign(new Error('connect ENOENT /fake/bus'), { code: 'ENOENT' });
    const session = new FakeSession(this);
    this.sessions.push(session);
    return session;
  };

  /** The latest connection. */
  get session(): FakeSession {
    return this.sessions.at(-1)!;
  }

  unit(name: string, activeState = 'active', extra: Partial<FakeUnit> = {}): this {
    this.units.set(name, { name, loadState: 'loaded', activeState, subState: activeState === 'active' ? 'running' : 'dead', transient: false, ...extra });
    return this;
  }

  /** Holds calls of these methods until answered one by one or released. */
  hold(...methods: Method[]): void {
    methods.forEach((m) => this.holding.add(m));
  }

  /** Stops holding these methods and answers their held calls, in order. */
  release(...methods: Method[]): void {
    methods.forEach((m) => this.holding.delete(m));
    for (const c of this.held.filter((c) => methods.includes(c.method))) this.take(c).answer();
  }

  /** The oldest held call of that method, taken off the held list for the test to settle. */
  take(c: Call): Call;
  take(method: Method): Call;
  take(what: Method | Call): Call {
    const c = typeof what === 'string' ? this.held.find((h) => h.method === what) : what;
    if (!c) throw new Error(`no held ${String(what)} call`);
    this.held.splice(this.held.indexOf(c), 1);
    return c;
  }

  /** Calls of that method answer with this error from now on (undefined: answer again). */
  failWith(method: Method, error: (() => Error) | undefined): void {
    if (error) this.failing.set(method, error);
    else this.failing.delete(method);
  }

  callsOf(method: Method): Call[] {
    return this.calls.filter((c) => c.method === method);
  }

  /** Full listings (the sync's own patterns), as opposed to lookups of given names. */
  listingsOf(patterns: readonly string[]): Call[] {
    return this.callsOf('listUnits').filter((c) => JSON.stringify(c.args[0]) === JSON.stringify(patterns));
  }

  call(session: FakeSession, method: Method, args: unknown[]): Promise<unknown> {
    session.sent++;
    if (session.closed) return Promise.reject(closedError('D-Bus connection is closed'));
    return new Promise((resolve, reject) => {
      let settled = false;
      const call: Call = {
        method,
        args,
        at: Date.now(),
        answer: () => {
          if (settled || session.closed) return;
          const failure = this.failing.get(method);
          if (failure) return call.fail(failure());
          settled = true;
          session.pending.delete(call);
          try {
            resolve(this.answer(method, args));
          } catch (err) {
            reject(err as Error);
          }
        },
        fail: (err) => {
          if (settled) return;
          settled = true;
          session.pending.delete(call);
          reject(err);
        },
      };
      this.calls.push(call);
      session.pending.add(call);
      if (this.holding.has(method)) this.held.push(call);
      else call.answer();
    });
  }

  private answer(method: Method, args: unknown[]): unknown {
    switch (method) {
      case 'owner':
        return { owner: this.owner, seq: ++this.seq };
      case 'listUnits': {
        const patterns = args[0] as string[];
        const units: ListedUnit[] = [...this.units.values()]
          .filter((u) => patterns.some((p) => globMatches(p, u.name)))
          .map((u) => ({ name: u.name, path: unitPath(u.name), loadState: u.loadState, activeState: u.activeState, subState: u.subState }));
        if (this.rawListings) {
          const rows = units.map((u) => [u.name, '', u.loadState, u.activeState, u.subState, '', u.path, 0, '', '/']);
          return { units: decodeUnitList(new RawBody(marshall('a(ssssssouso)', [rows]), true)), seq: ++this.seq } satisfies Listing;
        }
        return { units, seq: ++this.seq } satisfies Listing;
      }
      case 'isTransient':
      case 'result': {
        const unit = [...this.units.values()].find((u) => unitPath(u.name) === args[0]);
        if (!unit) throw new BusCallError(`Unit ${String(args[0])} not loaded`, 'org.freedesktop.systemd1.NoSuchUnit');
        return method === 'isTransient' ? unit.transient : unit.result;
      }
      case 'isOnBus':
        return this.owner !== '';
      case 'describeSender':
        return `${String(args[0])} (uid 1000, pid 4242)`;
      default:
        return undefined;
    }
  }

  /** Delivers a signal, raw, to every open connection, with the next arrival seq. */
  emit(signal: Omit<Signal, 'seq'>): void {
    const s: Signal = { ...signal, seq: ++this.seq };
    for (const session of this.sessions) if (!session.closed) session.signal(s);
  }

  /** systemd changes a unit's state and says so (from `sender`, systemd's own name by default). */
  set(name: string, activeState: string, subState = activeState, sender = this.owner): void {
    const unit = this.units.get(name);
    if (unit && sender === this.owner) Object.assign(unit, { activeState, subState });
    this.emit({
      sender,
      path: unitPath(name),
      interface: PROPERTIES,
      member: 'PropertiesChanged',
      body: ['org.freedesktop.systemd1.Unit', { ActiveState: { value: activeState }, SubState: { value: subState } }, []],
    });
  }

  /** systemd loads a unit (UnitNew). */
  add(name: string, activeState = 'active', extra: Partial<FakeUnit> = {}): void {
    this.unit(name, activeState, extra);
    this.emit({ sender: this.owner, path: '/org/freedesktop/systemd1', interface: MANAGER, member: 'UnitNew', body: [name, unitPath(name)] });
  }

  /** systemd unloads a unit (UnitRemoved); `keep`: says so but keeps it (a load right after). */
  remove(name: string, keep = false): void {
    if (!keep) this.units.delete(name);
    this.emit({ sender: this.owner, path: '/org/freedesktop/systemd1', interface: MANAGER, member: 'UnitRemoved', body: [name, unitPath(name)] });
  }

  reloading(started: boolean): void {
    this.emit({ sender: this.owner, path: '/org/freedesktop/systemd1', interface: MANAGER, member: 'Reloading', body: [started] });
  }

  /** systemd's name changes hands (daemon-reexec) or is released (owner ''), said by the bus driver. */
  changeOwner(owner: string, sender = BUS_DRIVER): void {
    const old = this.owner;
    if (sender === BUS_DRIVER) this.owner = owner;
    this.emit({ sender, path: '/org/freedesktop/DBus', interface: BUS_DRIVER, member: 'NameOwnerChanged', body: [SYSTEMD, old, owner] });
  }
}

function closedError(why: string): BusCallError {
  return new BusCallError(why, CLOSED_ERROR);
}

export class FakeSession implements SystemdSession {
  readonly openedAt = Date.now();
  sent = 0;
  closed = false;
  readonly pending = new Set<Call>();
  /** Never called by the sync; readers other than the sync would use it (see link.ts). */
  readonly systemd = new SystemdManager({ call: () => Promise.reject(new Error('not faked')) });
  private readonly signalHandlers: ((s: Signal) => void)[] = [];
  private readonly closeHandlers: ((reason: string) => void)[] = [];

  constructor(private readonly fake: FakeSystemd) {}

  on(_event: 'signal', handler: (s: Signal) => void): void {
    this.signalHandlers.push(handler);
  }

  once(_event: 'close', handler: (reason: string) => void): void {
    this.closeHandlers.push(handler);
  }

  signal(s: Signal): void {
    this.signalHandlers.forEach((h) => h(s));
  }

  close(reason = 'closed by the plugin'): void {
    if (this.closed) return;
    this.closed = true;
    for (const c of [...this.pending]) c.fail(closedError(`D-Bus connection lost (${reason})`));
    this.closeHandlers.splice(0).forEach((h) => h(reason));
  }

  watch(): Promise<void> {
    return this.fake.call(this, 'watch', []) as Promise<void>;
  }
  owner(): Promise<{ owner: string; seq: Seq }> {
    return this.fake.call(this, 'owner', []) as Promise<{ owner: string; seq: Seq }>;
  }
  subscribe(): Promise<void> {
    return this.fake.call(this, 'subscribe', []) as Promise<void>;
  }
  listUnits(patterns: readonly string[]): Promise<Listing> {
    return this.fake.call(this, 'listUnits', [[...patterns]]) as Promise<Listing>;
  }
  async listUnit(name: string): Promise<{ unit: ListedUnit | undefined; seq: Seq }> {
    const { units, seq } = await this.listUnits([escapeGlob(name)]);
    return { unit: [...units].find((u) => u.name === name), seq };
  }
  isTransient(path: string): Promise<boolean> {
    return this.fake.call(this, 'isTransient', [path]) as Promise<boolean>;
  }
  result(path: string, name: string): Promise<string | undefined> {
    return this.fake.call(this, 'result', [path, name]) as Promise<string | undefined>;
  }
  ping(): Promise<void> {
    return this.fake.call(this, 'ping', []) as Promise<void>;
  }
  isOnBus(): Promise<boolean> {
    return this.fake.call(this, 'isOnBus', []) as Promise<boolean>;
  }
  describeSender(name: string): Promise<string> {
    return this.fake.call(this, 'describeSender', [name]) as Promise<string>;
  }
}

/** Fake timers for setTimeout/setInterval and Date; setImmediate stays real, for `settle`. */
export function useFakeClock(): void {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
  // logErrorThrottled remembers keys by Date.now(): each test starts a day after the previous one.
  clockBase += 86_400_000;
  vi.setSystemTime(clockBase);
}
let clockBase = Date.UTC(2030, 0, 1);

/** Lets every promise chain run to its end (no timer moves). */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Moves the fake clock, running the timers due and the promises they start. */
export async function advance(ms: number): Promise<void> {
  await vi.advanceTimersByTimeAsync(ms);
  await settle();
}

export interface Harness {
  readonly fake: FakeSystemd;
  readonly table: UnitTable;
  readonly sync: UnitSync;
  /** What the sync wrote on stderr, one entry per line. */
  readonly stderr: string[];
}

/** Harnesses made by the current test, stopped after it. */
const made: Harness[] = [];

/** A test file's hooks: a fake clock for each test; every harness it made stopped after it, real timers and mocks back. */
export function useSyncHarnesses(): void {
  beforeEach(() => useFakeClock());
  afterEach(() => {
    for (const h of made.splice(0)) h.sync.stop();
    vi.useRealTimers();
    vi.restoreAllMocks();
  });
}

/** A sync over `fake` (not started); stderr captured. Job wants every unit not named `ignored*`. */
export function harness(fake = new FakeSystemd(), options: Partial<SyncOptions> = {}): Harness {
  const table = new UnitTable();
  const sync = new UnitSync(table, {
    port: fake.port,
    address: 'unix:path=/fake/bus',
    patterns: ['*'],
    wants: (name) => !name.startsWith('ignored'),
    needTransient: true,
    ...options,
  });
  const stderr: string[] = [];
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stderr.push(String(chunk).replace(/^systemdunits\.plugin: /, '').trimEnd());
    return true;
  });
  const h = { fake, table, sync, stderr };
  made.push(h);
  return h;
}
