// Netdata Functions without systemd: the declaration line, the router's answers (404 for unknown
// names, 500 for a function that throws), the body that cannot end the answer early, and the
// socket units table in the agent's documented table format.
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { COLUMNS, listenAddresses, socketUnitsInfo, socketUnitsTable, type SocketRow } from '../../plugin/functions/socket-units.js';
import { FunctionRouter } from '../../plugin/netdata/functions.js';
import { ProtocolWriter } from '../../plugin/netdata/protocol.js';
import { tokenize } from '../../plugin/netdata/requests.js';

function capture(): { writer: ProtocolWriter; text: () => string } {
  const out = new PassThrough();
  const chunks: string[] = [];
  out.on('data', (c: Buffer) => chunks.push(c.toString()));
  return { writer: new ProtocolWriter(out), text: () => chunks.join('') };
}

/** Splits the writer's output into function answers, as the agent's deferred reader does. */
function answers(text: string): { tx: string; status: number; type: string; body: string }[] {
  const out: { tx: string; status: number; type: string; body: string }[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const w = tokenize(lines[i]!);
    if (w[0] !== 'FUNCTION_RESULT_BEGIN') continue;
    const body: string[] = [];
    // The agent ends the answer at the first line whose first word is the end keyword.
    while (tokenize(lines[++i] ?? 'FUNCTION_RESULT_END')[0] !== 'FUNCTION_RESULT_END') body.push(lines[i]!);
    out.push({ tx: w[1]!, status: Number(w[2]), type: w[3]!, body: body.join('\n') });
  }
  return out;
}

const row = (over: Partial<SocketRow>): SocketRow => ({
  unit: 'web.socket',
  state: 'active',
  substate: 'listening',
  result: 'success',
  accept: true,
  triggers: [],
  triggerStates: [],
  listen: [],
  accepted: 0,
  connections: 0,
  refused: 0,
  changedUs: null,
  ...over,
});

describe('function declaration', () => {
  it('is FUNCTION GLOBAL "name" timeout "help", the form 1.37.1 and v2 parse alike', () => {
    const { writer, text } = capture();
    writer.functionDeclaration('systemd-socket-units', 10, 'Socket units: "state"').flush();
    expect(text()).toBe('FUNCTION GLOBAL "systemd-socket-units" 10 "Socket units: _state_"\n');
    expect(tokenize(text().trim())).toEqual(['FUNCTION', 'GLOBAL', 'systemd-socket-units', '10', 'Socket units: _state_']);
  });
});

describe('function router', () => {
  it('answers 404 for a name nobody registered, and declares only registered ones', async () => {
    const { writer, text } = capture();
    const router = new FunctionRouter(writer);
    router.register({ name: 'x-one', timeoutSec: 5, help: 'one', run: async () => ({ status: 200, body: { ok: 1 } }) });
    router.declareAll();
    writer.flush();
    await router.handle({ transaction: 't1', timeoutSec: 10, command: 'systemd-units info' });
    await router.handle({ transaction: 't2', timeoutSec: 10, command: 'x-one' });
    await new Promise((r) => setImmediate(r));
    expect(text().split('\n')[0]).toBe('FUNCTION GLOBAL "x-one" 5 "one"');
    const [a, b] = answers(text());
    expect(a).toMatchObject({ tx: 't1', status: 404, type: 'application/json' });
    expect(JSON.parse(a!.body)).toEqual({ status: 404, error_message: "systemdunits.plugin has no function 'systemd-units'" });
    expect(b).toMatchObject({ tx: 't2', status: 200 });
    expect(JSON.parse(b!.body)).toEqual({ ok: 1 });
  });

  it('answers 500 when the function throws, passes its arguments, and gives it a deadline inside the timeout', async () => {
    const { writer, text } = capture();
    const router = new FunctionRouter(writer);
    const seen: { args: readonly string[]; left: number }[] = [];
    router.register({
      name: 'x-bad',
      timeoutSec: 10,
      help: '',
      run: async (args, deadline) => {
        seen.push({ args, left: deadline - performance.now() });
        throw new Error('boom');
      },
    });
    await router.handle({ transaction: 't3', timeoutSec: 4, command: 'x-bad  info after:1 ' });
    await new Promise((r) => setImmediate(r));
    expect(seen[0]!.args).toEqual(['info', 'after:1']);
    expect(seen[0]!.left).toBeGreaterThan(3000);
    expect(seen[0]!.left).toBeLessThanOrEqual(4000);
    const [a] = answers(text());
    expect(a).toMatchObject({ tx: 't3', status: 500 });
    expect(JSON.parse(a!.body).error_message).toContain('boom');
  });

  it('writes bodies the end keyword cannot cut short, and that decode to the same value', () => {
    const value = { text: 'FUNCTION_RESULT_END', list: ['x\nFUNCTION_RESULT_END y'] };
    const { writer, text } = capture();
    writer.functionResult({ transaction: 't', status: 200, expires: 0, json: value }).flush();
    const [a] = answers(text());
    expect(JSON.parse(a!.body)).toEqual(value);
    expect(a!.body).not.toContain('FUNCTION_RESULT_END');
  });
});

