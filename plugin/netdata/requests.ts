// The stdin reader: what the agent asks of the plugin. EOF means the agent is gone; `QUIT`
// (v2.1+) asks us to stop; `FUNCTION` lines carry function calls. Anything else is ignored, said
// once on stderr: garbage on stdin must never take the plugin down, nor grow its memory (a line is
// buffered only up to MAX_LINE bytes; the rest of an over-long line is dropped as it streams in).

import type { Readable } from 'node:stream';
import { debugFor, logErrorThrottled } from '../log.js';

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

/** Longest request line kept; the agent's own requests are far shorter. */
export const MAX_LINE = 65536;

/** Says that stdin carried something that is not a request: once a minute at most. */
function ignored(what: string): void {
  logErrorThrottled('stdin', `ignoring ${what} on stdin (not a request the plugin knows)`);
}

export function readRequests(input: Readable, handlers: RequestHandlers): void {
  input.on('error', (err) => debug('stdin error: %s', err.message));
  const onLine = (line: string): void => {
    const request = parseRequest(line);
    if (request?.kind === 'quit') handlers.onQuit('quit');
    else if (request?.kind === 'function') handlers.onFunction(request.call);
    else if (line.trim() !== '') {
      debug('ignored stdin line: %s', line.slice(0, 200));
      ignored(`a line starting ${JSON.stringify(line.slice(0, 40))}`);
    }
  };
  // Split by hand rather than with readline: readline holds a line until its newline, however long.
  let held: Buffer[] = [];
  let heldBytes = 0;
  let dropping = 0; // bytes dropped of the current over-long line
  input.on('data', (chunk: Buffer | string) => {
    let buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    for (let nl = buf.indexOf(0x0a); ; nl = buf.indexOf(0x0a)) {
      const piece = nl < 0 ? buf : buf.subarray(0, nl);
      if (dropping === 0 && heldBytes + piece.length <= MAX_LINE) {
        held.push(piece);
        heldBytes += piece.length;
      } else {
        dropping += piece.length + heldBytes;
        held = [];
        heldBytes = 0;
      }
      if (nl < 0) break;
      if (dropping > 0) {
        debug('ignored an over-long stdin line (%d bytes)', dropping);
        ignored(`an over-long line (over ${MAX_LINE} bytes)`);
      } else {
        onLine(Buffer.concat(held, heldBytes).toString('utf8').replace(/\r$/, ''));
      }
      held = [];
      heldBytes = 0;
      dropping = 0;
      buf = buf.subarray(nl + 1);
    }
  });
  let ended = false;
  const end = (): void => {
    if (ended) return;
    ended = true;
    if (heldBytes > 0 && dropping === 0) onLine(Buffer.concat(held, heldBytes).toString('utf8'));
    handlers.onQuit('eof');
  };
  input.on('end', end);
  input.on('close', end);
}
