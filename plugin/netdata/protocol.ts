// The Netdata external-plugin protocol writer: the only code that writes to stdout.
//
// Only keywords that agents 1.37.1 through v2.x all accept are produced (see README, "Protocol").
// The agent's tokenizer splits words on blanks and `=`, and honours '…' / "…" quoting; a backslash
// is kept literally and makes its JSON API emit invalid JSON. So every word written here is cleaned
// of quotes, backslashes, `=` and control characters, and ids are reduced to a safe alphabet.

import type { Writable } from 'node:stream';

export interface ChartLine {
  /** `type.id`, e.g. `systemdunits_service_units.socket_unit_state`. */
  readonly fullId: string;
  readonly title: string;
  readonly units: string;
  readonly family: string;
  readonly context: string;
  readonly chartType: 'line' | 'area' | 'stacked';
  readonly priority: number;
  readonly updateEvery: number;
  readonly plugin: string;
  readonly module: string;
}

export interface DimensionLine {
  readonly id: string;
  readonly name: string;
  readonly algorithm: 'absolute' | 'incremental';
  readonly multiplier?: number;
  readonly divisor?: number;
}

export interface FunctionResult {
  readonly transaction: string;
  readonly status: number;
  readonly expires: number;
  /** The answer, written as application/json. */
  readonly json: unknown;
}

