import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { parseRequest, parseTimeout, readRequests, tokenize, type FunctionCall } from '../../plugin/netdata/requests.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('stdin requests', () => {
  it('tokenizes like the agent: blanks and = split, quotes group', () => {
    expect(tokenize(`SET a.socket = 5`)).toEqual(['SET', 'a.socket', '5']);
    expect(tokenize(`FUNCTION tx 10 "systemd-units info" "0x8"`)).toEqual(['FUNCTION', 'tx', '10', 'systemd-units info', '0x8']);
    expect(tokenize(`  'a b'   c`)).toEqual(['a b', 'c']);
  });

  it('recognises QUIT, FUNCTION, FUNCTION_PAYLOAD, FUNCTION_CANCEL, and nothing else', () => {
    expect(parseRequest('QUIT')).toEqual({ kind: 'quit' });
    expect(parseRequest('FUNCTION abc 10 "systemd-units"')).toEqual({
      kind: 'function',
      payload: false,
      call: { transaction: 'abc', timeoutSec: 10, command: 'systemd-units' },
    });
    expect(parseRequest('FUNCTION_PAYLOAD abc 10 "x y" "0x8" "method=api" "application/json"')).toEqual({
      kind: 'function',
      payload: true,
      call: { transaction: 'abc', timeoutSec: 10, command: 'x y' },
    });
    expect(parseRequest('FUNCTION_CANCEL abc')).toEqual({ kind: 'cancel', transaction: 'abc' });
    expect(parseRequest('FUNCTION_PROGRESS abc')).toEqual({ kind: 'none' });
    for (const junk of ['', 'QUIT now', 'FUNCTION', 'FUNCTION ""', 'FUNCTION_CANCEL', '\u0000\u00ff', 'BEGIN x']) {
      expect(parseRequest(junk), junk).toBeUndefined();
    }
  });

  it('takes every FUNCTION line with a transaction as a call, whatever its other fields', () => {
    const call = (line: string) => {
      const r = parseRequest(line);
      return r?.kind === 'function' ? r.call : undefined;
    };
    // The router answers these; the reader must not drop them.
    for (const t of ['Infinity', 'NaN', '-1', '1e309', '0', '', 'abc', '0x10', '10abc', '1'.repeat(20)]) {
      expect(call(`FUNCTION tx '${t}' "systemd-units"`), t).toEqual({ transaction: 'tx', timeoutSec: undefined, command: 'systemd-units' });
    }
    expect(call('FUNCTION tx')).toEqual({ transaction: 'tx', timeoutSec: undefined, command: '' });
    expect(call('FUNCTION a/b/c 10 "x"')?.transaction).toBe('a/b/c');
    expect(call('FUNCTION a;rm 1 "x"')?.transaction).toBe('a;rm');
    expect(call('FUNCTION ünï✓ 10 "x"')?.transaction).toBe('ünï✓');
    expect(call(`FUNCTION ${'t'.repeat(5000)} 10 "x"`)?.transaction).toHaveLength(5000);
    expect(call('FUNCTION "a b" 10 "x"')?.transaction).toBe('a b'); // the router finds it cannot echo it
    expect(parseTimeout('10')).toBe(10);
    expect(parseTimeout('2.5')).toBe(2.5);
    expect(parseTimeout('+3')).toBe(3);
  });

  it('survives garbage and reports QUIT and EOF', async () => {
    const input = new PassThrough();
    const seen: string[] = [];
    const calls: FunctionCall[] = [];
    readRequests(input, { onQuit: (r) => seen.push(r), onFunction: (c) => calls.push(c) });
    input.write(Buffer.from([0xff, 0xfe, 0x00, 0x0a]));
    input.write('x'.repeat(100_000) + '\n');
    input.write('FUNCTION t1 5 "nope"\nQUIT\n');
    input.end();
    await sleep(20);
    expect(calls.map((c) => c.transaction)).toEqual(['t1']);
    expect(seen).toEqual(['quit', 'eof']);
  });

  it('skips the body of a FUNCTION_PAYLOAD call, whatever it holds, and reads on after its end', async () => {
    const input = new PassThrough();
    const calls: FunctionCall[] = [];
    const cancels: string[] = [];
    const quits: string[] = [];
    readRequests(input, { onQuit: (r) => quits.push(r), onFunction: (c) => calls.push(c), onCancel: (t) => cancels.push(t) });
    input.end(
      'FUNCTION_PAYLOAD p1 10 "x" "0x8" "src" "application/json"\n{"a":1}\nQUIT\nFUNCTION inside 10 "x"\nFUNCTION_PAYLOAD_END\n' +
        'FUNCTION_CANCEL p1\nFUNCTION t2 10 "y"\n',
    );
    await sleep(20);
    expect(calls.map((c) => c.transaction)).toEqual(['p1', 't2']);
    expect(cancels).toEqual(['p1']);
    expect(quits).toEqual(['eof']);
  });

  it('handles a burst in slices, the event loop getting a turn between them', async () => {
    const input = new PassThrough();
    let calls = 0;
    let last = '';
    // Lines handled between two turns of the event loop: a turn is asked for at the first line
    // of each run, and it comes only when the reader yields.
    const runs: number[] = [];
    let run = 0;
    const onFunction = (c: FunctionCall) => {
      calls++;
      last = c.transaction;
      if (run++ === 0) setImmediate(() => (runs.push(run), (run = 0)));
    };
    let ended = false;
    readRequests(input, { onQuit: () => (ended = true), onFunction }, { linesPerSlice: 100 });
    input.end(Array.from({ length: 10_000 }, (_, i) => `FUNCTION t${i} 10 "x"\n`).join('')); // one chunk
    while (!ended) await sleep(5);
    // The last run's turn may still be queued when EOF is read: let it come.
    await new Promise((r) => setImmediate(r));
    expect(calls).toBe(10_000);
    expect(last).toBe('t9999');
    expect(runs.length).toBeGreaterThanOrEqual(100);
    expect(Math.max(...runs)).toBeLessThanOrEqual(100);
  });

  it('waits for `ready` before each slice, stdin paused meanwhile; stops at stop()', async () => {
    const input = new PassThrough();
    const calls: FunctionCall[] = [];
    let open!: () => void;
    let gate = new Promise<void>((r) => (open = r));
    const reader = readRequests(input, { onQuit: () => {}, onFunction: (c) => calls.push(c) }, { linesPerSlice: 10, ready: () => gate });
    input.write(Array.from({ length: 25 }, (_, i) => `FUNCTION a${i} 10 "x"\n`).join(''));
    await sleep(20);
    expect(calls).toHaveLength(0);
    expect(input.isPaused()).toBe(true);
    open();
    await sleep(20);
    expect(calls).toHaveLength(25);
    gate = new Promise<void>((r) => (open = r));
    input.write('FUNCTION b1 10 "x"\nFUNCTION b2 10 "x"\n');
    await sleep(20);
    expect(calls).toHaveLength(25);
    reader.stop();
    open();
    await sleep(20);
    expect(calls).toHaveLength(25);
  });
});
