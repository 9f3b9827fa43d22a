// The pure parts of socket activity: the bounded map that paces every read, the chart ids, the
// chart definitions' contract with the alarm, and the config keys.
import { describe, expect, it } from 'vitest';
import { chartLine } from '../../charts/shape.js';
import { SOCKET_ACTIVITY_CHARTS, socketValues } from '../../charts/socket-activity.js';
import { parseConfig } from '../../plugin/config/index.js';
import { defaultJob } from '../../plugin/config/schema.js';
import { IdAllocator } from '../../plugin/netdata/ids.js';
import { socketIdOf } from '../../plugin/writers/socket-activity.js';
import { mapLimited } from '../../plugin/systemd/limit.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('mapLimited', () => {
  it('never runs more than `concurrency` at once, and keeps results in input order', async () => {
    let running = 0;
    let peak = 0;
    const items = Array.from({ length: 50 }, (_, i) => i);
    const out = await mapLimited(items, { concurrency: 4 }, async (i) => {
      running++;
      peak = Math.max(peak, running);
      await sleep(i % 3);
      running--;
      return i * 2;
    });
    expect(peak).toBe(4);
    expect(out).toEqual(items.map((i) => i * 2));
  });

  it('gives undefined for an item whose call threw, and carries on with the rest', async () => {
    const out = await mapLimited([1, 2, 3], { concurrency: 2 }, async (i) => {
      if (i === 2) throw new Error('gone');
      return i;
    });
    expect(out).toEqual([1, undefined, 3]);
  });

  it('starts nothing after the deadline', async () => {
    let now = 0;
    const started: number[] = [];
    const out = await mapLimited([0, 1, 2, 3, 4, 5], { concurrency: 2, deadline: 2, now: () => now }, async (i) => {
      started.push(i);
      now++; // each call takes one "ms" of the fake clock
      return i;
    });
    expect(started).toEqual([0, 1]);
    expect(out).toEqual([0, 1, undefined, undefined, undefined, undefined]);
  });

  it('copes with no items', async () => {
    expect(await mapLimited([], { concurrency: 8 }, async () => 1)).toEqual([]);
  });
});

describe('socket chart ids', () => {
  it('drop .socket, decode escapes, and turn dots and unsafe characters into _', () => {
    const owners = new IdAllocator(socketIdOf);
    expect(owners.idFor('web.socket')).toBe('web');
    expect(owners.idFor('my\\x2dapp.socket')).toBe('my-app');
    expect(owners.idFor('a.b.socket')).toBe('a_b');
    expect(owners.idFor('sp ace.socket')).toBe('sp_ace');
  });

  it('stay unique when two names clean up alike, and stable for the same name', () => {
    const owners = new IdAllocator(socketIdOf);
    const first = owners.idFor('a.b.socket');
    const second = owners.idFor('a_b.socket');
    expect(first).toBe('a_b');
    expect(second).toMatch(/^a_b_[0-9a-f]{8}$/);
    expect(owners.idFor('a.b.socket')).toBe(first);
    expect(owners.idFor('a_b.socket')).toBe(second);
  });

  it('make chart ids with the agent-safe alphabet, one per counter, each with its own context', () => {
    const ids = SOCKET_ACTIVITY_CHARTS.map((c) => chartLine(c, socketValues('web', 'web.socket'), { chartType: 'systemdunits_x', priority: 0, updateEvery: 1, contextPrefix: 'systemd' }).fullId);
    expect(ids).toEqual(['systemdunits_x.socket_web_accepted_connections', 'systemdunits_x.socket_web_connections', 'systemdunits_x.socket_web_refused_connections']);
    expect(new Set(SOCKET_ACTIVITY_CHARTS.map((c) => c.context)).size).toBe(3);
    expect(SOCKET_ACTIVITY_CHARTS.map((c) => [c.counter, c.dimension.algorithm])).toEqual([
      ['NAccepted', 'incremental'],
      ['NConnections', 'absolute'],
      ['NRefused', 'incremental'],
    ]);
  });
});

describe('config: socket_activity keys', () => {
  const parse = (job: string, every = 1) => parseConfig(`jobs:\n  - name: j\n${job}`, 'x.conf', every);

  it('are on by default, every 10 s, at most 40 sockets a round; socket_activity: false turns them off', () => {
    const { config, problems } = parse('    include: ["*.socket"]\n');
    expect(problems).toEqual([]);
    expect(config.jobs[0]).toMatchObject({ socketActivity: true, socketActivityEvery: 10, socketActivityMaxSockets: 40 });
    expect(defaultJob(1)).toMatchObject({ socketActivity: true, socketActivityMaxSockets: 40 });
    expect(parse('    socket_activity: false\n').config.jobs[0]).toMatchObject({ socketActivity: false });
    expect(parse('    socket_activity_max_sockets: 5\n').config.jobs[0]).toMatchObject({ socketActivityMaxSockets: 5 });
  });

  it('take true/false and a whole number of seconds, never faster than the plugin runs', () => {
    expect(parse('    socket_activity: true\n    socket_activity_every: 30\n').config.jobs[0]).toMatchObject({ socketActivity: true, socketActivityEvery: 30 });
    expect(parse('    socket_activity: true\n    socket_activity_every: 1\n', 5).config.jobs[0]).toMatchObject({ socketActivityEvery: 5 });
    // A job sampling every 20 s reads counters no more often than that by default.
    expect(parse('    update_every: 20\n    socket_activity: true\n').config.jobs[0]).toMatchObject({ socketActivityEvery: 20 });
  });

  it('name the key when a value is wrong, and skip the job', () => {
    for (const [bad, key] of [
      ['    socket_activity: "maybe"\n', 'socket_activity'],
      ['    socket_activity_every: 0\n', 'socket_activity_every'],
      ['    socket_activity_every: 2.5\n', 'socket_activity_every'],
      ['    socket_activity_max_sockets: 0\n', 'socket_activity_max_sockets'],
      ['    socket_activity_max_sockets: many\n', 'socket_activity_max_sockets'],
    ] as const) {
      const { config, problems } = parse(bad);
      expect(config.jobs).toEqual([]);
      expect(problems[0]).toContain(`x.conf: job 'j' (jobs[0]): ${key}:`);
      expect(problems.at(-1)).toMatch(/disabling the plugin$/); // no job left
    }
  });
});

describe('mapLimited with settleByDeadline', () => {
  it('resolves at the deadline with what is done, without waiting for calls under way', async () => {
    const started = performance.now();
    const out = await mapLimited([5, 2000, 10], { concurrency: 3, deadline: started + 150, settleByDeadline: true }, async (ms) => {
      await sleep(ms);
      return ms;
    });
    const took = performance.now() - started;
    expect(out).toEqual([5, undefined, 10]);
    expect(took).toBeGreaterThanOrEqual(140);
    expect(took).toBeLessThan(1500);
  });
});
