// The one reader of the plugin's protocol output for tests and scripts: lines cut from the pipe,
// read with the agent's tokenizer (plugin/netdata/requests.ts) into charts, dimensions, labels,
// samples (values and variables), function answers, stray lines and protocol misuse the agent
// would punish. PluginRun (harness/plugin.ts) keeps everything; the benchmark's PluginStream
// (harness/plugin-stream.ts) keeps only counts and a few watched values, through the hooks.
import { tokenize } from '../plugin/netdata/requests.js';

/** Keywords the plugin may write; any other line would get it killed by the agent. */
export const KEYWORDS = new Set(['CHART', 'DIMENSION', 'BEGIN', 'SET', 'END', 'VARIABLE', 'CLABEL', 'CLABEL_COMMIT', 'DISABLE', 'FLUSH', 'FUNCTION', 'FUNCTION_RESULT_BEGIN', 'FUNCTION_RESULT_END']);

export interface ChartInfo {
  id: string;
  title: string;
  units: string;
  family: string;
  context: string;
  obsolete: boolean;
  labels: Record<string, string>;
  /** dimension id → name, obsolete */
  dims: Map<string, { name: string; obsolete: boolean }>;
}

export interface Sample {
  chart: string;
  /** When the batch was read (the `at` of its BEGIN line: performance.now() unless told). */
  at: number;
  elapsedUs: number | undefined;
  values: Record<string, number>;
  variables: Record<string, number>;
}

export interface FunctionAnswer {
  tx: string;
  status: number;
  contentType: string;
  expires: number;
  /** The lines between FUNCTION_RESULT_BEGIN and FUNCTION_RESULT_END, joined with \n. */
  body: string;
  /** false until FUNCTION_RESULT_END arrived. */
  complete: boolean;
  /** `at` of the END line (of the BEGIN line while incomplete). */
  at: number;
}

export interface ProtocolHooks {
  /** A CHART line (also a redefinition). */
  chart?(chart: ChartInfo, at: number): void;
  dimension?(chart: ChartInfo, id: string, name: string, at: number): void;
  /** A SET line inside a BEGIN … END of a known chart. */
  set?(id: string, value: number, at: number): void;
  /** END of a batch of `chart`. */
  end?(chart: string | undefined, at: number): void;
}

export interface ProtocolOptions {
  /** Keep every line (and when it was read) in `lines`/`lineTimes` (default true). */
  keepLines?: boolean;
  /** Keep every batch in `samples` and check SET lines against the chart's dimensions (default true). */
  keepSamples?: boolean;
  /** Keep at most this many stray lines, each cut to 200 characters (default: all, whole). */
  maxStray?: number;
  hooks?: ProtocolHooks;
}

export class ProtocolParser {
  readonly charts = new Map<string, ChartInfo>();
  readonly samples: Sample[] = [];
  readonly lines: string[] = [];
  /** When each line of `lines` was read. */
  readonly lineTimes: number[] = [];
  /** Lines that are not protocol: must stay empty. */
  readonly strayLines: string[] = [];
  /** Protocol misuse the agent would punish (unknown chart or dimension): must stay empty. */
  readonly protocolErrors: string[] = [];
  /** Function answers in the order they began (an incomplete one is the last). */
  readonly answers: FunctionAnswer[] = [];
  /** SET lines read, and batches ended. */
  setLines = 0;
  batches = 0;
  bytes = 0;

  private partial = '';
  private answer: FunctionAnswer | undefined;
  private body: string[] = [];
  private current: Sample | undefined;
  private chartInScope: ChartInfo | undefined;
  private pendingLabels: Record<string, string> = {};
  private readonly keepLines: boolean;
  private readonly keepSamples: boolean;
  private readonly maxStray: number;
  private readonly hooks: ProtocolHooks;

  constructor(opts: ProtocolOptions = {}) {
    this.keepLines = opts.keepLines ?? true;
    this.keepSamples = opts.keepSamples ?? true;
    this.maxStray = opts.maxStray ?? Infinity;
    this.hooks = opts.hooks ?? {};
  }

  /** A chunk from the pipe, as it arrived; a line cut across chunks counts when its end arrives. */
  push(chunk: string, at: number = performance.now()): void {
    this.bytes += chunk.length;
    const text = this.partial + chunk;
    let start = 0;
    for (;;) {
      const nl = text.indexOf('\n', start);
      if (nl < 0) break;
      this.line(text.slice(start, nl), at);
      start = nl + 1;
    }
    this.partial = text.slice(start);
  }

