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
 * values that changed, so writing N dimensions costs N comparisons and one write instead of N new
 * strings every second (at 10,000 units that is most of the plugin's steady work). Values are
 * 0..9: unit states are 1..5.
 */
export class SetBlock {
  private buf: Buffer;
  /** Byte offset of each dimension's value digit. */
  private readonly at: Uint32Array;
  /** The buffer stdout still holds (a write not yet taken by the pipe), and how many times. */
  private lentBuf: Buffer | undefined;
  private lent = 0;

  constructor(ids: readonly string[], values: readonly number[]) {
    const lines = ids.map((id, i) => `SET ${safeId(id)} = ${digit(values[i] ?? 0)}\n`);
    this.buf = Buffer.from(lines.join(''), 'latin1'); // safeId leaves ASCII only
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
    if (this.buf[at] === byte) return;
    // Bytes stdout has not written yet are never touched: patch a copy (only when the agent is
    // slower to read than one sample interval).
    if (this.lent > 0 && this.lentBuf === this.buf) this.buf = Buffer.from(this.buf);
    this.buf[at] = byte;
  }

  /** @internal the writer's: the bytes as they stand, lent until `done` is called. */
  lend(): { bytes: Buffer; done: () => void } {
    const bytes = this.buf;
    if (this.lentBuf !== bytes) {
      this.lentBuf = bytes;
      this.lent = 0;
    }
    this.lent++;
    return {
      bytes,
      done: () => {
        if (this.lentBuf === bytes) this.lent--;
      },
    };
  }
}

function digit(value: number): number {
  if (!(value >= 0 && value <= 9)) throw new RangeError(`SetBlock value ${value} is not a digit`);
  return value | 0;
}

export class ProtocolWriter {
  /** Lines not yet joined into `parts`. */
  private lines: string[] = [];
  /** Text and pre-rendered blocks, in order, for the next flush. */
  private parts: (string | SetBlock)[] = [];
  private closed = false;

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

  set(id: string, value: number): this {
    return this.line(setLine(id, value));
  }

  /** Lines rendered beforehand (by setLine, variableLine…), joined by newlines, without the last one. */
  rendered(lines: string): this {
    return this.line(lines);
  }

  /** Every SET line of a pre-rendered block, as it stands now. */
  setBlock(block: SetBlock): this {
    if (block.size === 0) return this;
    if (this.lines.length) this.parts.push(this.lines.join('\n') + '\n');
    this.lines = [];
    this.parts.push(block);
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

  /** Writes everything queued, in one system call where the pipe takes it all. */
  flush(): void {
    if (this.lines.length) this.parts.push(this.lines.join('\n') + '\n');
    this.lines = [];
    const parts = this.parts;
    this.parts = [];
    if (parts.length === 0 || this.closed) return;
    if (parts.length === 1 && typeof parts[0] === 'string') {
      this.out.write(parts[0]);
      return;
    }
    this.out.cork();
    for (const p of parts) {
      if (typeof p === 'string') this.out.write(p);
      else {
        // Written by reference: the block keeps its hands off these bytes until stdout is done.
        const { bytes, done } = p.lend();
        this.out.write(bytes, done);
      }
    }
    this.out.uncork();
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
    this.lines.push(text);
    return this;
  }
}
