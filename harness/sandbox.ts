// A real systemd (PID 1 of its own namespaces) with a real system bus, for integration and e2e
// tests: a typed wrapper around scripts/sandbox/systemd-sandbox.sh. Needs root.
import { mkdir, mkdtemp, chmod, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { repoRoot, run, runOk, type RunResult } from './run.js';

const script = path.join(repoRoot, 'scripts/sandbox/systemd-sandbox.sh');

export interface Sandbox {
  /** state directory (systemd.log, pid, exposed sockets) */
  readonly dir: string;
  /** systemd's pid as the host sees it */
  readonly pid: number;
  /** bus address usable from the host by root only: unix:path=/proc/PID/root/run/dbus/system_bus_socket */
  readonly busAddress: string;
  /** runs a command inside the sandbox (systemctl, busctl…); never throws on a non-zero exit */
  exec(...cmd: string[]): Promise<RunResult>;
  /** like exec, but throws unless the command exits 0 */
  execOk(...cmd: string[]): Promise<RunResult>;
  /** writes /run/systemd/system/NAME inside the sandbox (NAME may be a drop-in: foo.service.d/x.conf) */
  writeUnit(name: string, text: string): Promise<void>;
  daemonReload(): Promise<void>;
  /**
   * Makes the bus reachable by unprivileged users (e.g. netdata) at hostPath and returns its
   * address. hostPath must lie outside /tmp, /var/tmp and /run (private to the sandbox); default
   * DIR/bus.sock. Restarts dbus: every current bus connection is dropped.
   */
  expose(hostPath?: string): Promise<string>;
  /** systemd's log (its stdout/stderr), for failure messages */
  log(): Promise<string>;
  /** kills the whole namespace and removes the exposed sockets; idempotent. The dir is kept unless
   * removeDir. */
  stop(opts?: { removeDir?: boolean }): Promise<void>;
}

/**
 * Where sandboxes live by default: not under /tmp, /var/tmp or /run (private inside the sandbox,
 * so an exposed bus socket there would be invisible from the host), and not under the checkout,
 * which may sit in /tmp or in a directory user netdata cannot traverse (/root).
 */
export const SANDBOX_BASE = '/var/lib/systemdunits-tests';

/** Boots systemd. dir defaults to a new directory under SANDBOX_BASE. */
export async function startSandbox(dir?: string): Promise<Sandbox> {
  if (dir === undefined) {
    await mkdir(SANDBOX_BASE, { recursive: true, mode: 0o755 });
    await chmod(SANDBOX_BASE, 0o755);
    dir = await mkdtemp(path.join(SANDBOX_BASE, 'systemd-'));
  } else {
    await mkdir(dir, { recursive: true });
  }
  dir = path.resolve(dir);
  await chmod(dir, 0o755); // mkdtemp gives 0700; unprivileged users must reach exposed sockets
  const started = await run('bash', [script, 'start', dir], { timeoutMs: 60_000 });
  if (started.code !== 0) {
    await run('bash', [script, 'stop', dir]);
    throw new Error(`systemd sandbox did not start in ${dir}:\n${started.stderr}`);
  }
  const busAddress = started.stdout.trim();
  const pid = Number((await readFile(path.join(dir, 'pid'), 'utf8')).trim());
  const stateDir = dir;

  const exec = (...cmd: string[]) => run('bash', [script, 'exec', stateDir, ...cmd]);
  const execOk = (...cmd: string[]) => runOk('bash', [script, 'exec', stateDir, ...cmd]);
  return {
    dir: stateDir,
    pid,
    busAddress,
    exec,
    execOk,
    async writeUnit(name, text) {
      if (path.isAbsolute(name) || name.split('/').includes('..')) throw new Error(`bad unit name ${name}`);
      // /proc/PID/root is the sandbox's own root (its private /run) as seen by the host's root.
      const file = path.join(`/proc/${pid}/root/run/systemd/system`, name);
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, text);
    },
    async daemonReload() {
      await execOk('systemctl', 'daemon-reload');
    },
    async expose(hostPath = path.join(stateDir, 'bus.sock')) {
      const r = await runOk('bash', [script, 'expose', stateDir, hostPath]);
      return r.stdout.trim();
    },
    async log() {
      return readFile(path.join(stateDir, 'systemd.log'), 'utf8').catch(() => '');
    },
    async stop({ removeDir = false } = {}) {
      await runOk('bash', [script, 'stop', stateDir]);
      if (removeDir) await rm(stateDir, { recursive: true, force: true });
    },
  };
}
