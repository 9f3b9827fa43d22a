// Unit files for tests: sockets that fail on demand, the way an operator's would.
import type { Sandbox } from './sandbox.js';

/**
 * A socket listening on /run/NAME.sock (or `listen`), whose ExecStartPre fails while
 * /run/NAME.fail exists, with the service systemd insists a socket has.
 */
export async function writeSocket(sb: Sandbox, name: string, opts: { listen?: string; fileName?: string } = {}): Promise<void> {
  const file = opts.fileName ?? name;
  const flag = `/run/${file.replace(/[^A-Za-z0-9.@_-]/g, '_')}.fail`;
  await sb.writeUnit(
    `${file}.socket`,
    `[Unit]\nDescription=test socket ${name}\n[Socket]\nListenStream=${opts.listen ?? `/run/${file.replace(/[^A-Za-z0-9.@_-]/g, '_')}.sock`}\n` +
      `ExecStartPre=/bin/sh -c 'test ! -e ${flag}'\n`,
  );
  await sb.writeUnit(`${file}.service`, `[Unit]\nDescription=test service ${name}\n[Service]\nExecStart=/bin/sleep infinity\n`);
}

/** A test socket (see writeSocket) that may be failed and restarted without limit. */
export async function noStartLimit(sb: Sandbox, name: string): Promise<void> {
  await sb.writeUnit(`${name}.socket.d/e2e-no-start-limit.conf`, '[Unit]\nStartLimitIntervalSec=0\n');
}

/**
 * The set-up most tests start with: each socket written (writeSocket), without a start limit if
 * asked (tests that fail and restart one many times), one daemon-reload, then one `systemctl start`
 * of them all and of `alsoStart` (units the caller wrote itself).
 */
export async function startSockets(
  sb: Sandbox,
  names: readonly string[],
  opts: { noStartLimit?: boolean; alsoStart?: readonly string[] } = {},
): Promise<void> {
  for (const name of names) {
    await writeSocket(sb, name);
    if (opts.noStartLimit) await noStartLimit(sb, name);
  }
  await sb.daemonReload();
  await sb.execOk('systemctl', 'start', ...(opts.alsoStart ?? []), ...names.map((n) => `${n}.socket`));
}

export function failFlag(file: string): string {
  return `/run/${file.replace(/[^A-Za-z0-9.@_-]/g, '_')}.fail`;
}

/** Makes NAME.socket fail for real: its ExecStartPre exits 1 (Result=exit-code). */
export async function failSocket(sb: Sandbox, name: string): Promise<void> {
  await sb.execOk('touch', failFlag(name));
  await sb.exec('systemctl', 'restart', `${name}.socket`); // exits 1: the start fails, as intended
}

/** Brings it back: flag removed, failed state reset, started. */
export async function recoverSocket(sb: Sandbox, name: string): Promise<void> {
  await sb.execOk('rm', '-f', failFlag(name));
  await sb.execOk('systemctl', 'reset-failed', `${name}.socket`);
  await sb.execOk('systemctl', 'start', `${name}.socket`);
}

export async function activeState(sb: Sandbox, unit: string): Promise<string> {
  return (await sb.exec('systemctl', 'show', '-P', 'ActiveState', unit)).stdout.trim();
}

/** A TCP port for a socket unit (the sandbox shares the host's network): see ports.ts. */
export { freePort } from './ports.js';
