// Socket counters read on events, within a bound (socket activity is on by default): a round
// reads only the sockets whose counters may have moved (never read, a signal about them or their
// per-connection instances since their last read, at their refusal limit, a new connection to
// systemd, a reload or re-exec, and now and then one for safety), at most
// socket_activity_max_sockets of them; every other socket is marked current without a call, and
// its charts are sampled every round. Fake reader (a systemd port counting calls), fake clock.
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ProtocolWriter } from '../../plugin/netdata/protocol.js';
import type { SystemdManager } from '../../plugin/systemd/manager.js';
import { SAFETY_GAP_S, SAFETY_REFRESH_S, SocketPoller } from '../../plugin/systemd/socket-poller.js';
import { UnitTable, type Unit } from '../../plugin/units/table.js';
import { SocketActivityCharts } from '../../plugin/writers/socket-activity.js';
import { defaultJob } from '../../plugin/config/schema.js';

const names = (n: number, prefix = 's') => Array.from({ length: n }, (_, i) => `${prefix}${i}.socket`);
const S = 1_000_000;

function socketsIn(table: UnitTable, list: readonly string[]): Unit[] {
  return list.map((name) => {
    const u = table.upsert({ name, loadState: 'loaded', activeState: 'active', subState: 'listening', transient: false });
    u.accept = true;
    return u;
  });
}

interface Counters {
  NAccepted: number;
  NConnections: number;
  NRefused: number;
  MaxConnections: number;
  MaxConnectionsPerSource: number;
}

