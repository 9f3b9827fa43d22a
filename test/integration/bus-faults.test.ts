// A bus connection that turns bad mid-run, produced for real by a fault proxy between the plugin
// and the sandbox's dbus-daemon (harness/bus-proxy.ts): garbage bytes, a message that does
// not decode, headers announcing absurd bodies, and a connection frozen with its socket open.
// Each time the plugin must say so in one line, drop that connection, reconnect through the proxy
// (which forwards new connections faithfully), resync, and chart a real failure made afterwards;
// its memory must stay bounded and no error may escape as "internal error".
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BusProxy } from '../../harness/bus-proxy.js';
import { procStats } from '../../harness/faults.js';
import { PluginRun } from '../../harness/plugin.js';
import { startSandbox, type Sandbox } from '../../harness/sandbox.js';
import { failSocket, recoverSocket, startSockets } from '../../harness/units.js';

const SOCKETS = 'systemdunits_service_units.socket_unit_state';

let sb: Sandbox;
let proxy: BusProxy | undefined;
let run: PluginRun | undefined;
let proxies = 0;

beforeAll(async () => {
  sb = await startSandbox();
  await startSockets(sb, ['steady', 'probe']);
});
afterEach(async () => {
  await run?.stop();
  await proxy?.close();
  run = undefined;
  proxy = undefined;
  await recoverSocket(sb, 'probe');
});
afterAll(async () => {
  await sb?.stop({ removeDir: true });
});

/** Bytes no D-Bus peer would send: a fixed pseudo-random sequence (the same on every run). */
function garbage(length: number): Buffer {
  const b = Buffer.alloc(length);
  let x = 0x2545f491;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

/** A signal whose header is well framed but whose header fields are garbage: the decoder must reject it. */
function undecodable(): Buffer {
  const h = Buffer.alloc(16);
  h.write('l', 0, 'latin1');
  h[1] = 4; // SIGNAL
  h[3] = 1;
  h.writeUInt32LE(0, 4); // no body
  h.writeUInt32LE(0x7fff_fff1, 8);
  h.writeUInt32LE(64, 12); // 64 bytes of header fields…
  return Buffer.concat([h, garbage(64)]); // …that are garbage
}

const faults: [string, (p: BusProxy) => void, RegExp][] = [
  ['garbage bytes', (p) => p.injectGarbage(garbage(4096)), /not D-Bus/],
  ['a message whose header fields do not decode', (p) => p.injectGarbage(undecodable()), /cannot decode/],
  ['a header announcing a 2 GiB body', (p) => p.injectHeader(2 ** 31), /announces a message of 2147483672 bytes/],
  // Under Node's 1 GiB read limit: unchecked, the reader would buffer all the filler that follows.
  ['a header announcing 512 MiB, then 96 MiB of filler', (p) => p.injectHeader(512 << 20, 96 << 20), /announces a message of 536870936 bytes/],
  ['a frozen connection (nothing forwarded, socket open)', (p) => p.freeze(), /no answer on the connection/],
];

describe('a bus connection that turns bad mid-run', () => {
  for (const [name, fault, said] of faults) {
    it(`${name}: one line, dropped, replaced, resynced; a real failure after it is charted`, async () => {
      proxy = await BusProxy.start(sb.busAddress.replace(/^unix:path=/, ''), `${sb.dir}/proxy${proxies++}.sock`);
      const r = (run = new PluginRun(['1'], { DBUS_SYSTEM_BUS_ADDRESS: proxy.address }));
      await r.waitForValue(SOCKETS, 'steady.socket', 1, 20_000);
      const pid = r.child.pid!;
      const before = procStats(pid).rssKb;
      let peak = before;
      const watch = setInterval(() => {
        try {
          peak = Math.max(peak, procStats(pid).rssKb);
        } catch {
          // exited: the checks below say so
        }
      }, 100);
      const opened = proxy.opened;
      const from = r.stderr.length;
      const t0 = performance.now();
      try {
        fault(proxy);
        await r.waitFor('the bad connection dropped', () => r.stderr.slice(from).includes('lost the system bus'), 30_000);
        const dropped = performance.now();
        await r.waitFor('a new connection, resynced', () => r.stderr.slice(from).includes('reconnected to the system bus'), 30_000);
        const reconnected = performance.now();
        await failSocket(sb, 'probe');
        await r.waitForValue(SOCKETS, 'probe.socket', 5, 5000);
        const charted = performance.now();
        console.log(
          `${name}: dropped after ${((dropped - t0) / 1000).toFixed(2)} s, reconnected after ${((reconnected - t0) / 1000).toFixed(2)} s; ` +
            `a failure then charted in ${((charted - reconnected) / 1000).toFixed(2)} s; RSS ${before} kB before, ${peak} kB at most`,
        );
      } finally {
        clearInterval(watch);
      }
      const lost = r.stderr.slice(from).trim().split('\n').filter((l) => l.includes('lost the system bus'));
      console.log(`${name}: said ${JSON.stringify(lost)}`);
      expect(lost, r.stderr).toHaveLength(1);
      expect(lost[0]).toMatch(said);
      expect(lost[0], 'no raw bytes from the bus in the log').not.toMatch(/[\x00-\x1f\x7f\ufffd]/);
      expect(r.stderr).not.toMatch(/internal error|RangeError|    at /);
      expect(proxy.opened, 'reconnected through the proxy').toBeGreaterThan(opened);
      expect(peak - before, 'RSS stays bounded').toBeLessThan(48 * 1024);
      expect(r.child.exitCode).toBeNull();
      expect(r.protocolErrors).toEqual([]);
      expect(r.strayLines).toEqual([]);
    }, 90_000);
  }
});

describe('a bus that breaks every connection soon after it is made', () => {
  it('is not reconnected to (and resynced from) in a tight loop: the backoff carries over; one line a minute', async () => {
    proxy = await BusProxy.start(sb.busAddress.replace(/^unix:path=/, ''), `${sb.dir}/proxy${proxies++}.sock`);
    const r = (run = new PluginRun(['1'], { DBUS_SYSTEM_BUS_ADDRESS: proxy.address }));
    await r.waitForValue(SOCKETS, 'steady.socket', 1, 20_000);
    const from = r.stderr.length;
    const opened = proxy.opened;
    // Each new connection lives long enough to resync, then turns bad.
    proxy.breakEveryNewConnection(1500, garbage(64));
    proxy.injectGarbage(garbage(64));
    // A set span: the test counts the connections made in it (the backoff's rate).
    await new Promise((res) => setTimeout(res, 20_000));
    const connections = proxy.opened - opened;
    const lost = r.stderr.slice(from).split('\n').filter((l) => l.includes('lost the system bus'));
    console.log(`a bus breaking every connection after 1.5 s: ${connections} connections in 20 s; ${lost.length} 'lost' line(s)`);
    // 250 ms, then 1, 2, 4, 8 s between connections that live ~1.8 s each: 4 or 5 in 20 s. With the
    // backoff starting afresh after each successful connect, 12 were made (each a full resync).
    expect(connections).toBeGreaterThanOrEqual(3);
    expect(connections).toBeLessThanOrEqual(7);
    expect(lost).toHaveLength(1);
    expect(r.stderr).not.toMatch(/internal error/);
    // Healthy again: the next connection stays, and a real failure is charted.
    proxy.breakEveryNewConnection(1e9, Buffer.alloc(0));
    await r.waitFor('a connection made after the bus is healthy', () => proxy!.opened > opened + connections, 40_000);
    await failSocket(sb, 'probe');
    await r.waitForValue(SOCKETS, 'probe.socket', 5, 20_000);
  }, 120_000);
});
