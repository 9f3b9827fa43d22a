// Typed calls to systemd's manager and the decoding of its signals into unit events.
// Knows systemd's D-Bus API; knows nothing about charts or jobs.

import type { Bus, Seq, Signal } from './bus.js';

/** What the manager needs of a connection: calls (a fake in tests). */
export type Caller = Pick<Bus, 'call'>;
import { unitType } from '../units/names.js';
import { unitTypeInfo } from '../units/types.js';
import { decodeUnitList, listedUnit, rawBodyOf, type ListedUnit } from './listing.js';

export type { ListedUnit } from './listing.js';

export const SYSTEMD = 'org.freedesktop.systemd1';
const MANAGER_PATH = '/org/freedesktop/systemd1';
const MANAGER = 'org.freedesktop.systemd1.Manager';
const UNIT = 'org.freedesktop.systemd1.Unit';
const SERVICE = 'org.freedesktop.systemd1.Service';
const PROPERTIES = 'org.freedesktop.DBus.Properties';
const UNIT_PATHS = '/org/freedesktop/systemd1/unit';

/**
 * The rules of the units' own signals. Off while systemd reloads (see SystemdSession.muteUnitSignals):
 * a daemon-reload re-creates every unit, with a UnitRemoved and a UnitNew each (6,300 at 1,000
 * sockets and their services), and the listing after the reload says all they would.
 */
export const UNIT_SIGNAL_RULES: readonly string[] = [
  `type='signal',sender='${SYSTEMD}',interface='${PROPERTIES}',member='PropertiesChanged',path_namespace='${UNIT_PATHS}'`,
  `type='signal',sender='${SYSTEMD}',interface='${MANAGER}',member='UnitNew'`,
  `type='signal',sender='${SYSTEMD}',interface='${MANAGER}',member='UnitRemoved'`,
];

/** The match rules that bring every signal the plugin needs, one rule per kind (not per unit). */
export const MATCH_RULES: readonly string[] = [
  ...UNIT_SIGNAL_RULES,
  `type='signal',sender='${SYSTEMD}',interface='${MANAGER}',member='Reloading'`,
  `type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='${SYSTEMD}'`,
];

/** Units as systemd listed them, and where its answer arrived among the signals. */
export interface Listing {
  /** Decoded as iterated (see listing.ts): iterate once, or spread into an array. */
  readonly units: Iterable<ListedUnit>;
  readonly seq: Seq;
}

/** What a signal means for the unit table. */
export type UnitEvent =
  | {
      kind: 'state';
      seq: Seq;
      path: string;
      activeState?: string;
      subState?: string;
      result?: string;
      /** A service's NRestarts, and its main process's exit (ExecMainCode/ExecMainStatus). */
      nRestarts?: number;
      execCode?: number;
      execStatus?: number;
    }
  | { kind: 'new'; name: string; path: string }
  | { kind: 'removed'; name: string; path: string }
  | { kind: 'reloading'; started: boolean }
  /** systemd's bus name got a new owner (daemon-reexec, restart) or lost it (`owner` empty). */
  | { kind: 'owner'; seq: Seq; owner: string };

export class SystemdManager {
  constructor(private readonly bus: Caller) {}

  /**
   * Whether systemd holds its name on this bus. Asked of the bus daemon, so that a bus without
   * systemd answers "no" instead of trying to activate it.
   */
  async isOnBus(): Promise<boolean> {
    const {
      body: [has],
    } = await this.bus.call({
      destination: 'org.freedesktop.DBus',
      path: '/org/freedesktop/DBus',
      interface: 'org.freedesktop.DBus',
      member: 'NameHasOwner',
      signature: 's',
      body: [SYSTEMD],
    });
    return has === true;
  }

  /**
   * The unique name that owns systemd's name now (`:1.1`): its signals are taken from that sender
   * only. Rejects with NameHasNoOwner when systemd is not on the bus.
   */
  async owner(): Promise<{ owner: string; seq: Seq }> {
    const { body, seq } = await this.bus.call({
      destination: 'org.freedesktop.DBus',
      path: '/org/freedesktop/DBus',
      interface: 'org.freedesktop.DBus',
      member: 'GetNameOwner',
      signature: 's',
      body: [SYSTEMD],
    });
    return { owner: typeof body[0] === 'string' ? body[0] : '', seq };
  }