describe('socket units table', () => {
  const now = Date.UTC(2026, 0, 1, 12, 0, 0);
  const table = socketUnitsTable(
    [
      row({
        unit: 'web\\x2dapi.socket',
        accept: true,
        triggers: ['web\\x2dapi@0-1-2.service', 'web\\x2dapi@1-1-3.service'],
        triggerStates: ['active', 'active'],
        listen: ['127.0.0.1:80 (Stream)'],
        accepted: 42,
        connections: 2,
        refused: 3,
        changedUs: (now - 90_000) * 1000,
      }),
      row({ unit: 'broken.socket', state: 'failed', substate: 'failed', result: 'resources', accept: null, accepted: null, connections: null, refused: null, triggers: ['broken.service'], triggerStates: ['unknown'] }),
    ],
    now,
  );

  it('has the documented header of a table function', () => {
    expect(table).toMatchObject({ status: 200, type: 'table', has_history: false, default_sort_column: 'unit' });
    expect(typeof table.help).toBe('string');
    expect(socketUnitsInfo()).toMatchObject({ status: 200, type: 'table', has_history: false, accepted_params: ['info'] });
  });

  it('has one unique key and column indexes that match the cells of every row', () => {
    const columns = table.columns as Record<string, { index: number; unique_key: boolean; type: string; visualization: string; value_options: { transform: string } }>;
    const indexes = Object.values(columns).map((c) => c.index).sort((a, b) => a - b);
    expect(indexes).toEqual(COLUMNS.map((_, i) => i));
    expect(Object.entries(columns).filter(([, c]) => c.unique_key).map(([id]) => id)).toEqual(['unit']);
    for (const r of table.data as unknown[][]) expect(r).toHaveLength(COLUMNS.length);
    expect(columns.in_state).toMatchObject({ type: 'duration', value_options: { transform: 'duration' } });
    expect(columns.since).toMatchObject({ type: 'timestamp', value_options: { transform: 'datetime' } });
    expect(columns.row_options).toMatchObject({ type: 'none', visualization: 'rowOptions', dummy: true });
  });

  it('fills the cells: decoded names, counters, time in state, severity; null where unread', () => {
    const columns = table.columns as Record<string, { index: number }>;
    const cell = (r: unknown[], id: string) => r[columns[id]!.index];
    const [broken, web] = table.data as unknown[][];
    expect(cell(broken!, 'unit')).toBe('broken.socket'); // sorted by unit
    expect(cell(broken!, 'state')).toBe('failed');
    expect(cell(broken!, 'result')).toBe('resources');
    expect(cell(broken!, 'accepted')).toBeNull();
    expect(cell(broken!, 'accept')).toBeNull();
    expect(cell(broken!, 'in_state')).toBeNull();
    expect(cell(broken!, 'triggers_state')).toBe('unknown');
    expect(cell(broken!, 'row_options')).toEqual({ severity: 'error' });
    expect(cell(web!, 'unit')).toBe('web-api.socket');
    expect(cell(web!, 'accept')).toBe('yes');
    expect(cell(web!, 'triggers')).toBe('web-api@0-1-2.service web-api@1-1-3.service');
    expect(cell(web!, 'triggers_state')).toBe('active');
    expect(cell(web!, 'listen')).toBe('127.0.0.1:80 (Stream)');
    expect([cell(web!, 'accepted'), cell(web!, 'connections'), cell(web!, 'refused')]).toEqual([42, 2, 3]);
    expect(cell(web!, 'in_state')).toBe(90);
    expect(cell(web!, 'since')).toBe(now - 90_000);
    expect(cell(web!, 'row_options')).toEqual({ severity: 'normal' });
  });

  it('reads Listen as systemd sends it (a(ss)) and ignores anything else', () => {
    expect(listenAddresses([['Stream', '/run/a.sock'], ['Datagram', '127.0.0.1:53']])).toEqual(['/run/a.sock (Stream)', '127.0.0.1:53 (Datagram)']);
    expect(listenAddresses(undefined)).toEqual([]);
    expect(listenAddresses([['Stream'], 'x'])).toEqual([]);
  });
});
