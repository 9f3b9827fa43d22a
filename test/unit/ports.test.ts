// The tests' TCP ports (harness/ports.ts): below the kernel's ephemeral range (where outgoing
// connections take their local ports), a block per vitest worker, never the same twice in a
// process, never one somebody holds.
import { createServer, type Server } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { BLOCK_SIZE, ephemeralRange, freePort, portBlock } from '../../harness/ports.js';

const servers: Server[] = [];
afterAll(async () => {
  for (const s of servers) await new Promise((r) => s.close(r));
});

describe('freePort', () => {
  it('hands out distinct ports outside the ephemeral range, within this worker\'s block', async () => {
    const [lo, hi] = ephemeralRange();
    const block = portBlock(Number(process.env.VITEST_POOL_ID ?? 0))!;
    const ports: number[] = [];
    for (let i = 0; i < 20; i++) ports.push(await freePort());
    expect(new Set(ports).size).toBe(20);
    for (const p of ports) {
      expect(p < lo || p > hi, `${p} is in the ephemeral range ${lo}-${hi}`).toBe(true);
      expect(p).toBeGreaterThanOrEqual(block[0]);
      expect(p).toBeLessThan(block[1]);
    }
  });

  it('skips a port somebody holds', async () => {
    // Held by another listener: the next port in line must not be handed out.
    const probe = await freePort();
    const held = probe + 1;
    const server = createServer();
    servers.push(server);
    const bound = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen(held, '127.0.0.1', () => resolve(true));
    });
    expect(bound).toBe(true);
    const after = [await freePort(), await freePort()];
    expect(after).not.toContain(held);
  });

  it('gives every worker a block of its own, none of it ephemeral, whatever the range', () => {
    const eph: [number, number] = [32768, 60999];
    const blocks = Array.from({ length: 12 }, (_, id) => portBlock(id, eph)!);
    for (const [from, to] of blocks) {
      expect(to - from).toBe(BLOCK_SIZE);
      expect(to).toBeLessThanOrEqual(eph[0]);
    }
    const sorted = [...blocks].sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < sorted.length; i++) expect(sorted[i]![0]).toBeGreaterThanOrEqual(sorted[i - 1]![1]);
    // A range that covers the blocks leaves none: freePort says so rather than pick an ephemeral port.
    expect(portBlock(1, [1024, 65535])).toBeUndefined();
    expect(ephemeralRange('15000\t20999\n')).toEqual([15000, 20999]);
    expect(portBlock(0, [15000, 20999])).toBeUndefined(); // 20000-20999 overlaps
    expect(portBlock(1, [15000, 20999])).toEqual([21000, 22000]);
    expect(ephemeralRange('garbage')).toEqual([32768, 60999]);
  });
});
