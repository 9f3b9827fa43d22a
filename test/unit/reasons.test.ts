// The pure parts of issue 6 items 2-5: failure lines and their rate limit, the per-connection
// instance rule, aggregated dimensions, units by state, and state transitions, over an in-memory
// unit table and the real protocol writer.
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { UNIT_COUNTS_CHART } from '../../charts/unit-summary.js';
import { defaultJob, type JobConfig } from '../../plugin/config/index.js';
import { Job } from '../../plugin/writers/job.js';
import { failedLabel } from '../../plugin/writers/unit-state.js';
import { ProtocolWriter } from '../../plugin/netdata/protocol.js';
import { tokenize } from '../../plugin/netdata/requests.js';
import type { SystemdManager } from '../../plugin/systemd/manager.js';
import { FailureReporter, RateLimitedLog, failureLine, triggeredSummary } from '../../plugin/systemd/reasons.js';
import { perConnectionGroup } from '../../plugin/units/instances.js';
import { UnitTable, type UnitSnapshot } from '../../plugin/units/table.js';

const JOB = 'systemdunits_service_units';
const SOCKETS = `${JOB}.socket_unit_state`;
const SERVICES = `${JOB}.service_unit_state`;

function unit(name: string, activeState = 'active', extra: Partial<UnitSnapshot> = {}): UnitSnapshot {
  return { name, loadState: 'loaded', activeState, subState: 'x', transient: false, ...extra };
}

class Harness {
  readonly table = new UnitTable();
  private readonly out = new PassThrough();
  private readonly writer = new ProtocolWriter(this.out);
  private text = '';
  private now = 0;
  readonly job: Job;

  constructor(config: JobConfig = defaultJob(1)) {
    this.out.on('data', (c: Buffer) => (this.text += c.toString()));
    this.job = new Job(config, this.table, this.writer);
  }

  sample(): Sampled {
    this.text = '';
    this.now += 1_000_000;
    this.job.sample(this.now);
    this.writer.flush();
    this.out.read();
    return new Sampled(this.text.split('\n').filter((l) => l !== '').map(tokenize));
  }
}

/** One sample's lines, read per chart. */
class Sampled {
  constructor(readonly lines: string[][]) {}

  /** Lines in the scope of a chart (a CHART or BEGIN line opens a scope). */
  of(chart: string): string[][] {
    let inChart = false;
    return this.lines.filter((w) => {
      if (w[0] === 'CHART' || w[0] === 'BEGIN') inChart = w[1] === chart;
      return inChart;
    });
  }

  values(chart: string): Record<string, number> {
    return Object.fromEntries(this.of(chart).filter((w) => w[0] === 'SET').map((w) => [w[1]!, Number(w[2])]));
  }

  variable(chart: string, name: string): number | undefined {
    const v = this.of(chart).filter((w) => w[0] === 'VARIABLE' && w[2] === name);
    return v.length ? Number(v.at(-1)![3]) : undefined;
  }

  label(chart: string, name: string): string | undefined {
    return this.of(chart).filter((w) => w[0] === 'CLABEL' && w[1] === name).at(-1)?.[2];
  }

  chart(chart: string): string[] | undefined {
    return this.lines.filter((w) => w[0] === 'CHART' && w[1] === chart).at(-1);
  }

  dimensions(chart: string): string[][] {
    return this.of(chart).filter((w) => w[0] === 'DIMENSION');
  }
}

