// Accept of every socket unit (plugin/systemd/socket-counters.ts SocketAcceptIndex): read once, and
// again after a daemon-reload or re-exec, spread at ACCEPT_REREADS_PER_S from the first pass that
// sees the reload, Accept=yes sockets first; sockets never read are read at once. Fake systemd
// port counting Accept reads, fake clock.
import { describe, expect, it } from 'vitest';
import type { SystemdManager } from '../../plugin/systemd/manager.js';
import { ACCEPT_REREADS_PER_S, SocketAcceptIndex } from '../../plugin/systemd/socket-counters.js';
import { UnitTable } from '../../plugin/units/table.js';

const socket = (name: string) => ({ name, loadState: 'loaded', activeState: 'active', subState: 'listening', transient: false });

function setUp(n: number) {
  const table = new UnitTable();
  const accept = new Map<string, boolean>();
  const asked: string[] = [];
  for (let i = 0; i < n; i++) {
    table.upsert(socket(`s${i}.socket`));
    accept.set(`s${i}.socket`, i % 50 === 0); // 2% Accept=yes, as in the bench
  }
  table.upsert({ ...socket('web.service'), subState: 'running' }); // not a socket: never asked
  const manager = {
    getProperty: async (path: string, _iface: string, property: string) => {
      const name = path.replace('/org/freedesktop/systemd1/unit/', '').replace(/_([0-9a-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
      expect(property).toBe('Accept');
      asked.push(name);
      return accept.get(name) === true;
    },
  } as unknown as SystemdManager;
  const link = { systemd: manager as SystemdManager | undefined, generation: 0 };
  let nowMs = 1000;
  const index = new SocketAcceptIndex(table, link, () => nowMs);
  const pass = async (): Promise<string[]> => {
    asked.length = 0;
    await index.refresh();
    return [...asked];
  };
  return { table, accept, link, index, pass, advance: (ms: number) => (nowMs += ms) };
}

describe('SocketAcceptIndex', () => {
  it('reads every socket once, then nothing until something changes', async () => {
    const t = setUp(200);
    expect((await t.pass()).length).toBe(200);
    expect(t.table.get('s0.socket')!.accept).toBe(true);
    expect(t.table.get('s1.socket')!.accept).toBe(false);
    t.advance(10_000);
    expect(await t.pass()).toEqual([]);
  });

  it('after a reload reads every socket again, spread over the following seconds, Accept=yes ones first; the old value stands meanwhile', async () => {
    const t = setUp(200);
    await t.pass();
    // The reload turned one Accept=yes socket off and one Accept=no socket on.
    t.accept.set('s0.socket', false);
    t.accept.set('s199.socket', true);
    t.link.generation++;
    expect(await t.pass()).toEqual([]); // none at once: the reload costs its resync only
    expect(t.table.get('s0.socket')!.accept).toBe(true);
    expect(t.index.get('s0.socket')).toBe(true);
    expect(t.index.getCurrent('s0.socket')).toBeUndefined(); // read before the reload

    t.advance(1000);
    const first = await t.pass();
    expect(first.length).toBe(ACCEPT_REREADS_PER_S);
    // The four Accept=yes sockets first: s0 turned off is known within a second.
    expect(first.slice(0, 4).sort()).toEqual(['s0.socket', 's100.socket', 's150.socket', 's50.socket']);
    expect(t.table.get('s0.socket')!.accept).toBe(false);
    expect(t.table.get('s199.socket')!.accept).toBe(false); // not read yet

    t.advance(500); // half a second's worth more
    expect((await t.pass()).length).toBe(ACCEPT_REREADS_PER_S / 2);
    t.advance(60_000); // the rest, at once
    const rest = await t.pass();
    expect(rest.length).toBe(200 - ACCEPT_REREADS_PER_S * 1.5);
    expect(t.table.get('s199.socket')!.accept).toBe(true);
    expect(t.index.getCurrent('s199.socket')).toBe(true);
    t.advance(60_000);
    expect(await t.pass()).toEqual([]); // complete
  });

  it('reads a socket new since the reload at once, and a second reload starts the spread afresh', async () => {
    const t = setUp(100);
    await t.pass();
    t.link.generation++;
    t.table.upsert(socket('new.socket'));
    expect(await t.pass()).toEqual(['new.socket']);
    t.advance(1000);
    expect((await t.pass()).length).toBe(ACCEPT_REREADS_PER_S);
    t.link.generation++; // another reload before the spread is done: what was read is old again
    expect(await t.pass()).toEqual([]);
    t.advance(10_000);
    const all = await t.pass();
    expect(all.length).toBe(101);
    expect(new Set(all).size).toBe(101);
  });

  it('a socket unloaded and loaded again between passes keeps Accept=yes without a read; an Accept=no one is read again', async () => {
    const t = setUp(100);
    await t.pass();
    for (const name of ['s0.socket', 's1.socket']) {
      t.table.remove(name);
      t.table.upsert(socket(name)); // a new Unit, Accept unknown
    }
    expect(await t.pass()).toEqual(['s1.socket']);
    expect(t.table.get('s0.socket')!.accept).toBe(true);
    expect(t.index.getCurrent('s0.socket')).toBe(true);
    expect(t.table.get('s1.socket')!.accept).toBe(false);
  });
});
