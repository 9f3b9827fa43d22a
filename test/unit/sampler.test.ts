// The sample loop's order of work per tick, with fake parts: what runs in step and out of step,
// the Functions declared once, the wait for a failure's reason, the socket counters started after
// the first batch, and an activity round's charts written only once its reads are in.
import { PassThrough, Writable } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ProtocolWriter } from '../../plugin/netdata/protocol.js';
import { MAX_BACKLOG_BYTES, Sampler, type ActivityJob, type SamplerParts } from '../../plugin/sampler.js';
import type { SystemdManager } from '../../plugin/systemd/manager.js';
import type { Unit } from '../../plugin/units/table.js';

const SOME_SYSTEMD = {} as SystemdManager;

function parts(overrides: Partial<SamplerParts> = {}) {
  const out = new PassThrough();
  let text = '';
  out.on('data', (c: Buffer) => (text += c.toString()));
  const log: string[] = [];
  const link = { inStep: false, systemd: undefined as SystemdManager | undefined };
  const p: SamplerParts = {
    link,
    writer: new ProtocolWriter(out),
    jobs: [{ config: { updateEvery: 1 }, sample: (now) => log.push(`sample ${now > 0}`) }],
    activity: [],
    accept: { refresh: async () => void log.push('accept') },
    functions: { declareAll: () => log.push('declare') },
    reasons: { settled: () => undefined },
    ...overrides,
  };
  return { p, link, log, output: () => text };
}

let sampler: Sampler | undefined;
afterEach(() => sampler?.stop());

describe('the sample loop', () => {
  it('out of step: writes a heartbeat, samples nothing, declares nothing', async () => {
    const { p, log, output } = parts();
    sampler = new Sampler(p);
    sampler.start();
    await vi.waitFor(() => expect(output()).toBe('\n'));
    expect(log).toEqual([]);
  });

  it('in step: declares the Functions with the first batch only, samples, then starts the socket counters', async () => {
    const charts = { config: { name: 'j', socketActivityEvery: 3600 }, select: () => [], sample: () => {} };
    const { p, link, log } = parts({ activity: [{ charts, poller: { poll: async () => {} } }] });
    link.inStep = true;
    link.systemd = SOME_SYSTEMD;
    sampler = new Sampler(p);
    sampler.start();
    await vi.waitFor(() => expect(log).toContain('accept'));
    expect(log.slice(0, 3)).toEqual(['declare', 'sample true', 'accept']);
    await vi.waitFor(() => expect(log.filter((l) => l.startsWith('sample'))).toHaveLength(2), { timeout: 3000 });
    expect(log.filter((l) => l === 'declare')).toHaveLength(1);
  });

  it("ticks systemd's watchdog in each sample tick, in step or not", async () => {
    let ticks = 0;
    const { p, output } = parts({ watchdog: { tick: () => void ticks++ } });
    sampler = new Sampler(p);
    sampler.start();
    await vi.waitFor(() => expect(output()).toBe('\n'));
    expect(ticks).toBe(1);
  });

  it('waits for the reason of a unit that failed just before, then samples', async () => {
    let release!: () => void;
    const pending = new Promise<void>((r) => (release = r));
    let asked = 0;
    const { p, link, log } = parts({ reasons: { settled: (maxMs) => (asked++, expect(maxMs).toBe(300), pending) } });
    link.inStep = true;
    sampler = new Sampler(p);
    sampler.start();
    await vi.waitFor(() => expect(asked).toBe(1));
    await new Promise((r) => setTimeout(r, 20));
    expect(log).toEqual([]);
    release();
    await vi.waitFor(() => expect(log).toEqual(['declare', 'sample true']));
  });

  it('reads a round of socket counters, then writes that round only while still in step', async () => {
    const socket = { name: 'web.socket' } as Unit;
    const events: string[] = [];
    let finish!: () => void;
    const charts: ActivityJob['charts'] = {
      config: { name: 'j', socketActivityEvery: 3600 },
      select: () => (events.push('select'), [socket]),
      sample: (at) => events.push(`write ${at}`),
    };
    const poller = {
      poll: (units: readonly Unit[], at: number) => {
        events.push(`poll ${units.length} ${at}`);
        return new Promise<void>((r) => (finish = r));
      },
    };
    const { p, link } = parts({ activity: [{ charts, poller }] });
    link.inStep = true;
    link.systemd = SOME_SYSTEMD;
    sampler = new Sampler(p);
    sampler.start();
    await vi.waitFor(() => expect(events).toHaveLength(2));
    const at = Number(events[1]!.split(' ')[2]);
    expect(events).toEqual(['select', `poll 1 ${at}`]);
    finish();
    await vi.waitFor(() => expect(events).toEqual(['select', `poll 1 ${at}`, `write ${at}`]));
  });

  it('drops a round that ends after systemd went out of reach (no half-true batch)', async () => {
    const events: string[] = [];
    let finish!: () => void;
    const charts: ActivityJob['charts'] = {
      config: { name: 'j', socketActivityEvery: 3600 },
      select: () => [{ name: 'web.socket' } as Unit],
      sample: () => events.push('write'),
    };
    const poller = { poll: () => (events.push('poll'), new Promise<void>((r) => (finish = r))) };
    const { p, link } = parts({ activity: [{ charts, poller }] });
    link.inStep = true;
    link.systemd = SOME_SYSTEMD;
    sampler = new Sampler(p);
    sampler.start();
    await vi.waitFor(() => expect(events).toEqual(['poll']));
    link.inStep = false;
    finish();
    await new Promise((r) => setTimeout(r, 20));
    expect(events).toEqual(['poll']);
  });

  it('skips samples while the agent leaves more than the bound unread, says so once, and resumes when it reads', async () => {
    // An agent that stops reading: stdout takes each write and never completes it until told.
    const held: Array<() => void> = [];
    const out = new Writable({ highWaterMark: 1024, write: (_chunk, _enc, done) => held.push(() => done()) });
    const writer = new ProtocolWriter(out);
    const big = 'x'.repeat(Math.ceil(MAX_BACKLOG_BYTES / 2) + 1);
    let samples = 0;
    const stderr: string[] = [];
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((line) => (stderr.push(String(line)), true));
    try {
      const { p, link } = parts({ writer, jobs: [{ config: { updateEvery: 1 }, sample: () => (samples++, void writer.ascii(`${big}\n`)) }] });
      link.inStep = true;
      sampler = new Sampler(p);
      sampler.start();
      // Two samples put more than the bound in the pipe; the ticks after them write nothing.
      await vi.waitFor(() => expect(samples).toBe(2), { timeout: 4000 });
      await vi.waitFor(() => expect(stderr.join('')).toMatch(/stdout: the agent has left \d+\.\d MB unread; samples are skipped/), { timeout: 3000 });
      const skippedAt = samples;
      const backlog = writer.backlog;
      await new Promise((r) => setTimeout(r, 2200));
      expect(samples).toBe(skippedAt);
      expect(writer.backlog).toBe(backlog);
      expect(stderr.filter((l) => l.includes('samples are skipped'))).toHaveLength(1);
      // The agent reads again: the next tick samples.
      while (held.length) held.shift()!();
      await vi.waitFor(() => expect(samples).toBeGreaterThan(skippedAt), { timeout: 3000 });
      expect(stderr.join('')).toMatch(/stdout: the agent reads again after \d+ s; samples resume/);
    } finally {
      spy.mockRestore();
    }
  }, 15_000);
});
