// Netdata Functions without systemd: the declaration line, the router's answers (404 for unknown
// names, 500 for a function that throws), the body that cannot end the answer early, and the
// socket units table in the agent's documented table format.
import { PassThrough } from 'node:stream';
import { describe, expect, it, vi } from 'vitest';
import { COLUMNS, listenAddresses, socketUnitsInfo, socketUnitsTable, type SocketRow } from '../../plugin/functions/socket-units.js';
import { FunctionRouter, MAX_TIMEOUT_SEC } from '../../plugin/netdata/functions.js';
import { MAX_TRANSACTION_BYTES, ProtocolWriter } from '../../plugin/netdata/protocol.js';
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
  triggerExits: [],
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

  it('carries v2\'s tags and access words after the help when the function has an access', () => {
    const { writer, text } = capture();
    const router = new FunctionRouter(writer);
    router.register({ name: 'x-one', timeoutSec: 5, help: 'one', tags: 'top', access: 'member', run: async () => ({ status: 200, body: {} }) });
    router.declareAll();
    writer.flush();
    expect(tokenize(text().trim())).toEqual(['FUNCTION', 'GLOBAL', 'x-one', '5', 'one', 'top', 'member']);
  });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const call = (transaction: string, command = 'x-slow', timeoutSec: number | undefined = 10) => ({ transaction, timeoutSec, command });

/** A router with one function whose runs finish when the test says so. */
function gated(limits = { maxRunning: 2, maxQueued: 3 }) {
  const out = capture();
  const router = new FunctionRouter(out.writer, limits);
  const runs: { args: readonly string[]; left: number; finish: () => void }[] = [];
  router.register({
    name: 'x-slow',
    timeoutSec: 7,
    help: '',
    run: (args, deadline) =>
      new Promise((resolve) => runs.push({ args, left: deadline - performance.now(), finish: () => resolve({ status: 200, body: { args } }) })),
  });
  /** Answers so far, by transaction. */
  const byTx = () => {
    const m = new Map<string, number[]>();
    for (const a of answers(out.text())) m.set(a.tx, [...(m.get(a.tx) ?? []), a.status]);
    return m;
  };
  return { ...out, router, runs, byTx };
}

