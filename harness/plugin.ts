// Runs the compiled plugin the way the agent does (argv[1] = update_every, stdin a pipe) and reads
// its stdout with the agent's tokenizer rules into charts, dimensions and samples.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';
import { tokenize } from '../plugin/netdata/requests.js';
import { repoRoot } from './run.js';

/** Keywords the plugin may write; any other line would get it killed by the agent. */
const KEYWORDS = new Set(['CHART', 'DIMENSION', 'BEGIN', 'SET', 'END', 'VARIABLE', 'CLABEL', 'CLABEL_COMMIT', 'DISABLE', 'FLUSH', 'FUNCTION', 'FUNCTION_RESULT_BEGIN', 'FUNCTION_RESULT_END']);

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
  /** Monotonic ms when the batch was read. */
  at: number;
  elapsedUs: number | undefined;
  values: Record<string, number>;
  variables: Record<string, number>;
}

export class PluginRun {
  readonly child: ChildProcessWithoutNullStreams;
  readonly charts = new Map<string, ChartInfo>();
  readonly samples: Sample[] = [];
  readonly lines: string[] = [];
  /** performance.now() when each line of `lines` was read. */
  readonly lineTimes: number[] = [];
  /** Lines that are not protocol: must stay empty. */
  readonly strayLines: string[] = [];
  /** Protocol misuse the agent would punish (unknown chart or dimension): must stay empty. */
  readonly protocolErrors: string[] = [];
  /** stderr without the timestamp each line starts with when NETDATA_LOG_METHOD asks for one. */
  stderr = '';
  /** stderr as written. */
  rawStderr = '';
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private partial = '';
  private inFunctionResult = false;
  private current: Sample | undefined;
  private chartInScope: ChartInfo | undefined;
  private pendingLabels: Record<string, string> = {};

  /**
   * `opts.prefix` runs the plugin under another command, e.g. ['strace', …, '--']: the child is then
   * that command, and the plugin its descendant. `opts.cleanEnv` starts from an empty environment
   * (PATH only) instead of the test's, as an agent would.
   */
  constructor(args: string[], env: NodeJS.ProcessEnv, opts: { prefix?: string[]; cleanEnv?: boolean } = {}) {
    const [cmd, ...pre] = [...(opts.prefix ?? []), path.join(repoRoot, 'systemdunits.plugin')];
    const base = opts.cleanEnv ? { PATH: process.env.PATH } : process.env;
    this.child = spawn(cmd!, [...pre, ...args], {
      env: { ...base, DEBUG: process.env.PLUGIN_DEBUG ?? '', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.child.stdout.setEncoding('utf8').on('data', (d: string) => this.onData(d));
    this.child.stderr.setEncoding('utf8').on('data', (d: string) => {
      this.rawStderr += d;
      this.stderr = this.rawStderr.replace(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d: (?=systemdunits\.plugin: )/gm, '');
    });
    this.child.stdin.on('error', () => {});
    this.exit = new Promise((resolve) => this.child.on('exit', (code, signal) => resolve({ code, signal })));
  }

  /** Samples of one chart, oldest first. */
  samplesOf(chart: string): Sample[] {
    return this.samples.filter((s) => s.chart === chart);
  }

  lastValue(chart: string, dim: string): number | undefined {
    const s = this.samplesOf(chart).at(-1);
    return s?.values[dim];
  }

  async waitFor<T>(what: string, probe: () => T | undefined | false, timeoutMs = 10_000): Promise<T> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const v = probe();
      if (v !== undefined && v !== false) return v;
      if (this.child.exitCode !== null) throw new Error(`plugin exited (${this.child.exitCode}) while waiting for ${what}; stderr:\n${this.stderr}`);
      if (Date.now() > until) throw new Error(`timed out waiting for ${what}; stderr:\n${this.stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Waits until the chart's latest sample has `dim` = value. */
  waitForValue(chart: string, dim: string, value: number, timeoutMs = 10_000): Promise<Sample> {
    return this.waitFor(`${chart} ${dim} = ${value}`, () => {
      const s = this.samplesOf(chart).at(-1);
      return s && s.values[dim] === value ? s : undefined;
    }, timeoutMs);
  }

  /** Waits for the next sample of a chart that starts after now. */
  nextSample(chart: string, timeoutMs = 10_000): Promise<Sample> {
    const n = this.samplesOf(chart).length;
    return this.waitFor(`next sample of ${chart}`, () => this.samplesOf(chart)[n], timeoutMs);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGTERM');
      const t = setTimeout(() => this.child.kill('SIGKILL'), 3000);
      await this.exit;
      clearTimeout(t);
    }
  }

  private onData(d: string): void {
    const text = this.partial + d;
    const lines = text.split('\n');
    this.partial = lines.pop() ?? '';
    for (const line of lines) this.onLine(line);
  }

  private onLine(line: string): void {
    this.lines.push(line);
    this.lineTimes.push(performance.now());
    // A function's answer is free text up to its end marker.
    if (this.inFunctionResult) {
      if (line === 'FUNCTION_RESULT_END') this.inFunctionResult = false;
      return;
    }
    if (line.startsWith('FUNCTION_RESULT_BEGIN ')) {
      this.inFunctionResult = true;
      return;
    }
    if (line.trim() === '') return; // heartbeat
    const w = tokenize(line);
    const kw = w[0]!;
    if (!KEYWORDS.has(kw)) {
      this.strayLines.push(line);
      return;
    }
    switch (kw) {
      case 'CHART': {
        const id = w[1]!;
        const known = this.charts.get(id);
        const info: ChartInfo = known ?? { id, title: '', units: '', family: '', context: '', obsolete: false, labels: {}, dims: new Map() };
        Object.assign(info, { title: w[3]!, units: w[4]!, family: w[5]!, context: w[6]!, obsolete: w[10] === 'obsolete' });
        this.charts.set(id, info);
        this.chartInScope = info;
        this.pendingLabels = {};
        break;
      }
      case 'CLABEL':
        this.pendingLabels[w[1]!] = w[2]!;
        break;
      case 'CLABEL_COMMIT':
        if (this.chartInScope) this.chartInScope.labels = { ...this.chartInScope.labels, ...this.pendingLabels };
        break;
      case 'DIMENSION':
        if (!this.chartInScope) return void this.protocolErrors.push(`DIMENSION outside a chart: ${line}`);
        this.chartInScope.dims.set(w[1]!, { name: w[2]!, obsolete: w.slice(6).includes('obsolete') });
        break;
      case 'BEGIN': {
        const chart = this.charts.get(w[1]!);
        if (!chart || chart.obsolete) return void this.protocolErrors.push(`BEGIN of an unknown chart: ${line}`);
        this.chartInScope = chart;
        this.current = { chart: w[1]!, at: performance.now(), elapsedUs: w[2] === undefined ? undefined : Number(w[2]), values: {}, variables: {} };
        break;
      }
      case 'SET': {
        const dim = this.chartInScope?.dims.get(w[1]!);
        if (!this.current || !dim || dim.obsolete) return void this.protocolErrors.push(`SET of an unknown dimension: ${line}`);
        this.current.values[w[1]!] = Number(w[2]);
        break;
      }
      case 'VARIABLE':
        if (this.current) this.current.variables[w[2]!] = Number(w[3]);
        break;
      case 'END':
        if (this.current) this.samples.push(this.current);
        this.current = undefined;
        break;
    }
  }
}