describe('per-connection instances (Accept=yes)', () => {
  it('recognises the names systemd gives per-connection instances, old and new', () => {
    const cases = [
      'echo@0-127.0.0.1:7777-127.0.0.1:45678.service', // systemd 252, IPv4
      'echo@12-::1:7777-::1:50000.service', // IPv6
      'echo@3-fe80::1:22-fe80::2:51515.service',
      'echo@4-1234-0.service', // AF_UNIX: PID-UID
      'echo@5-unknown.service', // AF_UNIX peer in another namespace
      'echo@6-8589934593-127.0.0.1:7777-127.0.0.1:45678.service', // newer systemd: socket cookie
      'echo@7-8589934593-1234_77-1000.service', // newer systemd: PID_PIDFDID-UID
      'echo@8-2:1024-3:2048.service', // vsock CID:PORT
      'echo@9-10.0.0.1-80-10.0.0.2-5555.service', // very old systemd
      'sshd@0-10.0.0.1:22-10.0.0.9:60000.socket',
    ];
    for (const name of cases) expect(perConnectionGroup(name), name).toEqual({ key: `${name.slice(0, name.indexOf('@'))}@*${name.slice(name.lastIndexOf('.'))}`, socket: `${name.slice(0, name.indexOf('@'))}.socket` });
  });

  it('leaves ordinary template instances and plain units alone', () => {
    for (const name of [
      'getty@tty1.service',
      'user@1000.service',
      'user-runtime-dir@1000.service',
      'systemd-fsck@dev-disk-by\\x2duuid-1234.service',
      'openvpn@office.service',
      'container@web-1.service',
      'tpl@7.socket',
      'echo.socket',
      'echo@.service',
      'echo@0.service',
      'echo@0-.service',
      'a@1-2.service', // one dash only: not PID-UID, not an address pair
    ]) {
      expect(perConnectionGroup(name), name).toBeUndefined();
    }
  });
});

describe('aggregated dimensions', () => {
  const conn = (n: number, state = 'active', extra: Partial<UnitSnapshot> = {}) => unit(`echo@${n}-127.0.0.1:7777-127.0.0.1:${40000 + n}.service`, state, extra);

  it('charts the instances of one template as one dimension with the worst state, naming the real failed one', () => {
    const h = new Harness();
    h.table.applySnapshot([unit('echo.socket'), unit('getty@tty1.service'), conn(1), conn(2, 'deactivating'), conn(3)]);
    let s = h.sample();
    const dims = s.dimensions(SERVICES);
    expect(dims.map((w) => [w[1], w[2]])).toEqual([
      ['echo@_.service', 'echo@*.service'],
      ['getty@tty1.service', 'getty@tty1.service'],
    ]);
    expect(s.values(SERVICES)).toEqual({ 'echo@_.service': 4, 'getty@tty1.service': 1 });
    expect(s.variable(SERVICES, 'failed_units')).toBe(0);

    const failing = h.table.get(conn(2).name)!;
    h.table.update(failing, { result: 'exit-code' });
    h.table.update(failing, { activeState: 'failed' });
    s = h.sample();
    expect(s.values(SERVICES)).toEqual({ 'echo@_.service': 5, 'getty@tty1.service': 1 });
    expect(s.variable(SERVICES, 'failed_units')).toBe(1);
    expect(s.label(SERVICES, 'failed_units')).toBe(`${conn(2).name} (exit-code)`);
    expect(s.dimensions(SERVICES)).toEqual([]); // no new dimension for the failed instance
  });

  it('keeps the one dimension while connections come and go, and while its socket is loaded with none', () => {
    const h = new Harness();
    h.table.applySnapshot([unit('echo.socket'), conn(1)]);
    h.sample();
    for (let i = 2; i < 50; i++) {
      h.table.upsert(conn(i));
      h.table.remove(conn(i - 1).name);
      const s = h.sample();
      expect(s.dimensions(SERVICES)).toEqual([]);
      expect(s.values(SERVICES)).toEqual({ 'echo@_.service': 1 });
    }
    h.table.remove(conn(49).name);
    let s = h.sample();
    expect(s.dimensions(SERVICES)).toEqual([]);
    expect(s.values(SERVICES)).toEqual({ 'echo@_.service': 2 }); // no connection: inactive
    h.table.remove('echo.socket');
    s = h.sample();
    expect(s.chart(SERVICES)?.[10]).toBe('obsolete'); // socket gone, no instance: the chart goes
  });

  it('gives each instance its own dimension with aggregate_instances: false', () => {
    const h = new Harness({ ...defaultJob(1), aggregateInstances: false });
    h.table.applySnapshot([unit('echo.socket'), conn(1), conn(2)]);
    expect(Object.keys(h.sample().values(SERVICES)).sort()).toEqual([conn(1).name, conn(2).name]);
  });
});