  /** `:1.42 (uid 65534, pid 1234)`: who a connection is, asked of the bus daemon (two calls). */
  async describeSender(name: string): Promise<string> {
    const ask = (member: string): Promise<string> =>
      this.bus
        .call({ destination: 'org.freedesktop.DBus', path: '/org/freedesktop/DBus', interface: 'org.freedesktop.DBus', member, signature: 's', body: [name] })
        // 0: a peer the daemon cannot name (another pid namespace)
        .then(({ body: [n] }) => (typeof n === 'number' && (n > 0 || member.endsWith('User')) ? String(n) : '?'), () => '?');
    const [uid, pid] = await Promise.all([ask('GetConnectionUnixUser'), ask('GetConnectionUnixProcessID')]);
    return uid === '?' && pid === '?' ? `${name} (gone already)` : `${name} (uid ${uid}, pid ${pid})`;
  }

  /** Answers at once unless systemd is hung (sd-bus answers Peer.Ping itself, on any object). */
  async ping(): Promise<void> {
    await this.bus.call({ destination: SYSTEMD, path: MANAGER_PATH, interface: 'org.freedesktop.DBus.Peer', member: 'Ping' });
  }

  /** Starts the flow of unit signals; systemd emits none on the system bus before this. */
  async subscribe(): Promise<void> {
    await this.bus.call({ destination: SYSTEMD, path: MANAGER_PATH, interface: MANAGER, member: 'Subscribe' });
  }

  /**
   * Units whose name matches any of the globs, in any state. Uses ListUnitsByPatterns (systemd ≥
   * 230, filtered by systemd) and falls back to ListUnits on older managers.
   */
  async listUnits(patterns: readonly string[]): Promise<Listing> {
    let reply;
    try {
      reply = await this.bus.call({
        destination: SYSTEMD,
        path: MANAGER_PATH,
        interface: MANAGER,
        member: 'ListUnitsByPatterns',
        signature: 'asas',
        body: [[], [...patterns]],
      });
    } catch (err) {
      if ((err as { dbusName?: string }).dbusName !== 'org.freedesktop.DBus.Error.UnknownMethod') throw err;
      reply = await this.bus.call({ destination: SYSTEMD, path: MANAGER_PATH, interface: MANAGER, member: 'ListUnits' });
    }
    const raw = rawBodyOf(reply.body);
    // A malformed one throws a one-line ListingError up the caller's error path (a resync
    // retries, a lookup resyncs): never half a listing.
    if (raw) return { units: decodeUnitList(raw), seq: reply.seq };
    // Decoded by dbus-next (a reply whose signature was not the expected one): taken row by row.
    const rows = reply.body[0];
    if (!Array.isArray(rows)) return { units: [], seq: reply.seq };
    const units = rows.flatMap((row: unknown) => {
      if (!Array.isArray(row) || typeof row[0] !== 'string' || typeof row[6] !== 'string') return [];
      return [listedUnit(row[0], String(row[2]), String(row[3]), String(row[4]))];
    });
    return { units, seq: reply.seq };
  }

  /**
   * The unit of that exact name if systemd has it loaded, without loading it: reading a unit's
   * object properties would make systemd load it (and emit UnitNew), which with not-found units
   * and a second client turns into a load/unload loop.
   */
  async listUnit(name: string): Promise<{ unit: ListedUnit | undefined; seq: Seq }> {
    const { units, seq } = await this.listUnits([escapeGlob(name)]);
    for (const unit of units) if (unit.name === name) return { unit, seq };
    return { unit: undefined, seq };
  }

  /** One property of a unit object, or undefined when the unit or property is gone. */
  async getProperty(path: string, iface: string, property: string): Promise<unknown> {
    const {
      body: [variant],
    } = await this.bus.call({
      destination: SYSTEMD,
      path,
      interface: PROPERTIES,
      member: 'Get',
      signature: 'ss',
      body: [iface, property],
    });
    return (variant as { value?: unknown } | undefined)?.value;
  }

  async isTransient(path: string): Promise<boolean> {
    return (await this.getProperty(path, UNIT, 'Transient')) === true;
  }

  /** Why the unit last stopped or failed (`exit-code`, `resources`…), for unit types that say. */
  async result(path: string, name: string): Promise<string | undefined> {
    const iface = typeInterface(unitType(name));
    if (!iface) return undefined;
    const value = await this.getProperty(path, iface, 'Result');
    return isResultWord(value) ? value : undefined;
  }
}

