// Runs the compiled plugin the way the agent does (argv[1] = update_every, stdin a pipe) and reads
// its stdout with the harness's protocol parser (harness/protocol.ts) into charts, dimensions,
// samples and function answers.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';
import { ProtocolParser, type ChartInfo, type FunctionAnswer, type Sample } from './protocol.js';
import { repoRoot } from './run.js';
import { until } from './wait.js';

export type { ChartInfo, FunctionAnswer, Sample } from './protocol.js';

export class PluginRun {
  readonly child: ChildProcessWithoutNullStreams;
  /** The parsed stdout; the fields below are its own. */
  readonly out = new ProtocolParser();
  readonly charts: Map<string, ChartInfo> = this.out.charts;
  readonly samples: Sample[] = this.out.samples;
  readonly lines: string[] = this.out.lines;
  /** performance.now() when each line of `lines` was read. */
  readonly lineTimes: number[] = this.out.lineTimes;
  /** Lines that are not protocol: must stay empty. */
  readonly strayLines: string[] = this.out.strayLines;
  /** Protocol misuse the agent would punish (unknown chart or dimension): must stay empty. */
  readonly protocolErrors: string[] = this.out.protocolErrors;
  /** stderr without the timestamp each line starts with when NETDATA_LOG_METHOD asks for one. */
  stderr = '';
  /** stderr as written. */
  rawStderr = '';
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

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
    this.child.stdout.setEncoding('utf8').on('data', (d: string) => this.out.push(d));
    this.child.stderr.setEncoding('utf8').on('data', (d: string) => {
      this.rawStderr += d;
      this.stderr = this.rawStderr.replace(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d: (?=systemdunits\.plugin: )/gm, '');
    });
    this.child.stdin.on('error', () => {});
    this.exit = new Promise((resolve) => this.child.on('exit', (code, signal) => resolve({ code, signal })));
  }

  /** Samples of one chart, oldest first. */
  samplesOf(chart: string): Sample[] {
    return this.out.samplesOf(chart);
  }

  lastValue(chart: string, dim: string): number | undefined {
    const s = this.samplesOf(chart).at(-1);
    return s?.values[dim];
  }

  waitFor<T>(what: string, probe: () => T | undefined | false, timeoutMs = 10_000): Promise<T> {
    return until(what, probe, {
      timeoutMs,
      abort: () => (this.child.exitCode === null ? undefined : `plugin exited (${this.child.exitCode})`),
      context: () => `stderr:\n${this.stderr}`,
    });
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

  /**
   * Writes a FUNCTION request line and waits for the complete answer to `tx` that began after
   * the call (`at` is when its end arrived).
   */
  async call(tx: string, line: string, timeoutMs = 15_000): Promise<FunctionAnswer> {
    const from = this.out.answers.length;
    this.child.stdin.write(line + '\n');
    return this.waitFor(`the answer to ${tx}`, () => this.out.answers.slice(from).find((a) => a.tx === tx && a.complete), timeoutMs);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGTERM');
      const t = setTimeout(() => this.child.kill('SIGKILL'), 3000);
      await this.exit;
      clearTimeout(t);
    }
  }
}
