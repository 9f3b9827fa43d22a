// What keeps the plugin's memory bounded and its view of systemd honest, piece by piece: stdin
// lines, dimension ids of retired units, the charts' memory per dimension, socket activity's memory per socket, object paths, the watchdog that notices a hung systemd,
// and background work that folds the requests made while it runs into one more run.
import { PassThrough, Writable } from 'node:stream';
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { IdAllocator } from '../../plugin/netdata/ids.js';
import { socketIdOf } from '../../plugin/writers/socket-activity.js';
import { unitDimensionIdOf } from '../../plugin/writers/unit-state.js';
import { MAX_LINE, readRequests, type FunctionCall } from '../../plugin/netdata/requests.js';
import { CoalescedRun } from '../../plugin/systemd/coalesced.js';
import { Watchdog, type WatchdogOptions } from '../../plugin/systemd/watchdog.js';
import { unitNameFromPath, unitPath } from '../../plugin/units/names.js';
import { defaultJob } from '../../plugin/config/schema.js';
import { ProtocolWriter } from '../../plugin/netdata/protocol.js';
import { UnitTable, type UnitSnapshot } from '../../plugin/units/table.js';
import { Job } from '../../plugin/writers/job.js';
import { SocketActivityCharts } from '../../plugin/writers/socket-activity.js';
import { SocketAcceptIndex } from '../../plugin/systemd/socket-counters.js';
import type { SystemdManager } from '../../plugin/systemd/manager.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

afterEach(() => vi.restoreAllMocks());

describe('stdin', () => {
  function reader() {
    const input = new PassThrough();
    const calls: FunctionCall[] = [];
    const quits: string[] = [];
    const stderr: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      stderr.push(String(chunk));
      return true;
    });
    readRequests(input, { onQuit: (r) => quits.push(r), onFunction: (c) => calls.push(c) });
    return { input, calls, quits, stderr };
  }

  it('drops a line of many MB without a newline as it streams in, says so once, and reads on', async () => {
    const { input, calls, quits, stderr } = reader();
    const mem = () => process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
    const before = mem();
    const chunk = Buffer.alloc(1 << 20, 0x41); // 1 MiB of 'A', 64 times, no newline
    let peak = 0;
    for (let i = 0; i < 64; i++) {
      input.write(chunk);
      await new Promise((r) => setImmediate(r));
      peak = Math.max(peak, mem() - before);
    }
    input.write(Buffer.from([0x00, 0xff, 0xfe, 0x0a])); // ends it, then binary garbage on a line of its own
    input.write(Buffer.from([0xc3, 0x28, 0x00, 0x7f, 0x0a]));
    input.write('FUNCTION t1 5 "nope"\n' + 'y'.repeat(MAX_LINE + 1) + '\nQUIT\n');
    input.end();
    await sleep(20);
    expect(calls.map((c) => c.transaction)).toEqual(['t1']);
    expect(quits).toEqual(['quit', 'eof']);
    // One line on stderr for all of it (the message is said at most once a minute).
    expect(stderr).toHaveLength(1);
    expect(stderr[0]).toMatch(/^systemdunits\.plugin: ignoring an over-long line \(over 65536 bytes\) on stdin/);
    // Never more than a few chunks held at once, not the 64 MiB line.
    expect(peak).toBeLessThan(16 << 20);
  });

  it('splits a request across chunks and strips a CR', async () => {
    const { input, calls } = reader();
    input.write('FUNC');
    input.write('TION t2 5 "x y"\r');
    input.write('\nFUNCTION t3 5 "z"');
    input.end();
    await sleep(10);
    expect(calls.map((c) => [c.transaction, c.command])).toEqual([
      ['t2', 'x y'],
      ['t3', 'z'],
    ]);
  });
});

