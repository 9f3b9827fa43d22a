// The bound on socket activity's cost (on by default): at most socket_activity_max_sockets sockets
// read a round, the sockets taking turns with every one read within `turns` rounds, and charts
// defined with the interval each socket is really read at. Fake reader (a systemd port counting
// calls), fake clock (the rounds' timestamps are given).
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ProtocolWriter } from '../../plugin/netdata/protocol.js';
import type { SystemdManager } from '../../plugin/systemd/manager.js';
import { SocketPoller, TurnTaking } from '../../plugin/systemd/socket-poller.js';
import { UnitTable, type Unit } from '../../plugin/units/table.js';
import { SocketActivityCharts } from '../../plugin/writers/socket-activity.js';
import { defaultJob } from '../../plugin/config/schema.js';

const names = (n: number, prefix = 's') => Array.from({ length: n }, (_, i) => `${prefix}${i}.socket`);

function socketsIn(table: UnitTable, list: readonly string[]): Unit[] {
  return list.map((name) => {
    const u = table.upsert({ name, loadState: 'loaded', activeState: 'active', subState: 'listening', transient: false });
    u.accept = true;
    return u;
  });
}

/** A systemd port that answers the counters of every socket and counts the sockets asked about. */
function fakeReader(fail: ReadonlySet<string> = new Set()) {
  const asked: string[][] = [[]];
  const manager = {
    getProperty: async (path: string, _iface: string, property: string) => {
      const name = path.replace('/org/freedesktop/systemd1/unit/', '').replace(/_([0-9a-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
      if (property === 'NAccepted') asked.at(-1)!.push(name);
      if (fail.has(name)) throw new Error('gone');
      return property === 'NAccepted' ? 7 : 0;
    },
  } as unknown as SystemdManager;
  return { link: { systemd: manager }, asked, nextRound: () => asked.push([]) };
}

describe('TurnTaking: which sockets a round reads', () => {
  it('reads every socket each round while they fit under the cap', () => {
    const t = new TurnTaking({ everyS: 10, maxSockets: 40 });
    const s = socketsIn(new UnitTable(), names(40));
    expect(t.next(s)).toHaveLength(40);
    expect(t.turns).toBe(1);
    expect(t.everyS).toBe(10);
  });

  it('past the cap, reads at most the cap a round, each socket once in `turns` rounds, round after round', () => {
    const t = new TurnTaking({ everyS: 10, maxSockets: 4 });
    const s = socketsIn(new UnitTable(), names(10));
    for (let cycle = 0; cycle < 3; cycle++) {
      const seen: string[] = [];
      for (let r = 0; r < 3; r++) {
        const chosen = t.next(s);
        expect(chosen.length).toBeLessThanOrEqual(4);
        seen.push(...chosen.map((u) => u.name));
      }
      expect(t.turns).toBe(3);
      expect(t.everyS).toBe(30);
      expect(seen.sort()).toEqual(names(10).sort()); // each exactly once per 3 rounds
    }
  });

  it('reads a socket that appears before any read already, and never one that went', () => {
    const table = new UnitTable();
    const t = new TurnTaking({ everyS: 10, maxSockets: 4 });
    const s = socketsIn(table, names(8));
    t.next(s); // s0..s3
    const late = socketsIn(table, ['late.socket']);
    const now = [...s.slice(2), ...late]; // two went, one came
    const chosen = [...t.next(now), ...t.next(now)].map((u) => u.name);
    expect(chosen).toContain('late.socket');
    expect(chosen).not.toContain('s0.socket');
    expect(chosen.slice(0, 4)).toEqual(['s4.socket', 's5.socket', 's6.socket', 's7.socket']); // never read: first
  });

  it('stretches the interval at once when sockets grow, and back only with a tenth of the cap to spare', () => {
    const t = new TurnTaking({ everyS: 10, maxSockets: 10 });
    const s = socketsIn(new UnitTable(), names(30));
    t.next(s.slice(0, 10));
    expect(t.turns).toBe(1);
    t.next(s.slice(0, 11));
    expect(t.turns).toBe(2);
    t.next(s.slice(0, 25));
    expect(t.turns).toBe(3);
    t.next(s.slice(0, 20)); // fits in 2 turns exactly: not enough to spare, stays
    expect(t.turns).toBe(3);
    t.next(s.slice(0, 19));
    expect(t.turns).toBe(2);
    t.next(s.slice(0, 3));
    expect(t.turns).toBe(1);
  });

  it('keeps the interval within the agent bound (3600 s) and still never reads more than the cap', () => {
    const t = new TurnTaking({ everyS: 1800, maxSockets: 4 });
    const s = socketsIn(new UnitTable(), names(100));
    expect(t.next(s)).toHaveLength(4);
    expect(t.turns).toBe(2);
    expect(t.everyS).toBe(3600);
  });
});

describe('SocketPoller under the cap', () => {
  it('asks systemd about at most the cap per round, and stamps each reading with its interval', async () => {
    const table = new UnitTable();
    const s = socketsIn(table, names(25));
    const r = fakeReader();
    const poller = new SocketPoller(r.link, 'j', { everyS: 10, maxSockets: 10 });
    const read = new Set<string>();
    for (let round = 1; round <= 3; round++) {
      await poller.poll(s, round * 10_000_000, 5000);
      expect(r.asked.at(-1)!.length).toBeLessThanOrEqual(10);
      r.asked.at(-1)!.forEach((n) => read.add(n));
      r.nextRound();
    }
    expect(read.size).toBe(25); // all in 3 rounds
    for (const u of s) expect(u.counters).toMatchObject({ accepted: 7, everyS: 30 });
  });

  it('a socket whose read fails waits for its next turn and keeps its previous reading', async () => {
    const table = new UnitTable();
    const s = socketsIn(table, names(4));
    const r = fakeReader(new Set(['s1.socket']));
    const poller = new SocketPoller(r.link, 'j', { everyS: 10, maxSockets: 2 });
    await poller.poll(s, 1, 5000);
    await poller.poll(s, 2, 5000);
    expect(s[1]!.counters).toBeUndefined();
    expect(poller.lastRound?.sockets).toBe(2);
    expect([s[0], s[2], s[3]].every((u) => u!.counters !== undefined)).toBe(true);
  });
});

describe('socket activity charts follow the interval a socket is read at', () => {
  it('defines its charts with update_every = every × turns, and again when the turns change', async () => {
    const table = new UnitTable();
    const out = new PassThrough();
    let text = '';
    out.on('data', (c: Buffer) => (text += c.toString()));
    const writer = new ProtocolWriter(out);
    const config = { ...defaultJob(1), name: 'j', include: ['*.socket'], socketActivityEvery: 10, socketActivityMaxSockets: 2 };
    const charts = new SocketActivityCharts(config, table, writer);
    const r = fakeReader();
    const poller = new SocketPoller(r.link, 'j', { everyS: config.socketActivityEvery, maxSockets: config.socketActivityMaxSockets });
    socketsIn(table, names(2));
    const round = async (nowUs: number) => {
      const sel = charts.select();
      await poller.poll(sel, nowUs, 5000);
      charts.sample(nowUs);
      writer.flush();
      await new Promise((res) => setImmediate(res));
    };
    const chartLines = () => text.split('\n').filter((l) => l.startsWith('CHART ') && l.includes('s0_connections'));
    await round(1_000_000);
    expect(chartLines().at(-1)!.split(' ')).toContain('10');
    socketsIn(table, names(5)); // 5 sockets, 2 a round: 3 turns
    await round(11_000_000);
    await round(21_000_000);
    await round(31_000_000);
    expect(chartLines().length).toBe(2);
    expect(chartLines().at(-1)!.split(' ')).toContain('30');
    // One round's BEGINs: at most 2 sockets × 3 charts.
    text = '';
    await round(41_000_000);
    expect(text.split('\n').filter((l) => l.startsWith('BEGIN ')).length).toBeLessThanOrEqual(6);
  });
});
