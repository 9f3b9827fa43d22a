// What the single-purpose perf scripts (steady-cpu, memory, reload-cpu, socket-activity-cost)
// share: a sandboxed systemd that Ctrl-C or SIGTERM stops before the script exits, grown to N
// bench sockets, and the launcher's node flags for running a build's bundle under node directly
// (with --cpu-prof, which node refuses in NODE_OPTIONS).
import path from 'node:path';
import { startSandbox, type Sandbox } from '../../../harness/sandbox.js';
import { BenchUnits } from './units.mjs';

/** The node flags of the launcher (./systemdunits.plugin). */
export const LAUNCHER_FLAGS = ['--max-semi-space-size=1', '--v8-pool-size=1', '--expose-gc'];

/** A sandboxed systemd, stopped (and its directory removed) on Ctrl-C or SIGTERM. */
export async function startScriptSandbox(): Promise<Sandbox> {
  const sb = await startSandbox();
  // Without this, a Ctrl-C would leave the sandboxed systemd (and its units) running.
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => void sb.stop({ removeDir: true }).finally(() => process.exit(sig === 'SIGINT' ? 130 : 143)));
  }
  return sb;
}

/** The bench's template units installed in `sb` and grown to `n` sockets; the seconds it took. */
export async function growBenchUnits(sb: Sandbox, n: number, log: (line: string) => void): Promise<{ units: BenchUnits; seconds: number }> {
  const units = new BenchUnits(sb);
  await units.install();
  const seconds = await units.growTo(n, log);
  return { units, seconds };
}

/** The command that runs `launcher`'s build: the launcher itself, or node on its bundle with `nodeArgs`. */
export function buildCommand(launcher: string, nodeArgs: readonly string[]): [string, string[]] {
  if (nodeArgs.length === 0) return [launcher, []];
  return [process.execPath, [...LAUNCHER_FLAGS, ...nodeArgs, path.join(path.dirname(launcher), 'dist/systemdunits.mjs')]];
}
