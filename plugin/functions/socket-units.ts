// The `systemd-socket-units` Netdata Function: one row per socket unit with its state, Result,
// the units it triggers and their state, where it listens, its connection counters and how long
// it has been in its current state, in the agent's table format for functions (`type: table`).
// Everything that is not in the unit table is read when the function is called, a bounded
// number of calls at a time, and reading stops at the caller's deadline (cells left unread are
// null) so the answer is never later than the agent waits.

import type { FunctionAnswer, FunctionSpec } from '../netdata/functions.js';
import { mapLimited, withDeadline } from '../systemd/limit.js';
import { escapeGlob, type SystemdManager } from '../systemd/manager.js';
import { readAccept, readCounters, SOCKET_INTERFACE, UNIT_INTERFACE, type SocketAcceptIndex } from '../systemd/socket-counters.js';
import { readableUnitName, unitPath } from '../units/names.js';
import type { UnitTable } from '../units/table.js';
import { crashText } from '../units/exits.js';

export const SOCKET_UNITS_FUNCTION = 'systemd-socket-units';
const TIMEOUT_SEC = 10;
const HELP = 'Socket units: state, result, triggered service and how it exited, listen addresses, connections, time in state';
/** Sockets read at once: 6 Properties.Get calls each, so about 30 calls in flight. */
const CONCURRENCY = 5;

/** What the function knows of one socket unit; null where it could not be read. */
export interface SocketRow {
  readonly unit: string;
  readonly state: string;
  readonly substate: string;
  readonly result: string | null;
  readonly accept: boolean | null;
  /** Units the socket triggers (its service, or the running instances of an Accept=yes one). */
  readonly triggers: readonly string[];
  /** ActiveState of each of `triggers`, in the same order; `unknown` when systemd does not list it. */
  readonly triggerStates: readonly string[];
  /**
   * How each failed service of `triggers` ended (`web.service: exit-code, status=203/EXEC`), from the
   * unit model (no call): the reason a socket's service does not serve.
   */
  readonly triggerExits: readonly string[];
  /** e.g. `127.0.0.1:80 (Stream)`. */
  readonly listen: readonly string[];
  readonly accepted: number | null;
  readonly connections: number | null;
  readonly refused: number | null;
  /** StateChangeTimestamp: µs since the epoch, when the unit entered its current state. */
  readonly changedUs: number | null;
}

interface Column {
  readonly id: string;
  readonly name: string;
  readonly type: 'string' | 'integer' | 'duration' | 'timestamp' | 'none';
  readonly visualization?: 'value' | 'pill' | 'rowOptions';
  readonly transform?: 'none' | 'number' | 'duration' | 'datetime';
  readonly units?: string;
  readonly sort?: 'ascending' | 'descending';
  readonly filter?: 'none' | 'multiselect' | 'range';
  readonly unique?: boolean;
  readonly visible?: boolean;
  readonly sticky?: boolean;
  readonly fullWidth?: boolean;
  readonly dummy?: boolean;
  /** The cell for one row. */
  readonly value: (row: SocketRow, nowMs: number) => unknown;
}

const SEVERITY: Record<string, string> = { failed: 'error', activating: 'notice', deactivating: 'notice', inactive: 'normal' };

