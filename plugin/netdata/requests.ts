// The stdin reader: what the agent asks of the plugin. EOF means the agent is gone; `QUIT`
// (v2.1+) asks us to stop; `FUNCTION` lines (and v2's `FUNCTION_PAYLOAD` … `FUNCTION_PAYLOAD_END`)
// carry function calls, `FUNCTION_CANCEL` withdraws one. Anything else is ignored, said once on
// stderr: garbage on stdin must never take the plugin down, nor grow its memory (a line is
// buffered only up to MAX_LINE bytes; the rest of an over-long line is dropped as it streams in),
// nor starve the sample timer (lines are handled in slices, the event loop gets a turn between
// them, and stdin waits while stdout cannot take more).

import type { Readable } from 'node:stream';
import { debugFor, logErrorThrottled } from '../log.js';

const debug = debugFor('stdin');

export interface FunctionCall {
  readonly transaction: string;
  /** Seconds the caller waits, as sent; undefined when missing, not a number, or not above 0. */
  readonly timeoutSec: number | undefined;
  /** The function name and its arguments, e.g. `systemd-units info`; '' when missing. */
  readonly command: string;
}

export interface RequestHandlers {
  onQuit(reason: 'eof' | 'quit'): void;
  onFunction(call: FunctionCall): void;
  onCancel?(transaction: string): void;
}

export type Request =
  | { kind: 'quit' }
  | { kind: 'function'; call: FunctionCall; payload: boolean }
  | { kind: 'cancel'; transaction: string }
  /** Lines v2 sends that need nothing from us (FUNCTION_PROGRESS). */
  | { kind: 'none' };

/** Space, tab, CR, LF and `=`: what separates words for the agent's tokenizer. */
function isBlank(code: number): boolean {
  return code === 0x20 || code === 0x09 || code === 0x0d || code === 0x0a || code === 0x3d;
}

/** Splits a line the way the agent's tokenizer does (blanks separate; '…' or "…" quote). */
export function tokenize(line: string): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < line.length) {
    while (i < line.length && isBlank(line.charCodeAt(i))) i++;
    if (i >= line.length) break;
    const quote = line[i];
    if (quote === '"' || quote === "'") {
      const close = line.indexOf(quote, i + 1);
      const end = close < 0 ? line.length : close;
      words.push(line.slice(i + 1, end));
      i = end + 1;
    } else {
      let j = i;
      while (j < line.length && !isBlank(line.charCodeAt(j))) j++;
      words.push(line.slice(i, j));
      i = j;
    }
  }
  return words;
}

/** A timeout word as the agent writes it (whole seconds); anything else is undefined: the router
 * then uses the function's own timeout. */
export function parseTimeout(word: string | undefined): number | undefined {
  if (word === undefined || !/^\+?\d{1,12}(\.\d{0,6})?$/.test(word)) return undefined;
  const sec = Number(word);
  return sec > 0 ? sec : undefined;
}

/**
 * Parses one request line; undefined for anything that is not a request we know. A FUNCTION line
 * with a transaction is always a call, whatever its other fields: the router answers each one
 * (400 when the name is missing), since the agent waits for that answer.
 */
export function parseRequest(line: string): Request | undefined {
  const words = tokenize(line);
  const [keyword, transaction] = words;
  if (keyword === 'QUIT' && words.length === 1) return { kind: 'quit' };
  if ((keyword === 'FUNCTION' || keyword === 'FUNCTION_PAYLOAD') && transaction !== undefined && transaction !== '') {
    return { kind: 'function', payload: keyword === 'FUNCTION_PAYLOAD', call: { transaction, timeoutSec: parseTimeout(words[2]), command: words[3] ?? '' } };
  }
  if (keyword === 'FUNCTION_CANCEL' && transaction) return { kind: 'cancel', transaction };
  if (keyword === 'FUNCTION_PROGRESS' && transaction) return { kind: 'none' };
  return undefined;
}

/** Longest request line kept; the agent's own requests are far shorter. */
export const MAX_LINE = 65536;
/** Lines handled before the event loop gets a turn (about a millisecond of parsing). */
export const LINES_PER_SLICE = 256;

/** Says that stdin carried something that is not a request: once a minute at most. */
function ignored(what: string): void {
  logErrorThrottled('stdin', `ignoring ${what} on stdin (not a request the plugin knows)`);
}