describe('dimension ids of retired units', () => {
  it('are forgotten beyond the newest ones kept, and live ones never', () => {
    const ids = new IdAllocator(unitDimensionIdOf, 100);
    const live = new Map<string, { id: string }>();
    for (let i = 0; i < 10; i++) live.set(`live${i}.service`, { id: ids.idFor(`live${i}.service`) });
    // 5,000 units come and go, each named anew (like Accept=yes instances).
    for (let i = 0; i < 5000; i++) {
      ids.idFor(`conn@${i}.service`);
      ids.forgetRetired(live);
    }
    expect(ids.size).toBe(110);
    for (const [name, { id }] of live) expect(ids.ownerOf(id)).toBe(name);
    expect(ids.ownerOf('conn@4999.service')).toBe('conn@4999.service'); // the newest retired are kept
    expect(ids.ownerOf('conn@0.service')).toBeUndefined();
  });

  it('of sockets with activity charts are forgotten the same way (sockets made and dropped at run time)', () => {
    const ids = new IdAllocator(socketIdOf, 100);
    const live = new Map([['web.socket', { id: ids.idFor('web.socket') }]]);
    for (let i = 0; i < 3000; i++) {
      ids.idFor(`run-u${i}.socket`);
      ids.forgetRetired(live);
    }
    expect(ids.size).toBe(101);
    expect(ids.ownerOf('web')).toBe('web.socket');
  });

  it('still keep a colliding live name off a live id', () => {
    const ids = new IdAllocator(unitDimensionIdOf, 0);
    const live = new Map([['a_b.socket', { id: ids.idFor('a_b.socket') }]]);
    for (let i = 0; i < 50; i++) {
      ids.idFor(`x${i}.socket`);
      ids.forgetRetired(live);
    }
    // 'a b.socket' (a name systemd would refuse) cleans up to the same id as the live one.
    expect(ids.idFor('a b.socket')).toMatch(/^a_b\.socket_[0-9a-f]{8}$/);
  });
});

describe('dimension ids given out with the live dimensions', () => {
  it('store no id that is its unit name, yet keep colliding names apart, live or retired', () => {
    const ids = new IdAllocator(unitDimensionIdOf, 1);
    const live = new Map<string, { id: string }>();
    for (const name of ['a_b.socket', 'web.socket']) live.set(name, { id: ids.idFor(name, live) });
    expect([...live.values()].map((d) => d.id)).toEqual(['a_b.socket', 'web.socket']);
    expect(ids.size).toBe(0); // the chart's own map answers for them
    // 'a b.socket' (a name systemd would refuse) cleans up to the live one's id.
    const odd = ids.idFor('a b.socket', live);
    expect(odd).toMatch(/^a_b\.socket_[0-9a-f]{8}$/);
    live.set('a b.socket', { id: odd });
    expect(ids.ownerOf(odd)).toBe('a b.socket');
    // Retired, a unit name's id stays taken while it is among the latest retired ...
    live.delete('a_b.socket');
    ids.retire('a_b.socket', 'a_b.socket');
    ids.forgetRetired(live);
    expect(ids.idFor('a=b.socket', live)).toMatch(/^a_b\.socket_[0-9a-f]{8}$/);
    expect(ids.idFor('a_b.socket', live)).toBe('a_b.socket'); // and its unit gets it back
    // ... and is forgotten beyond them.
    live.delete('web.socket');
    ids.retire('web.socket', 'web.socket');
    ids.retire('a_b.socket', 'a_b.socket');
    ids.forgetRetired(live);
    expect(ids.ownerOf('a_b.socket')).toBeUndefined();
    expect(ids.ownerOf(odd)).toBe('a b.socket');
  });
});

describe('the charts of 20,000 units', () => {
  it('hold under 120 bytes per unit dimension, their SET lines included (a Map entry and a record each were ~235)', () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const table = new UnitTable();
    const listed: UnitSnapshot[] = [];
    for (let i = 0; i < 10_000; i++) {
      for (const type of ['socket', 'service']) listed.push({ name: `bench-${i}.${type}`, loadState: 'loaded', activeState: i % 7 ? 'active' : 'failed', subState: 'x', transient: false });
    }
    table.applySnapshot(listed);
    const writer = new ProtocolWriter(new Writable({ write: (_chunk, _enc, done) => done() }));
    const mem = () => (gc(), gc(), process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers);
    const before = mem();
    const job = new Job(defaultJob(1), table, writer);
    for (let s = 1; s <= 3; s++) {
      job.sample(s * 1_000_000);
      writer.flush();
    }
    const perDimension = (mem() - before) / listed.length;
    expect(job.selects(table.get('bench-0.socket')!)).toBe(true); // the job is still alive here
    expect(perDimension).toBeLessThan(120);
  });
});

/** The heap in use after full collections (the test file runs with --expose-gc set here). */
function heapMeter(): () => number {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  return () => (gc(), gc(), process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers);
}