/** The table's columns, in order: data rows carry the cells in this order. */
export const COLUMNS: readonly Column[] = [
  { id: 'unit', name: 'Unit', type: 'string', unique: true, sticky: true, filter: 'multiselect', value: (r) => readableUnitName(r.unit) },
  { id: 'state', name: 'State', type: 'string', visualization: 'pill', filter: 'multiselect', value: (r) => r.state },
  { id: 'substate', name: 'Sub State', type: 'string', visualization: 'pill', filter: 'multiselect', value: (r) => r.substate },
  { id: 'result', name: 'Result', type: 'string', filter: 'multiselect', value: (r) => r.result },
  { id: 'accept', name: 'Accept', type: 'string', filter: 'multiselect', value: (r) => (r.accept === null ? null : r.accept ? 'yes' : 'no') },
  { id: 'triggers', name: 'Triggers', type: 'string', filter: 'multiselect', value: (r) => r.triggers.map(readableUnitName).join(' ') || null },
  { id: 'triggers_state', name: 'Triggered State', type: 'string', visualization: 'pill', filter: 'multiselect', value: (r) => [...new Set(r.triggerStates)].join(' ') || null },
  { id: 'triggers_exit', name: 'Triggered Exit', type: 'string', filter: 'multiselect', value: (r) => r.triggerExits.join('; ') || null },
  { id: 'listen', name: 'Listen', type: 'string', fullWidth: true, filter: 'none', value: (r) => r.listen.join(' ') || null },
  { id: 'accepted', name: 'Accepted', type: 'integer', transform: 'number', units: 'connections', sort: 'descending', filter: 'range', value: (r) => r.accepted },
  { id: 'connections', name: 'Connections', type: 'integer', transform: 'number', units: 'connections', sort: 'descending', filter: 'range', value: (r) => r.connections },
  { id: 'refused', name: 'Refused', type: 'integer', transform: 'number', units: 'connections', sort: 'descending', filter: 'range', value: (r) => r.refused },
  {
    id: 'in_state',
    name: 'In State For',
    type: 'duration',
    transform: 'duration',
    units: 's',
    sort: 'descending',
    filter: 'range',
    value: (r, nowMs) => (r.changedUs === null ? null : Math.max(0, Math.round((nowMs - r.changedUs / 1000) / 1000))),
  },
  { id: 'since', name: 'Since', type: 'timestamp', transform: 'datetime', filter: 'range', visible: false, value: (r) => (r.changedUs === null ? null : Math.round(r.changedUs / 1000)) },
  {
    id: 'row_options',
    name: 'Row Options',
    type: 'none',
    visualization: 'rowOptions',
    filter: 'none',
    visible: false,
    dummy: true,
    value: (r) => ({ severity: SEVERITY[r.state] ?? 'normal' }),
  },
];

/** The columns object of the documented table format (as the agent's own tables write it). */
function columnsJson(): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  COLUMNS.forEach((c, index) => {
    out[c.id] = {
      index,
      unique_key: c.unique === true,
      name: c.name,
      visible: c.visible ?? true,
      type: c.type,
      ...(c.units ? { units: c.units } : {}),
      visualization: c.visualization ?? 'value',
      value_options: { ...(c.units ? { units: c.units } : {}), transform: c.transform ?? 'none', decimal_points: 0, default_value: null },
      sort: c.sort ?? 'ascending',
      sortable: c.dummy !== true,
      sticky: c.sticky === true,
      summary: 'count',
      filter: c.filter ?? 'multiselect',
      full_width: c.fullWidth === true,
      wrap: false,
      default_expanded_filter: c.id === 'state',
      ...(c.dummy ? { dummy: true } : {}),
    };
  });
  return out;
}

/** The function's answer for these rows: a pure function of them and the time. */
export function socketUnitsTable(rows: readonly SocketRow[], nowMs: number): Record<string, unknown> {
  return {
    status: 200,
    type: 'table',
    has_history: false,
    help: HELP,
    update_every: 1,
    expires: 0,
    accepted_params: ['info'],
    required_params: [],
    columns: columnsJson(),
    data: [...rows].sort((a, b) => (a.unit < b.unit ? -1 : 1)).map((r) => COLUMNS.map((c) => c.value(r, nowMs))),
    default_sort_column: 'unit',
  };
}

/** The preflight answer (`NAME info`): what the function accepts, without data. */
export function socketUnitsInfo(): Record<string, unknown> {
  return { status: 200, type: 'table', has_history: false, help: HELP, update_every: 1, accepted_params: ['info'], required_params: [] };
}

export interface SocketUnitsDeps {
  readonly table: UnitTable;
  /** systemd's API once the unit table is in step with it, or undefined if not by the deadline. */
  readonly systemd: (deadline: number) => Promise<SystemdManager | undefined>;
  readonly accept: SocketAcceptIndex;
}

export function socketUnitsFunction(deps: SocketUnitsDeps): FunctionSpec {
  return {
    name: SOCKET_UNITS_FUNCTION,
    timeoutSec: TIMEOUT_SEC,
    help: HELP,
    // On v2 agents, for signed-in users only, as Netdata's own systemd-list-units.
    tags: 'top',
    access: 'member',
    run: async (args, deadline): Promise<FunctionAnswer> => {
      if (args.includes('info')) return { status: 200, body: socketUnitsInfo() };
      // Called just after start-up or a reconnect, it waits for the listing under way.
      const systemd = await deps.systemd(deadline);
      if (!systemd) return { status: 503, body: { status: 503, error_message: 'systemd is out of reach right now; try again shortly' } };
      const rows = await collectSocketRows(deps, systemd, deadline);
      return { status: 200, body: socketUnitsTable(rows, Date.now()) };
    },
  };
}