export interface ReadOptions {
  readonly linesPerSlice?: number;
  /** Awaited before each slice: stdin waits while the protocol writer has a backlog. */
  readonly ready?: () => Promise<void>;
}

export interface RequestReader {
  /** Stops handling lines (at shutdown): nothing more reaches the handlers. */
  stop(): void;
}

export function readRequests(input: Readable, handlers: RequestHandlers, options: ReadOptions = {}): RequestReader {
  const perSlice = options.linesPerSlice ?? LINES_PER_SLICE;
  let stopped = false;
  let inPayload = false; // between FUNCTION_PAYLOAD and FUNCTION_PAYLOAD_END: body lines, not requests
  input.on('error', (err) => debug('stdin error: %s', err.message));
  const onLine = (line: string): void => {
    if (inPayload) {
      // The body is not ours to keep: the call was answered (or queued) at its first line.
      if (line === 'FUNCTION_PAYLOAD_END') inPayload = false;
      return;
    }
    const request = parseRequest(line);
    if (request?.kind === 'quit') handlers.onQuit('quit');
    else if (request?.kind === 'function') {
      inPayload = request.payload;
      handlers.onFunction(request.call);
    } else if (request?.kind === 'cancel') handlers.onCancel?.(request.transaction);
    else if (request === undefined && line.trim() !== '') {
      debug('ignored stdin line: %s', line.slice(0, 200));
      ignored(`a line starting ${JSON.stringify(line.slice(0, 40))}`);
    }
  };

  // Split by hand rather than with readline: readline holds a line until its newline, however long.
  let held: Buffer[] = [];
  let heldBytes = 0;
  let dropping = 0; // bytes dropped of the current over-long line
  /** Chunks read but not yet split; stdin is paused while there are any, so at most a chunk or two. */
  const chunks: Buffer[] = [];
  let pumping = false;
  let ended = false;

  /** Splits lines off the first chunk, at most `budget` of them; returns how many were handled. */
  const split = (budget: number): number => {
    let handled = 0;
    while (chunks.length && handled < budget && !stopped) {
      let buf = chunks[0]!;
      const nl = buf.indexOf(0x0a);
      const piece = nl < 0 ? buf : buf.subarray(0, nl);
      if (dropping === 0 && heldBytes + piece.length <= MAX_LINE) {
        held.push(piece);
        heldBytes += piece.length;
      } else {
        dropping += piece.length + heldBytes;
        held = [];
        heldBytes = 0;
      }
      if (nl < 0) {
        chunks.shift();
        continue;
      }
      buf = buf.subarray(nl + 1);
      if (buf.length) chunks[0] = buf;
      else chunks.shift();
      if (dropping > 0) {
        debug('ignored an over-long stdin line (%d bytes)', dropping);
        ignored(`an over-long line (over ${MAX_LINE} bytes)`);
      } else {
        // Most lines lie within one chunk: decoded in place, without a copy.
        const line = (held.length === 1 ? held[0]! : Buffer.concat(held, heldBytes)).toString('utf8');
        onLine(line.endsWith('\r') ? line.slice(0, -1) : line);
      }
      held = [];
      heldBytes = 0;
      dropping = 0;
      handled++;
    }
    return handled;
  };

  const finish = (): void => {
    if (stopped) return;
    if (heldBytes > 0 && dropping === 0) onLine(Buffer.concat(held, heldBytes).toString('utf8'));
    held = [];
    heldBytes = 0;
    handlers.onQuit('eof');
  };

  const pump = async (): Promise<void> => {
    if (pumping) return;
    pumping = true;
    try {
      while (chunks.length && !stopped) {
        if (options.ready) await options.ready();
        split(perSlice);
        // Let timers (the samples) and signals run before the next slice.
        if (chunks.length) await new Promise((r) => setImmediate(r));
      }
    } finally {
      pumping = false;
    }
    if (stopped) return;
    if (ended) finish();
    else input.resume();
  };

  input.on('data', (chunk: Buffer | string) => {
    chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
    input.pause();
    void pump();
  });
  const end = (): void => {
    if (ended) return;
    ended = true;
    if (!pumping && chunks.length === 0) finish();
  };
  input.on('end', end);
  input.on('close', end);
  return {
    stop: () => {
      stopped = true;
      chunks.length = 0;
      input.pause();
    },
  };
}