describe('socket activity at 10,000 sockets', () => {
  const sockets = (n: number, yes: (i: number) => boolean) => {
    const table = new UnitTable();
    table.applySnapshot(Array.from({ length: n }, (_, i) => ({ name: `bench-${i}.socket`, loadState: 'loaded', activeState: 'active', subState: 'listening', transient: false })));
    return { table, yes: (name: string) => yes(Number(/\d+/.exec(name)![0])) };
  };

  it('the Accept index keeps under 4 bytes a socket beyond the model when 2% are Accept=yes (with a map of every socket: 25-50 in runs here)', async () => {
    const mem = heapMeter();
    const { table, yes } = sockets(10_000, (i) => i % 50 === 0);
    const manager = {
      getProperty: async (path: string) => yes(unitNameFromPath(path)!),
    } as unknown as SystemdManager;
    // Its code compiled and warm first: only what it keeps is measured.
    await new SocketAcceptIndex(sockets(10_000, () => true).table, { systemd: manager, generation: 0 }).refresh();
    const before = mem();
    const index = new SocketAcceptIndex(table, { systemd: manager, generation: 0 });
    await index.refresh();
    const perSocket = (mem() - before) / 10_000;
    expect(index.get('bench-50.socket')).toBe(true); // every one read, and the index still alive here
    expect(index.get('bench-51.socket')).toBe(false);
    expect(perSocket).toBeLessThan(4);
  });

  it('the charts of an Accept=yes socket hold under 4.5 KB, its three charts together (6.5-6.7 KB with a Map per socket, closures per chart and arrays grown by push)', () => {
    const mem = heapMeter();
    const n = 1000;
    const { table } = sockets(n, () => true);
    for (const u of table.units()) u.accept = true;
    const writer = new ProtocolWriter(new Writable({ write: (_chunk, _enc, done) => done() }));
    const before = mem();
    const charts = new SocketActivityCharts({ ...defaultJob(1), name: 'sockets' }, table, writer);
    for (let s = 1; s <= 3; s++) {
      const nowUs = s * 10_000_000;
      for (const u of charts.select()) u.counters = { accepted: s, connections: 1, refused: 0, limit: 64, limitGeneration: 0, activity: 0, readAtUs: nowUs, currentAtUs: nowUs };
      charts.sample(nowUs);
      writer.flush();
    }
    // The counters belong to the model (the poller's): not the charts' cost.
    const counters = 10 * 8 + 24;
    const perSocket = (mem() - before) / n - counters;
    expect(charts.select().length).toBe(n); // still alive here
    expect(perSocket).toBeLessThan(4500);
  });
});

describe('unit object paths', () => {
  it('are built exactly as systemd escapes them, and read back', () => {
    expect(unitPath('foo.socket')).toBe('/org/freedesktop/systemd1/unit/foo_2esocket');
    expect(unitPath('my\\x2dapp@1.socket')).toBe('/org/freedesktop/systemd1/unit/my_5cx2dapp_401_2esocket');
    for (const name of ['dbus.service', 'a-b_c@d:e.mount', 'sys-devices-x\\x2dy.device', 'ünï.service']) {
      expect(unitNameFromPath(unitPath(name))).toBe(name);
    }
  });
});

