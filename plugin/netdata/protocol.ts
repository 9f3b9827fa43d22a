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
  readonly contentType: string;
  readonly expires: number;
  readonly body: string;
}

/** Characters that an id keeps; everything else becomes `_`. */
const UNSAFE_ID = /[^A-Za-z0-9_.@:+-]/g;
/** Characters no word may carry: they break the tokenizer or the agent's JSON output. */
const UNSAFE_WORD = /['"\\=`\x00-\x1f\x7f]/g;

/** Tests without allocating: ids are cleaned once by their owners, then written every sample. */
const SAFE_ID = /^[A-Za-z0-9_.@:+-]+$/;

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

export class ProtocolWriter {
  private lines: string[] = [];
  private closed = false;

  constructor(private readonly out: Writable) {
    // The agent closing our stdout means it is gone: exit quietly, as every plugin does.
    out.on('error', (err: NodeJS.ErrnoException) => {
      this.closed = true;
      if (err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED') process.exit(0);
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
    return this.line(`SET ${safeId(id)} = ${int(value)}`);
  }

  /** A chart-scoped variable: valid right after CHART or between BEGIN and END. */
  chartVariable(name: string, value: number): this {
    return this.line(`VARIABLE CHART ${safeId(name)} = ${int(value)}`);
  }

  end(): this {
    return this.line('END');
  }

  disable(): this {
    return this.line('DISABLE');
  }

  /** Declares a function the agent may call, in the form every agent from 1.37 to v2 accepts. */
  functionDeclaration(name: string, timeoutSec: number, help: string): this {
    return this.line(`FUNCTION GLOBAL "${safeWord(name)}" ${int(timeoutSec)} "${safeWord(help)}"`);
  }

  functionResult(r: FunctionResult): this {
    this.line(`FUNCTION_RESULT_BEGIN ${safeId(r.transaction)} ${int(r.status)} ${safeWord(r.contentType).replace(/\s/g, "")} ${int(r.expires)}`);
    for (const l of r.body.split('\n')) this.line(l === 'FUNCTION_RESULT_END' ? ' FUNCTION_RESULT_END' : l);
    return this.line('FUNCTION_RESULT_END');
  }

  /** An empty line: a heartbeat every agent version accepts. */
  heartbeat(): this {
    return this.line('');
  }

  /** Writes everything queued in one write, so batches never interleave. */
  flush(): void {
    if (this.lines.length === 0 || this.closed) {
      this.lines = [];
      return;
    }
    const text = this.lines.join('\n') + '\n';
    this.lines = [];
    this.out.write(text);
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
