// Runs a command and collects its output; never throws on a non-zero exit (callers decide).
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export interface RunResult {
  stdout: string;
  stderr: string;
  /** exit code, or null when killed by a signal */
  code: number | null;
}

export interface RunOptions {
  /** written to the command's stdin, which is then closed */
  input?: string;
  /** kill the command (SIGKILL) after this long; default 60 s */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  /** Keeps stdin open (after `input`) until the stdout read so far satisfies this, then closes it:
   * for a command that runs until EOF on its stdin, as the plugin does, ended once it has shown
   * what the caller waits for instead of after a fixed time. */
  closeStdinWhen?: (stdout: string) => boolean;
}

export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env });
    let stdout = '';
    let stderr = '';
    let stdinOpen = opts.closeStdinWhen !== undefined;
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      if (stdinOpen && opts.closeStdinWhen!(stdout)) {
        stdinOpen = false;
        child.stdin.end();
      }
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      stderr += `\n[run] ${cmd} killed after ${opts.timeoutMs ?? 60_000} ms`;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 60_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ stdout, stderr, code });
    });
    child.stdin.on('error', () => {}); // the command may exit without reading its input
    if (stdinOpen) child.stdin.write(opts.input ?? '');
    else child.stdin.end(opts.input ?? '');
  });
}

/** Like run(), but throws (with the command's stderr) unless it exits 0. */
export async function runOk(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}:\n${r.stderr.trim()}`);
  }
  return r;
}

/**
 * Runs every clean-up step even when some fail (an agent that will not stop must not leave its
 * sandbox running), then throws the first failure.
 */
export async function cleanUp(steps: ReadonlyArray<() => unknown>): Promise<void> {
  const errors: unknown[] = [];
  for (const step of steps) {
    try {
      await step();
    } catch (err) {
      errors.push(err);
    }
  }
  if (errors.length) throw errors[0];
}