/**
 * How a service's main process last ended (ExecMainCode/ExecMainStatus), read for a service found
 * failed (its exit was not signalled while the plugin watched); undefined when systemd has none.
 */
export async function readMainExit(manager: Pick<SystemdManager, 'getProperty'>, path: string): Promise<{ code: number; status: number } | undefined> {
  const [code, status] = await Promise.all([manager.getProperty(path, SERVICE, 'ExecMainCode'), manager.getProperty(path, SERVICE, 'ExecMainStatus')]);
  const fields = serviceFields({ ExecMainCode: { value: code }, ExecMainStatus: { value: status } });
  return fields.execCode === undefined || fields.execCode === 0 ? undefined : { code: fields.execCode, status: fields.execStatus! };
}

/** The unit-type interface that carries `Result`, e.g. `org.freedesktop.systemd1.Socket`. */
function typeInterface(type: string): string | undefined {
  if (!unitTypeInfo(type)?.hasResult) return undefined;
  return `org.freedesktop.systemd1.${type[0]!.toUpperCase()}${type.slice(1)}`;
}

/**
 * Whether a Result looks like one of systemd's words (`exit-code`, `start-limit-hit`…): it ends up
 * in the alarm's label and on stderr, so anything else is not taken.
 */
export function isResultWord(value: unknown): value is string {
  return typeof value === 'string' && /^[a-z][a-z0-9-]{0,63}$/.test(value);
}

/**
 * A pattern that matches only this name. systemd matches with FNM_NOESCAPE (a backslash is an
 * ordinary character, as in `my\x2dapp.socket`), so special characters are bracketed instead.
 */
export function escapeGlob(name: string): string {
  return name.replace(/[*?[]/g, '[$&]');
}

/** Turns one systemd signal into a unit event; undefined for signals of no interest. */
export function decodeSignal(s: Signal): UnitEvent | undefined {
  if (s.interface === PROPERTIES && s.member === 'PropertiesChanged') {
    const [iface, changed] = s.body as [unknown, Record<string, { value?: unknown }> | undefined];
    if (typeof iface !== 'string' || !changed || typeof changed !== 'object') return undefined;
    if (iface === UNIT) {
      const activeState = changed.ActiveState?.value;
      const subState = changed.SubState?.value;
      if (typeof activeState !== 'string' && typeof subState !== 'string') return undefined;
      return {
        kind: 'state',
        seq: s.seq,
        path: s.path,
        ...(typeof activeState === 'string' ? { activeState } : {}),
        ...(typeof subState === 'string' ? { subState } : {}),
      };
    }
    // The type's interface (systemd sends every property that emits changes, each time): Result;
    // for a service also NRestarts and ExecMainCode/ExecMainStatus (systemd 252 emits them).
    const result = changed.Result?.value;
    const service = iface === SERVICE ? serviceFields(changed) : {};
    if (!isResultWord(result) && Object.keys(service).length === 0) return undefined;
    return { kind: 'state', seq: s.seq, path: s.path, ...(isResultWord(result) ? { result } : {}), ...service };
  }
  if (s.interface === MANAGER) {
    if ((s.member === 'UnitNew' || s.member === 'UnitRemoved') && typeof s.body[0] === 'string' && typeof s.body[1] === 'string') {
      return { kind: s.member === 'UnitNew' ? 'new' : 'removed', name: s.body[0], path: s.body[1] };
    }
    if (s.member === 'Reloading' && typeof s.body[0] === 'boolean') return { kind: 'reloading', started: s.body[0] };
    return undefined;
  }
  if (s.member === 'NameOwnerChanged' && s.body[0] === SYSTEMD && typeof s.body[2] === 'string') {
    return { kind: 'owner', seq: s.seq, owner: s.body[2] };
  }
  return undefined;
}


/** A service's restart count and main exit from its PropertiesChanged, each only if well-formed. */
function serviceFields(changed: Record<string, { value?: unknown } | undefined>): { nRestarts?: number; execCode?: number; execStatus?: number } {
  const n = changed.NRestarts?.value;
  const code = changed.ExecMainCode?.value;
  const status = changed.ExecMainStatus?.value;
  const int = (v: unknown, max: number): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max;
  return {
    ...(int(n, 0xffffffff) ? { nRestarts: n } : {}),
    // CLD_* codes 0..6; a status is an exit status (0..255) or a signal number
    ...(int(code, 6) && int(status, 255) ? { execCode: code, execStatus: status } : {}),
  };
}