describe('watchdog', () => {
  function watch(ping: () => Promise<void>, extra: Partial<WatchdogOptions> = {}) {
    const events: string[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    const dog = new Watchdog({
      quietMs: 30,
      maxMessages: 1e9,
      sent: () => 0,
      ping: () => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        return ping().finally(() => inFlight--);
      },
      isTimeout: (err) => (err as Error).message === 'timeout',
      onUnresponsive: () => events.push('unresponsive'),
      onResponsive: () => events.push('responsive'),
      onWornOut: (n) => events.push(`worn ${n}`),
      pingBus: async () => {},
      onStuck: () => events.push('stuck'),
      ...extra,
    });
    return { dog, events, maxInFlight: () => maxInFlight };
  }

  it('pings only after quiet, one ping at a time, and says unresponsive once, then responsive once', async () => {
    let hung = true;
    const { dog, events, maxInFlight } = watch(() =>
      hung ? new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), 60)) : Promise.resolve(),
    );
    dog.start();
    try {
      await sleep(400);
      expect(events).toEqual(['unresponsive']);
      expect(maxInFlight()).toBe(1);
      hung = false;
      await sleep(200);
      expect(events).toEqual(['unresponsive', 'responsive']);
    } finally {
      dog.stop();
    }
  });

  it('asks for a new connection when neither systemd nor the bus daemon answer on it (a frozen systemd alone only pauses)', async () => {
    const timeout = () => new Promise<void>((_, reject) => setTimeout(() => reject(new Error('timeout')), 60));
    const stuck = watch(timeout, { pingBus: timeout });
    stuck.dog.start();
    await sleep(150);
    stuck.dog.stop();
    expect(stuck.events[0]).toBe('stuck');
    expect(stuck.events).not.toContain('unresponsive');
    const frozen = watch(timeout, { pingBus: async () => {} });
    frozen.dog.start();
    await sleep(150);
    frozen.dog.stop();
    expect(frozen.events).toEqual(['unresponsive']);
  });

  it('asks the bus daemon only when systemd is slow to answer: a quiet, healthy systemd costs one call a ping', async () => {
    let pings = 0;
    let busPings = 0;
    const { dog } = watch(async () => void pings++, { pingBus: async () => void busPings++ });
    dog.start();
    await sleep(200);
    dog.stop();
    expect(pings).toBeGreaterThanOrEqual(2);
    expect(busPings).toBe(0);
  });

  it('does not ping while systemd keeps talking', async () => {
    let pings = 0;
    const { dog } = watch(async () => void pings++);
    dog.start();
    const talk = setInterval(() => dog.heard(), 5);
    await sleep(200);
    clearInterval(talk);
    dog.stop();
    expect(pings).toBe(0);
  });

  it('does not ping while systemd answers calls (an answer proves it alive as a signal does), and does once they stop', async () => {
    let pings = 0;
    let answeredAt = Date.now();
    const { dog } = watch(async () => void pings++, { answeredAt: () => answeredAt });
    dog.start();
    const answer = setInterval(() => (answeredAt = Date.now()), 5);
    await sleep(200);
    clearInterval(answer);
    expect(pings).toBe(0);
    await sleep(100);
    dog.stop();
    expect(pings).toBeGreaterThanOrEqual(1);
  });

  it("checks in the sample loop's ticks: while they come, every ping is sent from one (no wake-up of its own); once they stop, its own timer pings", async () => {
    let inTick = false;
    const pingsFrom: string[] = [];
    const { dog } = watch(async () => void pingsFrom.push(inTick ? 'tick' : 'timer'));
    dog.start();
    const ticks = setInterval(() => {
      inTick = true;
      dog.tick();
      inTick = false;
    }, 10);
    await sleep(300);
    clearInterval(ticks);
    expect(pingsFrom.length).toBeGreaterThanOrEqual(3);
    expect(pingsFrom.every((p) => p === 'tick')).toBe(true);
    await sleep(150);
    dog.stop();
    expect(pingsFrom.slice(-1)).toEqual(['timer']);
  });

  it('asks for a new connection once the message count reaches the limit', async () => {
    const { dog, events } = watch(async () => {}, { maxMessages: 100, sent: () => 150 });
    dog.start();
    await sleep(60);
    dog.stop();
    expect(events[0]).toBe('worn 150');
  });
});

describe('background work requested while it runs (resyncs, Accept reads)', () => {
  it('runs once more after the run under way, however many requests came meanwhile, never two at once', async () => {
    let runs = 0;
    let inFlight = 0;
    let maxInFlight = 0;
    let release: () => void = () => {};
    const work = new CoalescedRun(async () => {
      runs++;
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      await new Promise<void>((r) => (release = r));
      inFlight--;
    });
    const first = work.request();
    const during = [work.request(), work.request(), work.request()];
    expect(work.busy).toBe(true);
    release();
    await new Promise((r) => setTimeout(r, 0));
    expect(runs).toBe(2); // the three requests folded into one more run
    release();
    await Promise.all([first, ...during]);
    expect({ runs, maxInFlight, busy: work.busy }).toEqual({ runs: 2, maxInFlight: 1, busy: false });
    void work.request();
    release();
    expect(runs).toBe(3); // idle again: a request runs at once
  });

  it('makes no extra run once its owner has stopped', async () => {
    let runs = 0;
    let stopped = false;
    let release: () => void = () => {};
    const work = new CoalescedRun(
      async () => {
        runs++;
        await new Promise<void>((r) => (release = r));
      },
      () => stopped,
    );
    const p = work.request();
    void work.request();
    stopped = true;
    release();
    await p;
    expect(runs).toBe(1);
  });
});
