// The stdin reader: what the agent asks of the plugin. EOF means the agent is gone; `QUIT`
// (v2.1+) asks us to stop; `FUNCTION` lines carry function calls. Anything else is ignored with
// a debug note: garbage on stdin must never take the plugin down.

import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { debugFor } from '../log.js';

const debug = debugFor('stdin');

export interface FunctionCall {
  readonly transaction: string;
  readonly timeoutSec: number;
  /** The function name and its arguments, e.g. `systemd-units info`. */
  readonly command: string;
}

export interface RequestHandlers {
  onQuit(reason: 'eof' | 'quit'): void;
  onFunction(call: FunctionCall): void;
}

/** Splits a line the way the agent's tokenizer does (blanks separate; '…' or "…" quote). */
export function tokenize(line: string): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < line.length) {
    while (i < line.length && /[ \t\r\n=]/.test(line[i]!)) i++;
    if (i >= line.length) break;
    const quote = line[i];
    if (quote === '"' || quote === "'") {
      const close = line.indexOf(quote, i + 1);
      const end = close < 0 ? line.length : close;
      words.push(line.slice(i + 1, end));
      i = end + 1;
    } else {
      let j = i;
      while (j < line.length && !/[ \t\r\n=]/.test(line[j]!)) j++;
      words.push(line.slice(i, j));
      i = j;
    }
  }
  return words;
}

/** Parses one request line; undefined for anything that is not a request we know. */
export function parseRequest(line: string): { kind: 'quit' } | { kind: 'function'; call: FunctionCall } | undefined {
  const words = tokenize(line);
  if (words[0] === 'QUIT' && words.length === 1) return { kind: 'quit' };
  if (words[0] === 'FUNCTION' && words.length >= 4) {
    const timeoutSec = Number(words[2]);
    if (!/^[A-Za-z0-9_-]+$/.test(words[1]!) || !Number.isFinite(timeoutSec)) return undefined;
    return { kind: 'function', call: { transaction: words[1]!, timeoutSec, command: words[3]! } };
  }
  return undefined;
}

export function readRequests(input: Readable, handlers: RequestHandlers): void {
  input.on('error', (err) => debug('stdin error: %s', err.message));
  const lines = createInterface({ input, crlfDelay: Infinity });
  lines.on('line', (line) => {
    if (line.length > 65536) return debug('ignored an over-long stdin line (%d bytes)', line.length);
    const request = parseRequest(line);
    if (request?.kind === 'quit') handlers.onQuit('quit');
    else if (request?.kind === 'function') handlers.onFunction(request.call);
    else if (line.trim() !== '') debug('ignored stdin line: %s', line.slice(0, 200));
  });
  lines.on('close', () => handlers.onQuit('eof'));
}
