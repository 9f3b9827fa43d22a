// Unit files for tests: sockets that fail on demand, the way an operator's would.
import { createServer } from 'node:net';
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

/** A TCP port nothing listens on right now (the sandbox shares the host's network). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  await new Promise((r) => server.close(r));
  return port;
}
