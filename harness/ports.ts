// TCP ports for tests: the port of a socket unit, of an agent's API, of a container's mapping.
//
// A port picked by binding port 0 and closing comes from the kernel's ephemeral range, the range
// every outgoing connection's local port is taken from too; and a test binds its port only later
// (systemd when the socket starts, an agent once it is up), while other test files run beside it
// and poll agents over HTTP. Such a port was once taken meanwhile ("Job failed" starting the socket).
// So ports come from below the ephemeral range, where nothing picks them on its own: each vitest
// worker (VITEST_POOL_ID) from a block of its own, each process from its own point in the block
// (two runs of the suite at once), never the same port twice in a process, and only a port that
// nobody holds when it is picked.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** Ports per block, and the blocks: [FIRST_PORT, FIRST_PORT + BLOCKS × BLOCK_SIZE), below Linux's default ephemeral range. */
export const BLOCK_SIZE = 1000;
const FIRST_PORT = 20_000;
const BLOCKS = 12;

/** The kernel's ephemeral port range (Linux's default when it cannot be read). */
export function ephemeralRange(text?: string): [number, number] {
  try {
    const [lo, hi] = (text ?? readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')).trim().split(/\s+/).map(Number);
    if (Number.isInteger(lo) && Number.isInteger(hi) && lo! > 0 && hi! >= lo!) return [lo!, hi!];
  } catch {
    // not Linux, or no /proc: the default
  }
  return [32768, 60999];
}

/** The ports worker `poolId` picks from ([from, to)), none of them ephemeral: undefined if none are left. */
export function portBlock(poolId: number, ephemeral: [number, number] = ephemeralRange()): [number, number] | undefined {
  const block = ((poolId % BLOCKS) + BLOCKS) % BLOCKS;
  const from = FIRST_PORT + block * BLOCK_SIZE;
  const to = from + BLOCK_SIZE;
  return to <= ephemeral[0] || from > ephemeral[1] ? [from, to] : undefined;
}

const handedOut = new Set<number>();
let next: number | undefined;

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A TCP port on 127.0.0.1 that nothing listens on now, and that nothing else is likely to take before the caller binds it. */
export async function freePort(): Promise<number> {
  const block = portBlock(Number(process.env.VITEST_POOL_ID ?? 0)) ?? portBlock(0);
  if (!block) throw new Error(`freePort: no ports below the ephemeral range ${ephemeralRange().join('-')}`);
  const [from, to] = block;
  const size = to - from;
  next ??= process.pid % size;
  for (let tried = 0; tried < size; tried++) {
    const port = from + (next++ % size);
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    if (await bindable(port)) return port;
  }
  throw new Error(`freePort: every port of ${from}-${to - 1} is taken or was handed out`);
}