describe('units by state', () => {
  const COUNTS = `${JOB}.socket_units_by_state`;

  it('has dimension names that sort in its order, active then failed: the colours both dashboards give', () => {
    // 1.37's dashboard colours dimensions from its palette in their order, v2's (@netdata/charts
    // updateColors) in the sorted order of their names: palette slots 0 and 1 (green and red on
    // the dark themes) go to active and failed on both only if the two orders agree.
    const names = UNIT_COUNTS_CHART.dimensions.map((d) => d.name);
    expect([...names].sort()).toEqual(names);
    expect(names.slice(0, 2)).toEqual(['active', 'failed']);
  });

  it('counts the units of each type per state, a unit failed during the interval as failed', () => {
    const h = new Harness();
    h.table.applySnapshot([
      unit('a.socket'),
      unit('b.socket'),
      unit('c.socket', 'inactive'),
      unit('d.socket', 'activating'),
      unit('e.socket', 'deactivating'),
      unit('f.socket', 'failed'),
      unit('g.socket', 'failed'),
      unit('h.socket', 'failed'),
      unit('ssh.service'),
    ]);
    let s = h.sample();
    const chart = s.chart(COUNTS)!;
    expect(chart.slice(3, 8)).toEqual(['Socket Units by State', 'units', 'socket', 'systemd.socket_units_by_state', 'stacked']);
    expect(s.dimensions(COUNTS).map((w) => `${w[1]} ${w[2]}`)).toEqual(['active active', 'failed failed', 'inactive inactive', 'activating starting', 'deactivating stopping']);
    expect(s.values(COUNTS)).toEqual({ active: 2, inactive: 1, activating: 1, deactivating: 1, failed: 3 });
    expect(s.values(`${JOB}.service_units_by_state`)).toEqual({ active: 1, inactive: 0, activating: 0, deactivating: 0, failed: 0 });
    expect(s.label(COUNTS, 'unit_type')).toBe('socket');

    // a.socket fails and recovers between samples: failed for that sample, active on the next.
    const a = h.table.get('a.socket')!;
    h.table.update(a, { activeState: 'failed' });
    h.table.update(a, { activeState: 'active' });
    s = h.sample();
    expect(s.values(COUNTS)).toMatchObject({ active: 1, failed: 4 });
    s = h.sample();
    expect(s.values(COUNTS)).toMatchObject({ active: 2, failed: 3 });
    s = h.sample(); // idle tick: same counts, still written
    expect(s.values(COUNTS)).toMatchObject({ active: 2, failed: 3 });
    expect(s.dimensions(COUNTS)).toEqual([]);
  });
});