describe('function router', () => {
  it('answers 404 for a name nobody registered, 400 for none, and declares only registered ones', async () => {
    const { writer, text } = capture();
    const router = new FunctionRouter(writer);
    router.register({ name: 'x-one', timeoutSec: 5, help: 'one', run: async () => ({ status: 200, body: { ok: 1 } }) });
    router.declareAll();
    writer.flush();
    router.handle({ transaction: 't1', timeoutSec: 10, command: 'systemd-units info' });
    router.handle({ transaction: 't2', timeoutSec: 10, command: 'x-one' });
    router.handle({ transaction: 't3', timeoutSec: 10, command: '' });
    await sleep(5);
    expect(text().split('\n')[0]).toBe('FUNCTION GLOBAL "x-one" 5 "one"');
    const [a, c, b] = answers(text());
    expect(a).toMatchObject({ tx: 't1', status: 404, type: 'application/json' });
    expect(JSON.parse(a!.body)).toEqual({ status: 404, error_message: "systemdunits.plugin has no function 'systemd-units'" });
    expect(c).toMatchObject({ tx: 't3', status: 400 });
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
    router.handle({ transaction: 't3', timeoutSec: 4, command: 'x-bad  info after:1 ' });
    await sleep(5);
    expect(seen[0]!.args).toEqual(['info', 'after:1']);
    expect(seen[0]!.left).toBeGreaterThan(3000);
    expect(seen[0]!.left).toBeLessThanOrEqual(4000);
    const [a] = answers(text());
    expect(a).toMatchObject({ tx: 't3', status: 500 });
    expect(JSON.parse(a!.body).error_message).toContain('boom');
  });

  it('runs a few calls, queues a few, refuses the rest at once with a 503, and answers each exactly once', async () => {
    const { router, runs, byTx } = gated();
    for (let i = 0; i < 1000; i++) router.handle(call(`t${i}`));
    expect(router.load).toEqual({ running: 2, queued: 3 });
    expect(runs).toHaveLength(2);
    await sleep(5);
    expect(byTx().size).toBe(995); // all but the running and the queued, in one write
    expect([...byTx().values()].every((s) => s.length === 1 && s[0] === 503)).toBe(true);
    for (let n = 0; n < 5; n++) {
      runs[n]!.finish();
      await sleep(2);
    }
    expect(runs).toHaveLength(5); // the queued ones ran in turn
    expect(router.load).toEqual({ running: 0, queued: 0 });
    const got = byTx();
    expect(got.size).toBe(1000);
    expect(['t0', 't1', 't2', 't3', 't4'].map((t) => got.get(t))).toEqual([[200], [200], [200], [200], [200]]);
    runs[0]!.finish(); // a second resolution changes nothing
    await sleep(2);
    expect(byTx().get('t0')).toEqual([200]);
  });

  it('answers by the deadline: a queued call that got no turn 503, a running one that did not finish 504', async () => {
    const { router, runs, byTx } = gated({ maxRunning: 1, maxQueued: 1 });
    const sent = performance.now();
    router.handle(call('run', 'x-slow', 1));
    router.handle(call('wait', 'x-slow', 1));
    await sleep(300);
    expect(byTx().size).toBe(0);
    while (byTx().size < 2) await sleep(10);
    expect(performance.now() - sent).toBeLessThan(1000);
    expect(byTx()).toEqual(new Map([['run', [504]], ['wait', [503]]]));
    runs[0]!.finish(); // too late: no second answer
    await sleep(5);
    expect(byTx().get('run')).toEqual([504]);
    expect(runs).toHaveLength(1); // the expired call never ran
    expect(router.load).toEqual({ running: 0, queued: 0 });
  });

  it('uses the function\'s own timeout for a missing one and clamps a huge one', async () => {
    const { router, runs } = gated();
    router.handle({ transaction: 'a', timeoutSec: undefined, command: 'x-slow' });
    router.handle(call('b', 'x-slow', 1e300));
    expect(runs[0]!.left).toBeGreaterThan(6000);
    expect(runs[0]!.left).toBeLessThanOrEqual(7000);
    expect(runs[1]!.left).toBeLessThanOrEqual(MAX_TIMEOUT_SEC * 1000);
    expect(runs[1]!.left).toBeGreaterThan(MAX_TIMEOUT_SEC * 1000 - 1000);
    runs.forEach((r) => r.finish());
  });

  it('echoes any printable transaction id, and says once on stderr that it cannot answer the others', async () => {
    const stderr: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => (stderr.push(String(chunk)), true));
    try {
      const { router, byTx } = gated();
      const fine = ['a/b', 'ünï✓-Ω', '\\x', '`x`', 't'.repeat(MAX_TRANSACTION_BYTES)];
      for (const tx of fine) router.handle(call(tx, 'nope'));
      for (const tx of ['a b', 'a"b', "a'b", 'a=b', 'a\tb', 'a\u0001', 'a\u007f', 'x\ufffd', 't'.repeat(MAX_TRANSACTION_BYTES + 1)]) router.handle(call(tx, 'nope'));
      await sleep(5);
      expect([...byTx().keys()]).toEqual(fine);
      expect(stderr.filter((l) => l.includes('transaction id'))).toHaveLength(1);
    } finally {
      vi.restoreAllMocks();
    }
  });

  it('answers a cancelled queued call once (499) and frees its place; stop() silences everything', async () => {
    const { router, runs, byTx } = gated({ maxRunning: 1, maxQueued: 1 });
    router.handle(call('r'));
    router.handle(call('q'));
    router.cancel('q');
    router.cancel('r'); // running: it runs out
    router.handle(call('q2'));
    await sleep(5);
    expect(byTx()).toEqual(new Map([['q', [499]]]));
    expect(router.load).toEqual({ running: 1, queued: 1 });
    router.stop();
    runs[0]!.finish();
    router.handle(call('late'));
    await sleep(5);
    expect(byTx()).toEqual(new Map([['q', [499]]]));
  });

  it('tells when every call taken has been answered (what stdin\'s EOF waits for)', async () => {
    const g = gated({ maxRunning: 1, maxQueued: 2 });
    await g.router.idle(); // nothing taken: at once
    g.router.handle(call('a'));
    g.router.handle(call('b'));
    let idle = false;
    void g.router.idle().then(() => (idle = true));
    g.runs[0]!.finish();
    await sleep(10);
    expect(idle).toBe(false); // b runs now
    g.runs[1]!.finish();
    await sleep(10);
    expect(idle).toBe(true);
    expect(g.byTx()).toEqual(new Map([['a', [200]], ['b', [200]]]));
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
      row({ unit: 'broken.socket', state: 'failed', substate: 'failed', result: 'resources', accept: null, accepted: null, connections: null, refused: null, triggers: ['broken.service'], triggerStates: ['failed'], triggerExits: ['broken.service: exit-code, status=203/EXEC'] }),
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
    expect(cell(broken!, 'triggers_state')).toBe('failed');
    expect(cell(broken!, 'triggers_exit')).toBe('broken.service: exit-code, status=203/EXEC');
    expect(cell(web!, 'triggers_exit')).toBeNull();
    expect(cell(broken!, 'row_options')).toEqual({ severity: 'error' });
    expect(cell(web!, 'unit')).toBe('web/x2dapi.socket'); // not the name of another unit, web-api.socket
    expect(cell(web!, 'accept')).toBe('yes');
    expect(cell(web!, 'triggers')).toBe('web/x2dapi@0-1-2.service web/x2dapi@1-1-3.service');
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