type Counts = Awaited<ReturnType<typeof readCounters>>;

/** Reads what the table lacks, for every socket unit in it, until the deadline. */
export async function collectSocketRows(deps: SocketUnitsDeps, systemd: SystemdManager, deadline: number): Promise<SocketRow[]> {
  const sockets = [...deps.table.units()].filter((u) => u.type === 'socket');
  const opt = <T>(p: Promise<T>): Promise<T | null> => p.catch(() => null);
  const read = await mapLimited(sockets, { concurrency: CONCURRENCY, deadline, settleByDeadline: true }, async (u) => {
    const known = deps.accept.getCurrent(u.name);
    const path = unitPath(u.name);
    const [listen, triggers, changed, result, counts, accept] = await Promise.all([
      opt(systemd.getProperty(path, SOCKET_INTERFACE, 'Listen')),
      opt(systemd.getProperty(path, UNIT_INTERFACE, 'Triggers')),
      opt(systemd.getProperty(path, UNIT_INTERFACE, 'StateChangeTimestamp')),
      opt(systemd.getProperty(path, SOCKET_INTERFACE, 'Result')),
      opt<Counts>(readCounters(systemd, path)),
      known === undefined ? opt(readAccept(systemd, path)) : Promise.resolve(known),
    ]);
    return { listen, triggers, changed, result, counts, accept };
  });
  const triggersOf = (i: number): string[] => {
    const t = read[i]?.triggers;
    return Array.isArray(t) ? t.filter((x): x is string => typeof x === 'string') : [];
  };
  const states = await triggeredStates(deps.table, systemd, sockets.flatMap((_, i) => triggersOf(i)), deadline);
  return sockets.map((u, i) => {
    const r = read[i];
    const triggers = triggersOf(i);
    const changed = r?.changed;
    return {
      unit: u.name,
      state: u.activeState,
      substate: u.subState,
      result: typeof r?.result === 'string' ? r.result : (u.result ?? null),
      accept: typeof r?.accept === 'boolean' ? r.accept : null,
      triggers,
      triggerStates: triggers.map((t) => states.get(t) ?? 'unknown'),
      triggerExits: triggers.flatMap((t) => {
        const service = deps.table.get(t);
        return service?.type === 'service' && service.activeState === 'failed' ? [`${readableUnitName(t)}: ${crashText(service.failedResult, service.failedExit)}`] : [];
      }),
      listen: listenAddresses(r?.listen),
      accepted: r?.counts?.accepted ?? null,
      connections: r?.counts?.connections ?? null,
      refused: r?.counts?.refused ?? null,
      changedUs: typeof changed === 'bigint' && changed > 0n ? Number(changed) : typeof changed === 'number' && changed > 0 ? changed : null,
    };
  });
}

/** `Listen` is a(ss): (type, address) pairs, e.g. ('Stream', '/run/foo.sock'). */
export function listenAddresses(value: unknown): string[] {
  if (!Array.isArray(value)) return [];
  return value.flatMap((p: unknown) => (Array.isArray(p) && typeof p[1] === 'string' ? [`${p[1]} (${String(p[0])})`] : []));
}

/**
 * ActiveState of the triggered units: from the unit table, and for those it does not hold, from
 * one listing by exact name (which, unlike reading the units' properties, never loads them).
 */
async function triggeredStates(table: UnitTable, systemd: SystemdManager, names: readonly string[], deadline: number): Promise<Map<string, string>> {
  const states = new Map<string, string>();
  const missing: string[] = [];
  for (const name of new Set(names)) {
    const unit = table.get(name);
    if (unit) states.set(name, unit.activeState);
    else missing.push(name);
  }
  for (let i = 0; i < missing.length && performance.now() < deadline; i += 256) {
    const listing = await withDeadline(systemd.listUnits(missing.slice(i, i + 256).map(escapeGlob)), deadline, undefined).catch(() => undefined);
    if (!listing) break; // late or failed: left as unknown
    for (const u of listing.units) states.set(u.name, u.activeState);
  }
  return states;
}