describe('state transitions', () => {
  const TRANSITIONS = `${JOB}.socket_unit_state_transitions`;

  it('counts every ActiveState change of the interval, per type, with the threshold variable and the changed units', () => {
    const h = new Harness({ ...defaultJob(1), flappingThreshold: 7 });
    h.table.applySnapshot([unit('a.socket'), unit('b.socket'), unit('ssh.service')]);
    let s = h.sample();
    expect(s.chart(TRANSITIONS)!.slice(3, 8)).toEqual(['Socket Unit State Transitions', 'transitions', 'socket', 'systemd.socket_unit_state_transitions', 'line']);
    expect(s.values(TRANSITIONS)).toEqual({ transitions: 0 });
    expect(s.variable(TRANSITIONS, 'flapping_threshold')).toBe(7);
    expect(s.label(TRANSITIONS, 'changed_units')).toBe('none');

    const a = h.table.get('a.socket')!;
    for (const st of ['deactivating', 'failed', 'activating', 'active']) h.table.update(a, { activeState: st });
    h.table.update(h.table.get('b.socket')!, { activeState: 'inactive' });
    h.table.update(h.table.get('b.socket')!, { subState: 'dead' }); // not an ActiveState change
    h.table.update(h.table.get('ssh.service')!, { activeState: 'reloading' });
    s = h.sample();
    expect(s.values(TRANSITIONS)).toEqual({ transitions: 5 });
    expect(s.values(`${JOB}.service_unit_state_transitions`)).toEqual({ transitions: 1 });
    expect(s.label(TRANSITIONS, 'changed_units')).toBe('a.socket; b.socket');
    expect(s.variable(TRANSITIONS, 'flapping_threshold')).toBe(7);

    s = h.sample();
    expect(s.values(TRANSITIONS)).toEqual({ transitions: 0 });
    expect(s.chart(TRANSITIONS)).toBeUndefined(); // label unchanged: no CHART line
  });

  it('keeps the sum of the last 5 minutes of samples in transitions_5m, for the flapping alarm', () => {
    const h = new Harness({ ...defaultJob(60), updateEvery: 60 }); // 5 samples make 5 minutes
    h.table.applySnapshot([unit('a.socket')]);
    expect(h.sample().variable(TRANSITIONS, 'transitions_5m')).toBe(0);
    const a = h.table.get('a.socket')!;
    const flap = (n: number) => {
      for (let i = 0; i < n; i++) h.table.update(a, { activeState: a.activeState === 'active' ? 'failed' : 'active' });
    };
    const seen: number[] = [];
    for (const n of [3, 0, 2, 0, 0, 1, 0, 0]) {
      flap(n);
      seen.push(h.sample().variable(TRANSITIONS, 'transitions_5m')!);
    }
    // The window holds 5 samples: the 3 drops out at the sixth.
    expect(seen).toEqual([3, 3, 5, 5, 5, 3, 3, 1]);
  });

  it('keeps counting a unit that systemd unloads and loads again between two samples (reset-failed, start)', () => {
    const h = new Harness();
    h.table.applySnapshot([unit('a.socket'), unit('b.socket')]);
    h.sample();
    for (let cycle = 0; cycle < 3; cycle++) {
      const a = h.table.get('a.socket')!;
      for (const st of ['inactive', 'activating', 'failed', 'inactive']) h.table.update(a, { activeState: st });
      h.table.remove('a.socket');
      const again = h.table.upsert(unit('a.socket', 'inactive'));
      for (const st of ['activating', 'active']) h.table.update(again, { activeState: st });
    }
    const s = h.sample();
    expect(s.values(TRANSITIONS)).toEqual({ transitions: 18 });
    expect(s.label(TRANSITIONS, 'changed_units')).toBe('a.socket');
    expect(h.sample().values(TRANSITIONS)).toEqual({ transitions: 0 });
  });

  it('counts the change across an unload that no signal carried (failed when unloaded, active when listed again)', () => {
    const h = new Harness();
    h.table.applySnapshot([unit('a.socket'), unit('b.socket')]);
    h.sample();
    h.table.update(h.table.get('a.socket')!, { activeState: 'failed' });
    h.table.remove('a.socket'); // systemd merged reset-failed's `inactive` into the removal
    h.table.upsert(unit('a.socket', 'active')); // started again, seen first in its lookup
    expect(h.sample().values(TRANSITIONS)).toEqual({ transitions: 2 });
    h.table.remove('a.socket');
    h.table.upsert(unit('a.socket', 'active')); // unloaded and loaded in the same state: no change
    expect(h.sample().values(TRANSITIONS)).toEqual({ transitions: 0 });
    // Unloaded across a sample (it leaves the chart), then back in another state: still counted.
    h.table.update(h.table.get('a.socket')!, { activeState: 'failed' });
    h.table.remove('a.socket');
    expect(h.sample().values(TRANSITIONS)).toEqual({ transitions: 1 });
    h.table.upsert(unit('a.socket', 'active'));
    expect(h.sample().values(TRANSITIONS)).toEqual({ transitions: 1 });
  });

  it('keeps the changes of a unit that is removed before the next sample, and ignores per-connection instances', () => {
    const h = new Harness();
    const conn = 'echo@1-127.0.0.1:7777-127.0.0.1:40001.service';
    h.table.applySnapshot([unit('a.socket'), unit('b.socket'), unit('echo.socket'), unit('ssh.service'), unit(conn)]);
    h.sample();
    h.table.update(h.table.get('a.socket')!, { activeState: 'failed' });
    h.table.update(h.table.get('b.socket')!, { activeState: 'inactive' });
    h.table.remove('b.socket');
    h.table.update(h.table.get(conn)!, { activeState: 'deactivating' });
    h.table.update(h.table.get(conn)!, { activeState: 'inactive' });
    h.table.remove(conn);
    const s = h.sample();
    expect(s.values(TRANSITIONS)).toEqual({ transitions: 2 });
    expect(s.values(`${JOB}.service_unit_state_transitions`)).toEqual({ transitions: 0 });
    expect(h.sample().values(TRANSITIONS)).toEqual({ transitions: 0 });
  });
});