/** Characters that an id keeps; everything else becomes `_`. */
const UNSAFE_ID = /[^A-Za-z0-9_.@:+-]/g;
/** Characters no word may carry: they break the tokenizer or the agent's JSON output. */
const UNSAFE_WORD = /['"\\=`\x00-\x1f\x7f]/g;

/** Tests without allocating: ids are cleaned once by their owners, then written every sample. */
const SAFE_ID = /^[A-Za-z0-9_.@:+-]+$/;

/** Longest transaction id echoed: the answer's first line stays within the 1 KiB line buffer of
 * the oldest agents, which read longer lines in pieces (a piece would be taken for a command). */
export const MAX_TRANSACTION_BYTES = 512;
/** What the agent's tokenizer splits or unquotes on, and control characters. U+FFFD stands for
 * bytes that were not UTF-8: echoing it would not give the agent back its own bytes. */
const UNECHOABLE = /[\s'"=\x00-\x1f\x7f\ufffd]/;

/** Whether a transaction id can be written back as one word the agent reads as it sent it. */
export function canEchoTransaction(tx: string): boolean {
  return tx !== '' && !UNECHOABLE.test(tx) && Buffer.byteLength(tx) <= MAX_TRANSACTION_BYTES;
}

export function safeId(text: string): string {
  if (SAFE_ID.test(text)) return text;
  const id = text.replace(UNSAFE_ID, '_');
  return id === '' ? '_' : id;
}

export function safeWord(text: string): string {
  return text.replace(UNSAFE_WORD, '_');
}

function q(text: string): string {
  return `'${safeWord(text)}'`;
}

function int(value: number): string {
  return Number.isFinite(value) ? String(Math.trunc(value)) : '0';
}

/** A dimension's value line, for writers that render a sample's lines once and reuse them. */
export function setLine(id: string, value: number): string {
  return `SET ${safeId(id)} = ${int(value)}`;
}

/** A chart-scoped variable's line (see ProtocolWriter.chartVariable). */
export function variableLine(name: string, value: number): string {
  return `VARIABLE CHART ${safeId(name)} = ${int(value)}`;
}

/**
 * The SET lines of one chart's dimensions, rendered once. A sample patches in place the one-digit
 * values that changed, so writing N dimensions costs N comparisons and one copy instead of N new
 * strings every second (at 10,000 units that is most of the plugin's steady work). Values are
 * 0..9: unit states are 1..5. The block is the one copy of its dimensions' ids and values.
 */
export class SetBlock {
  /** @internal the writer's: the lines as they stand. */
  bytes: Buffer;
  /** Writes of these very bytes that stdout has not completed (a large block is written by reference). */
  private lent = 0;
  private lentBytes: Buffer | undefined;
  /** Byte offset of each dimension's value digit. */
  private readonly at: Uint32Array;

  constructor(ids: readonly string[], values: readonly number[]) {
    const lines = ids.map((id, i) => `SET ${safeId(id)} = ${digit(values[i] ?? 0)}\n`);
    this.bytes = Buffer.from(lines.join(''), 'latin1'); // safeId leaves ASCII only
    this.at = new Uint32Array(ids.length);
    let end = 0;
    for (let i = 0; i < lines.length; i++) {
      end += lines[i]!.length;
      this.at[i] = end - 2;
    }
  }

  get size(): number {
    return this.at.length;
  }

  set(index: number, value: number): void {
    const at = this.at[index]!;
    const byte = 0x30 + digit(value);
    if (this.bytes[at] === byte) return;
    // Bytes stdout has not written yet are never touched: patch a copy (only when the agent is
    // slower to read than one sample interval).
    if (this.lent > 0 && this.lentBytes === this.bytes) this.bytes = Buffer.from(this.bytes);
    this.bytes[at] = byte;
  }

  /** @internal the writer's: the bytes as they stand, lent until `release(bytes)`. */
  lend(): Buffer {
    if (this.lentBytes !== this.bytes) {
      this.lentBytes = this.bytes;
      this.lent = 0;
    }
    this.lent++;
    return this.bytes;
  }

  /** @internal */
  release(bytes: Buffer): void {
    if (this.lentBytes === bytes) this.lent--;
  }

  /** The value of the dimension at `index`, as the block holds it. */
  get(index: number): number {
    return this.bytes[this.at[index]!]! - 0x30;
  }
}

function digit(value: number): number {
  if (!(value >= 0 && value <= 9)) throw new RangeError(`SetBlock value ${value} is not a digit`);
  return value | 0;
}

/** The output buffer's first size; it grows to the largest batch and is reused for every one. */
const FIRST_CAPACITY = 16 * 1024;
/**
 * A batch less than half a large buffer (after the first definitions, or a large Function answer)
 * lets the buffer go; the next is sized to that batch and an eighth more.
 */
const SHRINK_BELOW = 1 / 2;
const SHRINK_FROM = 256 * 1024;
/**
 * A batch that outgrows this (definitions of thousands of dimensions) is written in parts of about
 * this size, at line ends: growing one buffer to megabytes, once, left its malloc'd pages behind.
 */
const MAX_BATCH = 64 * 1024;
/**
 * A SET block this large is written by reference rather than copied into the batch (at 10,000
 * units a tick's blocks are 450 KB, more than a pipe takes at once: copied, they would need a
 * second batch buffer of that size while the first is written).
 */
const LEND_FROM = 16 * 1024;
/** Strings longer than this are measured before they are copied; shorter ones may take 3 bytes a char. */
const MEASURE_FROM = 4096;

export class ProtocolWriter {
  /**
   * The batch being written: every line and small block of a flush, copied into one buffer and
   * written with one call (a stream write per piece, or a writev of many, cost more than the
   * copy); large blocks go by reference (see LEND_FROM).
   */
  private buf: Buffer = Buffer.allocUnsafeSlow(FIRST_CAPACITY);
  private len = 0;
  /** Buffers handed to stdout, oldest first, until it calls back (writes complete in order). */
  private readonly inFlight: Buffer[] = [];
  /** One written buffer to take up again (a batch larger than the pipe is written while the next is made). */
  private spare: Buffer | undefined;
  /** Per buffer in flight: the blocks its batch lent (written by reference), released with it. */
  private readonly inFlightLent: ([SetBlock, Buffer][] | undefined)[] = [];
  /** This batch so far, where it lent blocks: text up to each, the block, … (`len` from `pieceStart` is the rest). */
  private pieces: Buffer[] = [];
  private lentBlocks: [SetBlock, Buffer][] = [];
  private pieceStart = 0;
  private readonly written = (): void => {
    for (const [block, bytes] of this.inFlightLent.shift() ?? []) block.release(bytes);
    const done = this.inFlight.shift();
    // Not one let go for being too large, nor the one being filled (it was taken at once).
    if (done !== undefined && done !== this.buf && done.length <= this.buf.length) this.spare = done;
  };
  private closed = false;
  /** ` <elapsed µs>\n` of the latest BEGIN, and for which value. */
  private readonly elapsed = Buffer.from(' '.repeat(32));
  private elapsedBytes = this.elapsed.subarray(0, 0);
  private elapsedUs = NaN;

  constructor(
    private readonly out: Writable,
    /** Told once the agent closed our stdout (it is gone): the owner exits quietly, as every plugin does. */
    private readonly onClosed: () => void = () => {},
  ) {
    out.on('error', (err: NodeJS.ErrnoException) => {
      this.closed = true;
      if (err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED') this.onClosed();
    });
  }

  chart(c: ChartLine, obsolete = false): this {
    return this.line(
      `CHART ${safeId(c.fullId)} '' ${q(c.title)} ${q(c.units)} ${q(c.family)} ${q(c.context)} ` +
        `${c.chartType} ${int(c.priority)} ${int(c.updateEvery)} ${obsolete ? 'obsolete' : "''"} ` +
        `${q(c.plugin)} ${q(c.module)}`,
    );
  }

  dimension(d: DimensionLine, obsolete = false): this {
    return this.line(
      `DIMENSION ${safeId(d.id)} ${q(d.name)} ${d.algorithm} ${int(d.multiplier ?? 1)} ` +
        `${int(d.divisor ?? 1)}${obsolete ? ' obsolete' : ''}`,
    );
  }

  /** A chart label; `commitLabels()` must follow the last one, right after CHART or BEGIN. */
  label(name: string, value: string): this {
    return this.line(`CLABEL ${q(safeId(name))} ${q(value)} 1`);
  }

  commitLabels(): this {
    return this.line('CLABEL_COMMIT');
  }

  /** `elapsedUs` is omitted on a chart's first BEGIN, as the agent expects. */
  begin(fullId: string, elapsedUs?: number): this {
    return this.line(elapsedUs === undefined ? `BEGIN ${safeId(fullId)}` : `BEGIN ${safeId(fullId)} ${int(elapsedUs)}`);
  }

  /**
   * BEGIN from its words rendered beforehand (`beginWords`), with the elapsed µs: the one part of
   * a repeated sample that changes, written without making a string.
   */
  beginRendered(words: string, elapsedUs?: number): this {
    this.reserve(words.length + 34); // the whole line at once: a batch is split at line ends only
    this.ascii(words);
    if (elapsedUs === undefined) {
      this.buf[this.len++] = 0x0a;
      return this;
    }
    // Every chart of a tick has the same elapsed time: its digits are rendered once.
    if (elapsedUs !== this.elapsedUs) {
      this.elapsedUs = elapsedUs;
      const end = writeInt(this.elapsed, 1, elapsedUs);
      this.elapsed[end] = 0x0a;
      this.elapsedBytes = this.elapsed.subarray(0, end + 1);
    }
    return this.bytes(this.elapsedBytes);
  }

  set(id: string, value: number): this {
    return this.line(setLine(id, value));
  }

  /** Lines rendered beforehand (by setLine, variableLine…), joined by newlines, without the last one. */
  rendered(lines: string): this {
    return this.line(lines);
  }

  /**
   * Text rendered beforehand, ASCII only (ids are safeIds, numbers digits): whole lines, each
   * ending with a newline. Kept by its owner as a string, not a small Buffer: those are slices of
   * 8 KiB pool slabs, and a few long-lived ones can keep many slabs alive.
   */
  ascii(text: string): this {
    this.reserve(text.length + 1);
    this.len += this.buf.write(text, this.len, 'latin1');
    return this;
  }

  /** Bytes rendered beforehand: whole lines, each ending with a newline. */
  private bytes(bytes: Uint8Array): this {
    this.reserve(bytes.length + 1);
    this.buf.set(bytes, this.len);
    this.len += bytes.length;
    return this;
  }

  /** Every SET line of a pre-rendered block, as it stands now. */
  setBlock(block: SetBlock): this {
    if (block.bytes.length < LEND_FROM) return this.bytes(block.bytes);
    if (this.len > this.pieceStart) this.pieces.push(this.buf.subarray(this.pieceStart, this.len));
    const bytes = block.lend();
    this.pieces.push(bytes);
    this.lentBlocks.push([block, bytes]);
    this.pieceStart = this.len;
    return this;
  }

  /** A chart-scoped variable: valid right after CHART or between BEGIN and END. */
  chartVariable(name: string, value: number): this {
    return this.line(variableLine(name, value));
  }

  end(): this {
    return this.line('END');
  }

  disable(): this {
    return this.line('DISABLE');
  }

  /**
   * Declares a function the agent may call. v2 agents read two more words, tags and access:
   * `FUNCTION GLOBAL "name" timeout "help" "tags" "access"` (src/plugins.d/pluginsd_functions.c;
   * access is hex bits or one of the role words any, member, admin; without it the Function is
   * open to anyone who reaches the agent's API). Checked by hand (Dec 2026) with this line:
   * Debian's 1.37.1 ignores the extra words (the function is listed in /api/v1/info with its help
   * and timeout, the plugin keeps running, nothing logged); v2.10.4 lists it with access
   * signed-in, same-space, anonymous-data, sensitive-data and answers an anonymous
   * /api/v3/function call 412. So one form serves every agent; no choice by NETDATA_VERSION.
   */
  functionDeclaration(name: string, timeoutSec: number, help: string, extra?: { tags: string; access: string }): this {
    const tail = extra ? ` "${safeWord(extra.tags)}" "${safeWord(extra.access)}"` : '';
    return this.line(`FUNCTION GLOBAL "${safeWord(name)}" ${int(timeoutSec)} "${safeWord(help)}"${tail}`);
  }

  /**
   * The agent ends an answer at any line whose first word is FUNCTION_RESULT_END, and reads long
   * lines in pieces, so that word must never appear in the body at all. JSON can always avoid it:
   * it occurs only inside strings, where `_` may be written `\u005f` and decodes the same.
   * The transaction is echoed as it came (the agent matches it byte for byte); the caller makes
   * sure it `canEchoTransaction`.
   */
  functionResult(r: FunctionResult): this {
    if (!canEchoTransaction(r.transaction)) throw new RangeError('a transaction id that cannot be echoed on the protocol');
    const body = JSON.stringify(r.json ?? null).replaceAll('FUNCTION_RESULT_END', 'FUNCTION_RESULT\\u005fEND');
    this.line(`FUNCTION_RESULT_BEGIN ${r.transaction} ${int(r.status)} application/json ${int(r.expires)}`);
    this.line(body);
    return this.line('FUNCTION_RESULT_END');
  }

  /** An empty line: a heartbeat every agent version accepts. */
  heartbeat(): this {
    return this.line('');
  }

  /** Writes everything queued, in one write (one system call where the pipe takes it all). */
  flush(): void {
    const { len, pieces, lentBlocks } = this;
    if (len === 0 && pieces.length === 0) return;
    const start = this.pieceStart;
    this.len = this.pieceStart = 0;
    if (pieces.length > 0) {
      this.pieces = [];
      this.lentBlocks = [];
    }
    if (this.closed) {
      for (const [block, bytes] of lentBlocks) block.release(bytes);
      return;
    }
    const buf = this.buf;
    this.inFlight.push(buf);
    this.inFlightLent.push(pieces.length > 0 ? lentBlocks : undefined);
    if (pieces.length === 0) this.out.write(buf.subarray(0, len), this.written);
    else {
      // Text and lent blocks in one writev; the last write's callback stands for them all.
      if (len > start) pieces.push(buf.subarray(start, len));
      this.out.cork();
      for (let i = 0; i < pieces.length; i++) this.out.write(pieces[i]!, i === pieces.length - 1 ? this.written : undefined);
      this.out.uncork();
    }
    // A large Function answer (or the first definitions) does not keep its buffer for the small
    // batches after it.
    if (buf.length >= SHRINK_FROM && len < buf.length * SHRINK_BELOW) {
      this.buf = Buffer.allocUnsafeSlow(Math.max(FIRST_CAPACITY, len + (len >> 3)));
      this.spare = undefined;
      return;
    }
    // Taken at once (the pipe had room), the buffer is ours again. Still queued, it is the
    // stream's until written: the next batch goes into the spare, or a new buffer.
    if (this.out.writableLength === 0) return;
    this.buf = this.spare ?? Buffer.allocUnsafeSlow(buf.length);
    this.spare = undefined;
  }

  /** Bytes written that stdout has not taken yet (the agent reads them from the pipe). */
  get backlog(): number {
    return this.out.writableLength;
  }

  /** Resolves once stdout has taken everything written so far (used before exiting). */
  drained(): Promise<void> {
    this.flush();
    return new Promise((resolve) => {
      if (this.closed || !this.out.writableNeedDrain) return resolve();
      this.out.once('drain', () => resolve());
    });
  }

  private line(text: string): this {
    this.reserve(text.length > MEASURE_FROM ? Buffer.byteLength(text) + 1 : text.length * 3 + 1);
    this.len += this.buf.write(text, this.len);
    this.buf[this.len++] = 0x0a;
    return this;
  }

  /** Room for `bytes` more bytes in the buffer. */
  private reserve(bytes: number): void {
    if (this.len > 0 && this.len + bytes > MAX_BATCH) this.flush();
    if (this.len + bytes <= this.buf.length) return;
    const bigger = Buffer.allocUnsafeSlow(Math.max(this.buf.length + (this.buf.length >> 1), this.len + bytes));
    this.buf.copy(bigger, 0, 0, this.len);
    this.buf = bigger;
  }
}

/** `BEGIN <id>`, for beginRendered (ASCII: safeId leaves nothing else). */
export function beginWords(fullId: string): string {
  return `BEGIN ${safeId(fullId)}`;
}

/** Writes `value` truncated to an integer, as int() renders it, at `at`; returns the end. */
function writeInt(buf: Buffer, at: number, value: number): number {
  let n = Math.trunc(value);
  if (!Number.isSafeInteger(n) || n < 0) return at + buf.write(int(value), at, 'latin1');
  if (n === 0) {
    buf[at] = 0x30;
    return at + 1;
  }
  let digits = 0;
  for (let m = n; m > 0; m = Math.floor(m / 10)) digits++;
  for (let i = at + digits - 1; i >= at; i--) {
    buf[i] = 0x30 + (n % 10);
    n = Math.floor(n / 10);
  }
  return at + digits;
}