  /** Samples of one chart, oldest first. */
  samplesOf(chart: string): Sample[] {
    return this.samples.filter((s) => s.chart === chart);
  }

  /** The latest answer to `tx`, complete or not. */
  answerTo(tx: string): FunctionAnswer | undefined {
    for (let i = this.answers.length - 1; i >= 0; i--) if (this.answers[i]!.tx === tx) return this.answers[i];
    return undefined;
  }

  line(line: string, at: number = performance.now()): void {
    if (this.keepLines) {
      this.lines.push(line);
      this.lineTimes.push(at);
    }
    // A function's answer is free text up to its end marker.
    if (this.answer) {
      if (line === 'FUNCTION_RESULT_END') {
        Object.assign(this.answer, { body: this.body.join('\n'), complete: true, at });
        this.answer = undefined;
      } else this.body.push(line);
      return;
    }
    // The hot path first: one SET per dimension per sample (10,000 a second in the benchmark).
    if (line.startsWith('SET ')) return this.set(line, at);
    if (line.trim() === '') return; // heartbeat
    const w = tokenize(line);
    const kw = w[0]!;
    if (!KEYWORDS.has(kw)) {
      if (this.strayLines.length < this.maxStray) this.strayLines.push(this.maxStray === Infinity ? line : line.slice(0, 200));
      return;
    }
    switch (kw) {
      case 'FUNCTION_RESULT_BEGIN':
        this.answer = { tx: w[1]!, status: Number(w[2]), contentType: w[3]!, expires: Number(w[4]), body: '', complete: false, at };
        this.body = [];
        this.answers.push(this.answer);
        break;
      case 'CHART': {
        const id = w[1]!;
        const info: ChartInfo = this.charts.get(id) ?? { id, title: '', units: '', family: '', context: '', obsolete: false, labels: {}, dims: new Map() };
        Object.assign(info, { title: w[3]!, units: w[4]!, family: w[5]!, context: w[6]!, obsolete: w[10] === 'obsolete' });
        this.charts.set(id, info);
        this.chartInScope = info;
        this.pendingLabels = {};
        this.hooks.chart?.(info, at);
        break;
      }
      case 'CLABEL':
        this.pendingLabels[w[1]!] = w[2]!;
        break;
      case 'CLABEL_COMMIT':
        if (this.chartInScope) this.chartInScope.labels = { ...this.chartInScope.labels, ...this.pendingLabels };
        break;
      case 'DIMENSION': {
        if (!this.chartInScope) return void this.protocolErrors.push(`DIMENSION outside a chart: ${line}`);
        this.chartInScope.dims.set(w[1]!, { name: w[2]!, obsolete: w.slice(6).includes('obsolete') });
        // (The agent names a dimension by its id when the name is empty.)
        this.hooks.dimension?.(this.chartInScope, w[1]!, w[2] || w[1]!, at);
        break;
      }
      case 'BEGIN': {
        const chart = this.charts.get(w[1]!);
        if (!chart || chart.obsolete) return void this.protocolErrors.push(`BEGIN of an unknown chart: ${line}`);
        this.chartInScope = chart;
        if (this.keepSamples) this.current = { chart: w[1]!, at, elapsedUs: w[2] === undefined ? undefined : Number(w[2]), values: {}, variables: {} };
        break;
      }
      case 'VARIABLE':
        if (this.current) this.current.variables[w[2]!] = Number(w[3]);
        break;
      case 'END':
        this.batches++;
        if (this.current) this.samples.push(this.current);
        this.current = undefined;
        this.hooks.end?.(this.chartInScope?.id, at);
        break;
    }
  }

  private set(line: string, at: number): void {
    this.setLines++;
    let id: string;
    let value: number;
    if (this.keepSamples) {
      // Exactly as the agent reads it.
      const w = tokenize(line);
      id = w[1]!;
      value = Number(w[2]);
      const dim = this.chartInScope?.dims.get(id);
      if (!this.current || !dim || dim.obsolete) return void this.protocolErrors.push(`SET of an unknown dimension: ${line}`);
      this.current.values[id] = value;
    } else {
      if (!this.hooks.set) return;
      // Light: what the plugin writes, `SET id = value` with the id quoted or not.
      const eq = line.indexOf(' = ');
      if (eq < 0) return;
      id = line.slice(4, eq);
      if (id.startsWith("'") && id.endsWith("'")) id = id.slice(1, -1);
      value = Number(line.slice(eq + 3));
    }
    this.hooks.set?.(id, value, at);
  }
}