describe('why it failed', () => {
  afterEach(() => vi.useRealTimers());

  it('writes one line naming the unit, its Result and what a socket triggers', () => {
    expect(failureLine({ name: 'a.service', failedResult: 'exit-code' })).toBe('a.service failed (Result=exit-code)');
    expect(
      failureLine({ name: 'web.socket', failedResult: 'service-start-limit-hit' }, [
        { name: 'web.service', activeState: 'failed', subState: 'failed', result: 'start-limit-hit' },
      ]),
    ).toBe('web.socket failed (Result=service-start-limit-hit); it triggers web.service, which is failed/failed (Result=start-limit-hit)');
    expect(failureLine({ name: 'x.socket', failedResult: undefined }, [{ name: 'x.service' }])).toBe(
      'x.socket failed (Result=unknown); it triggers x.service, which is not loaded',
    );
  });

  it('puts the triggered service in the alarm text only when it says more than inactive', () => {
    expect(triggeredSummary([{ name: 'b.service', activeState: 'inactive', subState: 'dead', result: 'success' }])).toBeUndefined();
    expect(triggeredSummary([{ name: 'b.service' }])).toBeUndefined();
    expect(triggeredSummary([{ name: 'w.service', activeState: 'failed', subState: 'failed', result: 'start-limit-hit' }])).toBe('w.service failed start-limit-hit');
    expect(triggeredSummary([{ name: 'w.service', activeState: 'active', subState: 'running' }])).toBe('w.service active');
    const table = new UnitTable();
    const w = table.upsert(unit('web.socket', 'failed', { result: 'service-start-limit-hit' }));
    w.triggered = 'web.service failed start-limit-hit';
    // No comma: the agent turns commas in label values into dots.
    expect(failedLabel([w])).toBe('web.socket (service-start-limit-hit / web.service failed start-limit-hit)');
  });

  it('keeps the label under the agent’s 800-byte limit', () => {
    const table = new UnitTable();
    const units = Array.from({ length: 10 }, (_, i) => table.upsert(unit(`${'x'.repeat(100)}${i}.service`, 'failed', { result: 'exit-code' })));
    const label = failedLabel(units);
    expect(label.length).toBeLessThan(800);
    expect(label).toMatch(/; and \d+ more$/);
  });

  it('lets the sample wait for a failed socket’s reason, so the first label with it failed carries it, and never longer than asked', async () => {
    vi.useFakeTimers();
    const table = new UnitTable();
    let answerTriggers: (names: string[]) => void = () => {};
    const manager = {
      // Triggers waits for the test; the triggered service's ExecMainCode/ExecMainStatus answer at once.
      getProperty: (_path: string, _iface: string, property: string) =>
        property === 'Triggers' ? new Promise((r) => (answerTriggers = r)) : Promise.resolve(property === 'ExecMainCode' ? 1 : 203),
      listUnit: async (name: string) => ({ unit: { name, path: '/x', loadState: 'loaded', activeState: 'failed', subState: 'failed' } }),
      result: async () => 'exit-code',
    } as unknown as SystemdManager;
    const reporter = new FailureReporter(table, () => true, { systemd: manager }, () => {});
    table.applySnapshot([unit('web.socket')]);
    expect(reporter.settled(300)).toBeUndefined(); // nothing failed: samples do not wait
    const web = table.get('web.socket')!;
    table.update(web, { activeState: 'failed', result: 'service-start-limit-hit' });
    let waited = false;
    void reporter.settled(300)!.then(() => (waited = true));
    await vi.advanceTimersByTimeAsync(50);
    expect(waited).toBe(false);
    answerTriggers(['web.service']);
    await vi.advanceTimersByTimeAsync(0);
    expect(waited).toBe(true);
    expect(failedLabel([web])).toBe('web.socket (service-start-limit-hit / web.service failed exit-code status 203/EXEC)');
    expect(reporter.settled(300)).toBeUndefined();
    // A bus that does not answer holds the sample back by the cap, no more.
    table.update(web, { activeState: 'active' });
    table.update(web, { activeState: 'failed' });
    let capped = false;
    void reporter.settled(300)!.then(() => (capped = true));
    await vi.advanceTimersByTimeAsync(299);
    expect(capped).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(capped).toBe(true);
    reporter.stop();
    vi.useRealTimers();
  });

  it('reports each entry into failed once, only for units a job wants', () => {
    vi.useFakeTimers();
    const lines: string[] = [];
    const table = new UnitTable();
    const reporter = new FailureReporter(table, (u) => !u.name.startsWith('skip'), { systemd: undefined }, (l) => lines.push(l));
    table.applySnapshot([unit('a.service', 'failed', { result: 'exit-code' }), unit('b.service'), unit('skip.service')]);
    vi.advanceTimersByTime(100);
    expect(lines).toEqual(['a.service failed (Result=exit-code)']);
    const a = table.get('a.service')!;
    table.noteFailure(a); // the same failed period, noted again (a lookup that saw it too)
    table.update(a, { activeState: 'failed' }); // no change
    vi.advanceTimersByTime(100);
    expect(lines).toHaveLength(1);
    table.update(a, { result: 'success' });
    table.update(a, { activeState: 'activating' });
    // As systemd does: the type's Result just before ActiveState, then, as the unit restarts
    // (Restart= after 100 ms, or a start), Result back to success before the line is written.
    table.update(a, { result: 'timeout' });
    table.update(a, { activeState: 'failed' });
    table.update(a, { result: 'success' });
    table.update(a, { activeState: 'activating' });
    table.update(table.get('skip.service')!, { activeState: 'failed' });
    vi.advanceTimersByTime(100);
    expect(lines).toEqual(['a.service failed (Result=exit-code)', 'a.service failed (Result=timeout)']);
    // A Result that comes only after the failure (none before it) is still that failure's.
    table.update(a, { activeState: 'deactivating' });
    const b = table.get('b.service')!;
    table.update(b, { activeState: 'failed' });
    table.update(b, { result: 'signal' });
    vi.advanceTimersByTime(100);
    expect(lines.at(-1)).toBe('b.service failed (Result=signal)');
    reporter.stop();
    vi.useRealTimers();
  });

  it('writes at most 10 failure lines at once in a storm, and says how many more failed when the minute is over', async () => {
    vi.useFakeTimers();
    const lines: string[] = [];
    const table = new UnitTable();
    const reporter = new FailureReporter(table, () => true, { systemd: undefined }, (l) => lines.push(l));
    table.applySnapshot(Array.from({ length: 25 }, (_, i) => unit(`s${String(i).padStart(2, '0')}.socket`, 'failed', { result: 'resources' })));
    await vi.advanceTimersByTimeAsync(10); // sockets: the (here empty) Triggers reads settle
    expect(lines).toHaveLength(10);
    expect(lines[0]).toBe('s00.socket failed (Result=resources)');
    await vi.advanceTimersByTimeAsync(60_000);
    expect(lines.at(-1)).toMatch(/^15 more unit failures not listed \(at most 10 lines per 60 s\)/);
    reporter.stop();
  });

  it('rate-limits a storm to 10 lines a minute plus one line that counts the rest', () => {
    vi.useFakeTimers();
    let now = 0;
    const lines: string[] = [];
    const log = new RateLimitedLog((l) => lines.push(l), 10, 60_000, () => now);
    for (let i = 0; i < 500; i++) log.say(`u${i} failed`);
    expect(lines).toHaveLength(10);
    now = 60_000;
    vi.advanceTimersByTime(60_000);
    expect(lines).toHaveLength(11);
    expect(lines[10]).toBe('490 more unit failures not listed (at most 10 lines per 60 s); systemctl --failed lists the failed units');
    log.say('u500 failed'); // a new window
    expect(lines.at(-1)).toBe('u500 failed');
    log.stop();
  });
});
