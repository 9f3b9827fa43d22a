import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { parseRequest, readRequests, tokenize, type FunctionCall } from '../../plugin/netdata/requests.js';

describe('stdin requests', () => {
  it('tokenizes like the agent: blanks and = split, quotes group', () => {
    expect(tokenize(`SET a.socket = 5`)).toEqual(['SET', 'a.socket', '5']);
    expect(tokenize(`FUNCTION tx 10 "systemd-units info" "0x8"`)).toEqual(['FUNCTION', 'tx', '10', 'systemd-units info', '0x8']);
    expect(tokenize(`  'a b'   c`)).toEqual(['a b', 'c']);
  });

  it('recognises QUIT and FUNCTION, and nothing else', () => {
    expect(parseRequest('QUIT')).toEqual({ kind: 'quit' });
    expect(parseRequest('FUNCTION abc 10 "systemd-units"')).toEqual({
      kind: 'function',
      call: { transaction: 'abc', timeoutSec: 10, command: 'systemd-units' },
    });
    for (const junk of ['', 'QUIT now', 'FUNCTION', 'FUNCTION a b c', 'FUNCTION a;rm 1 "x"', '\u0000\u00ff', 'BEGIN x']) {
      expect(parseRequest(junk)).toBeUndefined();
    }
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
    await new Promise((r) => setTimeout(r, 20));
    expect(calls.map((c) => c.transaction)).toEqual(['t1']);
    expect(seen).toEqual(['quit', 'eof']);
  });
});