/** A systemd port that answers each socket's properties, and records which sockets it was asked about. */
function fakeSystemd(fail: Set<string> = new Set()) {
  const values = new Map<string, Counters>();
  const asked: string[] = [];
  const limitsAsked: string[] = [];
  let slow: Promise<void> | undefined;
  const of = (name: string): Counters => {
    let c = values.get(name);
    if (!c) values.set(name, (c = { NAccepted: 0, NConnections: 0, NRefused: 0, MaxConnections: 64, MaxConnectionsPerSource: 0 }));
    return c;
  };
  const manager = () =>
    ({
      getProperty: async (path: string, _iface: string, property: keyof Counters) => {
        const name = path.replace('/org/freedesktop/systemd1/unit/', '').replace(/_([0-9a-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
        if (property === 'NAccepted') asked.push(name);
        if (property === 'MaxConnections') limitsAsked.push(name);
        if (slow) await slow;
        if (fail.has(name)) throw new Error('gone');
        return of(name)[property];
      },
    }) as unknown as SystemdManager;
  const link = { systemd: manager() as SystemdManager | undefined, generation: 0 };
  return {
    link,
    of,
    asked,
    limitsAsked,
    /** Sockets asked about since the last call. */
    take(): string[] {
      return asked.splice(0).sort();
    },
    reconnect: () => (link.systemd = manager()),
    holdAnswers(): () => void {
      let release!: () => void;
      slow = new Promise((r) => (release = r));
      return () => {
        slow = undefined;
        release();
      };
    },
  };
}

function setup(n: number, maxSockets = 40) {
  const table = new UnitTable();
  const sockets = socketsIn(table, names(n));
  const sd = fakeSystemd();
  const poller = new SocketPoller(sd.link, table, 'j', { maxSockets });
  let now = 0;
  const round = async () => {
    now += 10 * S;
    await poller.poll(sockets, now, 5000);
    return now;
  };
  return { table, sockets, sd, poller, round, current: (at: number) => sockets.filter((u) => u.counters?.currentAtUs === at).map((u) => u.name).sort() };
}

describe('SocketPoller: reads on events only', () => {
  it('reads every socket once, then none while nothing happens, and marks them all current each round', async () => {
    const { sockets, sd, round, current, poller } = setup(10);
    await round();
    expect(sd.take()).toEqual(names(10).sort());
    expect(sd.limitsAsked.length).toBe(10); // MaxConnections read with the first reading
    for (let i = 0; i < 5; i++) {
      const at = await round();
      expect(sd.take()).toEqual([]);
      expect(current(at)).toEqual(names(10).sort());
      expect(poller.lastRound).toMatchObject({ sockets: 0, current: 10, waiting: 0 });
    }
    expect(sockets[3]!.counters).toMatchObject({ accepted: 0, connections: 0, refused: 0, limit: 64 });
    expect(sd.limitsAsked.length).toBe(10); // not again
  });

  it('reads a socket again after a signal about it or one of its instances, and only that one', async () => {
    const { table, sockets, sd, round, current } = setup(5);
    await round();
    sd.take();
    sd.of('s2.socket').NAccepted = 3;
    sd.of('s2.socket').NConnections = 1;
    table.noteSocketActivity('s2.socket'); // as the sync does on the socket's signal
    let at = await round();
    expect(sd.take()).toEqual(['s2.socket']);
    expect(sockets[2]!.counters).toMatchObject({ accepted: 3, connections: 1 });
    expect(current(at)).toEqual(names(5).sort());
    // An instance of s4 appears in the table (a lookup after its UnitNew), then goes.
    table.upsert({ name: 's4@0-1234-0.service', loadState: 'loaded', activeState: 'active', subState: 'running' });
    await round();
    expect(sd.take()).toEqual(['s4.socket']);
    table.remove('s4@0-1234-0.service');
    at = await round();
    expect(sd.take()).toEqual(['s4.socket']);
    expect(current(at)).toHaveLength(5);
  });

  it('reads again next round when a signal comes while the answer is on its way', async () => {
    const { table, sd, round, sockets } = setup(3);
    await round();
    sd.take();
    table.noteSocketActivity('s1.socket');
    const release = sd.holdAnswers();
    const r = round();
    await new Promise((res) => setImmediate(res));
    table.noteSocketActivity('s1.socket'); // a connection accepted after systemd answered the first Get
    sd.of('s1.socket').NAccepted = 9;
    release();
    await r;
    expect(sd.take()).toEqual(['s1.socket']);
    await round();
    expect(sd.take()).toEqual(['s1.socket']);
    expect(sockets[1]!.counters!.accepted).toBe(9);
    await round();
    expect(sd.take()).toEqual([]);
  });

  it('reads a socket every round while it is at its limit (refusals are not signalled), and not once below', async () => {
    const { table, sd, round, sockets } = setup(3);
    sd.of('s0.socket').MaxConnections = 2;
    sd.of('s1.socket').MaxConnectionsPerSource = 1; // one source's connections are among NConnections
    await round();
    sd.take();
    expect(sockets[0]!.counters!.limit).toBe(2);
    expect(sockets[1]!.counters!.limit).toBe(1);
    for (const n of ['s0.socket', 's1.socket']) {
      sd.of(n).NConnections = 2;
      table.noteSocketActivity(n);
    }
    await round();
    expect(sd.take()).toEqual(['s0.socket', 's1.socket']);
    for (let i = 1; i <= 3; i++) {
      sd.of('s0.socket').NRefused = i;
      await round();
      expect(sd.take()).toEqual(['s0.socket', 's1.socket']);
      expect(sockets[0]!.counters!.refused).toBe(i);
    }
    sd.of('s0.socket').NConnections = 1; // an instance stopped: signalled
    sd.of('s1.socket').NConnections = 0;
    table.noteSocketActivity('s0.socket');
    table.noteSocketActivity('s1.socket');
    await round();
    expect(sd.take()).toEqual(['s0.socket', 's1.socket']);
    await round();
    expect(sd.take()).toEqual([]);
  });

  it('after a reload or re-exec reads every socket again (counters and limits), charted meanwhile; after a reconnect reads everything', async () => {
    const { sd, round, current, sockets } = setup(4, 2);
    for (let i = 0; i < 2; i++) await round();
    sd.take();
    const limitsBefore = sd.limitsAsked.length;
    sd.link.generation++; // a daemon-reload or daemon-reexec: counters rebuilt from systemd's serialized state
    sd.of('s0.socket').MaxConnections = 5;
    for (const n of names(4)) sd.of(n).NAccepted = 7; // connections accepted while no signal was heard
    let at = await round();
    const read = sd.take();
    expect(read).toHaveLength(2); // within the cap
    expect(current(at)).toHaveLength(4); // the others still charted meanwhile
    at = await round();
    read.push(...sd.take());
    expect(read.sort()).toEqual(names(4).sort());
    expect(current(at)).toHaveLength(4);
    expect(sockets.map((u) => u.counters!.accepted)).toEqual([7, 7, 7, 7]);
    expect(sd.limitsAsked.length - limitsBefore).toBe(4);
    expect(sockets[0]!.counters!.limit).toBe(5);
    await round();
    expect(sd.take()).toEqual([]); // once each
    expect(sd.limitsAsked.length - limitsBefore).toBe(4);
    sd.reconnect();
    at = await round();
    expect(sd.take()).toHaveLength(2);
    expect(current(at)).toHaveLength(2); // the others unknown until read: a gap, not stale values
    at = await round();
    expect(sd.take()).toHaveLength(2);
    expect(current(at)).toHaveLength(4);
  });

  it('reads one socket not read for SAFETY_REFRESH_S, at most one per SAFETY_GAP_S', async () => {
    const { sd, round, poller } = setup(3);
    await round();
    sd.take();
    const rounds = SAFETY_REFRESH_S / 10;
    for (let i = 1; i < rounds; i++) await round();
    expect(sd.take()).toEqual([]);
    const reads: string[][] = [];
    for (let i = 0; i < (3 * SAFETY_GAP_S) / 10; i++) {
      await round();
      reads.push(sd.take());
    }
    expect(reads.flat().sort()).toEqual(names(3).sort()); // one each, oldest first
    expect(reads.filter((r) => r.length > 0)).toHaveLength(3);
    for (let i = 0; i < reads.length; i++) if (reads[i]!.length > 0) expect(reads.slice(i + 1, i + SAFETY_GAP_S / 10).flat()).toEqual([]);
    expect(poller.lastRound!.current).toBe(3);
  });
});

describe('SocketPoller under the cap', () => {
  it('reads at most the cap a round; those waiting longest first; the waiting ones are not current', async () => {
    const { table, sd, round, current } = setup(25, 10);
    const seen = new Set<string>();
    for (let r = 0; r < 3; r++) {
      const at = await round();
      const asked = sd.take();
      expect(asked.length).toBeLessThanOrEqual(10);
      asked.forEach((n) => seen.add(n));
      expect(current(at)).toHaveLength(seen.size); // never read yet: no value to chart
    }
    expect(seen.size).toBe(25);
    // A storm on all 25: 10 a round, every one read within 3 rounds.
    for (const n of names(25)) table.noteSocketActivity(n);
    seen.clear();
    for (let r = 0; r < 3; r++) {
      await round();
      sd.take().forEach((n) => seen.add(n));
    }
    expect(seen.size).toBe(25);
  });

  it('a socket whose read fails is read again next round and keeps its previous reading, not current', async () => {
    const table = new UnitTable();
    const s = socketsIn(table, names(3));
    const fail = new Set<string>();
    const sd = fakeSystemd(fail);
    const poller = new SocketPoller(sd.link, table, 'j', { maxSockets: 10 });
    await poller.poll(s, 1, 5000);
    sd.take();
    fail.add('s1.socket');
    table.noteSocketActivity('s1.socket');
    await poller.poll(s, 2, 5000);
    expect(poller.lastRound).toMatchObject({ sockets: 1, failed: 1 });
    expect(s[1]!.counters!.currentAtUs).toBe(1);
    fail.clear();
    sd.take();
    await poller.poll(s, 3, 5000);
    expect(sd.take()).toEqual(['s1.socket']);
    expect(s[1]!.counters!.currentAtUs).toBe(3);
  });
});

describe('socket activity charts', () => {
  it('are defined with socket_activity_every and sampled every round, read or not; a socket waiting past the cap leaves a gap', async () => {
    const table = new UnitTable();
    const out = new PassThrough();
    let text = '';
    out.on('data', (c: Buffer) => (text += c.toString()));
    const writer = new ProtocolWriter(out);
    const config = { ...defaultJob(1), name: 'j', include: ['*.socket'], socketActivityEvery: 10, socketActivityMaxSockets: 2 };
    const charts = new SocketActivityCharts(config, table, writer);
    const sd = fakeSystemd();
    const poller = new SocketPoller(sd.link, table, 'j', { maxSockets: config.socketActivityMaxSockets });
    socketsIn(table, names(5));
    const round = async (nowUs: number) => {
      const sel = charts.select();
      await poller.poll(sel, nowUs, 5000);
      charts.sample(nowUs);
      writer.flush();
      await new Promise((res) => setImmediate(res));
    };
    const begins = (socket: string) => text.split('\n').filter((l) => l.startsWith(`BEGIN systemdunits_j.socket_${socket}_connections`)).length;
    for (let r = 1; r <= 3; r++) await round(r * 10 * S); // 5 sockets, 2 reads a round: all read by round 3
    const chartLines = text.split('\n').filter((l) => l.startsWith('CHART ') && l.includes('_connections '));
    expect(chartLines).toHaveLength(15); // 3 charts × 5 sockets, each defined once
    for (const l of chartLines) expect(l.split(' ')).toContain('10');
    text = '';
    for (let r = 4; r <= 6; r++) await round(r * 10 * S);
    for (const n of names(5)) expect(begins(n.replace('.socket', ''))).toBe(3); // every round
    expect(sd.take()).toHaveLength(5); // only the first three rounds read
    // A storm on 4 sockets: 2 read a round; the other 2 are not sampled that round.
    for (const n of names(4)) table.noteSocketActivity(n);
    text = '';
    await round(70 * S);
    expect(names(5).filter((n) => begins(n.replace('.socket', '')) === 1)).toHaveLength(3); // 2 read + s4 current
    expect(text).not.toContain('CHART ');
  });
});
