// Issue 13 items 1 and 4, the pure parts: NRestarts and ExecMain* decoded from systemd's signals,
// restarts counted in the unit model, the restarts chart (per interval, the most restarts of one
// service in the window, the services named with why they crashed), and exits as systemctl says them.
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { defaultJob, type JobConfig } from '../../plugin/config/index.js';
import { ProtocolWriter } from '../../plugin/netdata/protocol.js';
import { tokenize } from '../../plugin/netdata/requests.js';
import { decodeSignal } from '../../plugin/systemd/manager.js';
import { FailureReporter, failureLine } from '../../plugin/systemd/reasons.js';
import { crashText, exitText, signalName } from '../../plugin/units/exits.js';
import { UnitTable, type UnitSnapshot } from '../../plugin/units/table.js';
import { Job } from '../../plugin/writers/job.js';
import { MAX_TRACKED } from '../../plugin/writers/restarts.js';

const RESTARTS = 'systemdunits_service_units.service_unit_restarts';

function unit(name: string, activeState = 'active', extra: Partial<UnitSnapshot> = {}): UnitSnapshot {
  return { name, loadState: 'loaded', activeState, subState: 'running', transient: false, ...extra };
}

/** Writes samples of one job over an in-memory table; each sample's lines, tokenized. */
class Harness {
  readonly table = new UnitTable();
  private readonly out = new PassThrough();
  private readonly writer = new ProtocolWriter(this.out);
  private text = '';
  private now = 0;
  private readonly job: Job;

  constructor(config: Partial<JobConfig> = {}) {
    this.out.on('data', (c: Buffer) => (this.text += c.toString()));
    this.job = new Job({ ...defaultJob(1), ...config }, this.table, this.writer);
  }

  sample(): string[][] {
    this.text = '';
    this.now += 1_000_000;
    this.job.sample(this.now);
    this.writer.flush();
    this.out.read();
    return this.text.split('\n').filter((l) => l !== '').map(tokenize);
  }
}

function ofChart(lines: string[][], chart: string): string[][] {
  let inChart = false;
  return lines.filter((w) => {
    if (w[0] === 'CHART' || w[0] === 'BEGIN') inChart = w[1] === chart;
    return inChart;
  });
}
const value = (lines: string[][]) => Number(ofChart(lines, RESTARTS).find((w) => w[0] === 'SET')?.[2]);
const variable = (lines: string[][], name: string) => Number(ofChart(lines, RESTARTS).filter((w) => w[0] === 'VARIABLE' && w[2] === name).at(-1)?.[3]);
const label = (lines: string[][]) => ofChart(lines, RESTARTS).filter((w) => w[0] === 'CLABEL' && w[1] === 'restarting_units').at(-1)?.[2];

/** One crash and restart of a service, as systemd 252 signals it. */
function crash(t: UnitTable, name: string, nRestarts: number, exit = { result: 'exit-code', execCode: 1, execStatus: 1 }): void {
  const u = t.get(name)!;
  t.update(u, exit);
  t.update(u, { activeState: 'failed', subState: 'failed' });
  t.update(u, { activeState: 'activating', subState: 'auto-restart' });
  t.update(u, { nRestarts });
  t.update(u, { result: 'success', execCode: 0, execStatus: 0 });
  t.update(u, { activeState: 'active', subState: 'running' });
}

describe('exits as systemctl says them', () => {
  it('names exit statuses, signals and core dumps', () => {
    expect(crashText('exit-code', { code: 1, status: 203 })).toBe('exit-code, status=203/EXEC');
    expect(crashText('exit-code', { code: 1, status: 1 })).toBe('exit-code, status=1/FAILURE');
    expect(crashText('exit-code', { code: 1, status: 42 })).toBe('exit-code, status=42');
    expect(crashText('signal', { code: 2, status: 11 })).toBe('signal, SIGSEGV');
    expect(crashText('core-dump', { code: 3, status: 11 })).toBe('signal, SIGSEGV, core dumped');
    expect(crashText('timeout', { code: 2, status: 15 })).toBe('timeout, signal, SIGTERM');
    expect(crashText('start-limit-hit', undefined)).toBe('start-limit-hit');
    expect(crashText(undefined, undefined)).toBe('unknown');
    expect(crashText('exit-code', { code: 0, status: 0 })).toBe('exit-code');
    // in chart labels: no commas (the agent turns them into dots), no `=` (the protocol's quoting)
    expect(crashText('exit-code', { code: 1, status: 203 }, ' ')).toBe('exit-code status 203/EXEC');
    expect(crashText('core-dump', { code: 3, status: 6 }, ' ')).toBe('signal SIGABRT core dumped');
    expect(exitText({ code: 2, status: 9 })).toBe('SIGKILL');
    expect(signalName(40)).toBe('SIGRTMIN+6');
    expect(signalName(99)).toBe('signal 99');
  });

  it('puts the exit in the failure line after the Result', () => {
    expect(failureLine({ name: 'x.service', failedResult: 'exit-code', failedExit: { code: 1, status: 203 } })).toBe('x.service failed (Result=exit-code, status=203/EXEC)');
    expect(failureLine({ name: 'x.service', failedResult: 'core-dump', failedExit: { code: 3, status: 11 } })).toBe('x.service failed (Result=core-dump, SIGSEGV, core dumped)');
  });
});

describe('NRestarts and the main exit from signals', () => {
  const signal = (changed: Record<string, unknown>, iface = 'org.freedesktop.systemd1.Service') => ({
    type: 4,
    interface: 'org.freedesktop.DBus.Properties',
    member: 'PropertiesChanged',
    path: '/org/freedesktop/systemd1/unit/a_2eservice',
    sender: ':1.1',
    seq: 1,
    body: [iface, Object.fromEntries(Object.entries(changed).map(([k, v]) => [k, { value: v }])), []],
  });

  it('takes them from the Service interface, each only when well-formed', () => {
    expect(decodeSignal(signal({ NRestarts: 3, ExecMainCode: 1, ExecMainStatus: 203, Result: 'exit-code' }) as never)).toMatchObject({
      kind: 'state',
      result: 'exit-code',
      nRestarts: 3,
      execCode: 1,
      execStatus: 203,
    });
    const hostile = decodeSignal(signal({ NRestarts: -1, ExecMainCode: 1.5, ExecMainStatus: 'x', Result: 'exit-code' }) as never);
    expect(hostile).toEqual({ kind: 'state', seq: 1, path: '/org/freedesktop/systemd1/unit/a_2eservice', result: 'exit-code' });
    expect(decodeSignal(signal({ NRestarts: 2 ** 40 }) as never)).toBeUndefined();
    expect(decodeSignal(signal({ ExecMainCode: 1, ExecMainStatus: 300 }) as never)).toBeUndefined();
    // NRestarts on another interface means nothing
    expect(decodeSignal(signal({ NRestarts: 3 }, 'org.freedesktop.systemd1.Socket') as never)).toBeUndefined();
  });
});

describe('restarts in the unit model', () => {
  it('counts increments of NRestarts: the first value is a base, a lower one a reset', () => {
    const t = new UnitTable();
    const u = t.upsert(unit('a.service'));
    t.update(u, { nRestarts: 5 });
    expect(u.restarts).toBe(0);
    t.update(u, { nRestarts: 6 });
    t.update(u, { nRestarts: 6 }); // systemd sends every property each time
    expect(u.restarts).toBe(1);
    t.update(u, { nRestarts: 9 }); // signals merged by systemd: still three restarts
    expect(u.restarts).toBe(4);
    t.update(u, { nRestarts: 0 }); // `systemctl restart` resets it
    t.update(u, { nRestarts: 1 });
    expect(u.restarts).toBe(5);
  });

  it('counts a restart as systemd schedules it (auto-restart), and its NRestarts increment not again', () => {
    const t = new UnitTable();
    const u = t.upsert(unit('a.service'));
    t.update(u, { nRestarts: 0 });
    t.update(u, { result: 'exit-code', execCode: 1, execStatus: 1 });
    t.update(u, { activeState: 'activating', subState: 'auto-restart' });
    t.update(u, { activeState: 'activating', subState: 'auto-restart' }); // sent twice by systemd
    expect(u.restarts).toBe(1); // RestartSec before the restart
    t.update(u, { nRestarts: 1 }); // the restart itself
    expect(u.restarts).toBe(1);
    t.update(u, { nRestarts: 3 }); // two whose auto-restart no signal showed (merged by systemd)
    expect(u.restarts).toBe(3);
    // One scheduled, then stopped by hand before the restart; a later manual start resets NRestarts.
    t.update(u, { activeState: 'failed', subState: 'failed' });
    t.update(u, { activeState: 'activating', subState: 'auto-restart' });
    t.update(u, { activeState: 'inactive', subState: 'dead' });
    t.update(u, { nRestarts: 0 });
    t.update(u, { nRestarts: 1 });
    expect(u.restarts).toBe(5);
    // Only services restart: a socket's sub-states say nothing of it.
    const s = t.upsert(unit('a.socket'));
    t.update(s, { subState: 'auto-restart' });
    expect(s.restarts).toBe(0);
  });

  it("keeps the last crash's Result and exit, and the failed run's exit", () => {
    const t = new UnitTable();
    t.upsert(unit('a.service'));
    crash(t, 'a.service', 1, { result: 'signal', execCode: 2, execStatus: 11 });
    const u = t.get('a.service')!;
    expect(u.lastCrash).toEqual({ result: 'signal', exit: { code: 2, status: 11 } });
    expect(u.failedExit).toEqual({ code: 2, status: 11 });
    expect(u.exit).toEqual({ code: 0, status: 0 });
  });
});

describe('the restarts chart', () => {
  it('counts restarts per interval, between samples too, and names the looping service with why', () => {
    const h = new Harness({ restartLoopThreshold: 3, restartLoopWindow: 5 });
    h.table.applySnapshot([unit('loop.service'), unit('calm.service'), unit('web.socket')]);
    let s = h.sample();
    expect(value(s)).toBe(0);
    expect(label(s)).toBe('none');
    expect(variable(s, 'restart_loop_threshold')).toBe(3);
    expect(variable(s, 'max_unit_restarts')).toBe(0);
    expect(s.some((w) => w[1]?.includes('socket_unit_restarts'))).toBe(false); // services only

    h.table.update(h.table.get('loop.service')!, { nRestarts: 0 });
    h.table.update(h.table.get('calm.service')!, { nRestarts: 0 });
    for (let n = 1; n <= 3; n++) crash(h.table, 'loop.service', n);
    s = h.sample();
    expect(value(s)).toBe(3);
    expect(variable(s, 'max_unit_restarts')).toBe(3);
    expect(label(s)).toBe('loop.service 3 restarts (exit-code status 1/FAILURE)');

    crash(h.table, 'loop.service', 4);
    crash(h.table, 'calm.service', 1, { result: 'core-dump', execCode: 3, execStatus: 11 });
    s = h.sample();
    expect(value(s)).toBe(2);
    expect(variable(s, 'max_unit_restarts')).toBe(4);
    expect(label(s)).toBe('loop.service 4 restarts (exit-code status 1/FAILURE); calm.service 1 restart (signal SIGSEGV core dumped)');

    // Stable: the window (5 samples of 1 s) forgets them.
    for (let i = 0; i < 3; i++) expect(value((s = h.sample()))).toBe(0);
    expect(variable(s, 'max_unit_restarts')).toBe(4);
    s = h.sample();
    expect(variable(s, 'max_unit_restarts')).toBe(1); // the 3 of the first interval left the window
    s = h.sample();
    expect(variable(s, 'max_unit_restarts')).toBe(0);
    expect(label(s)).toBe('none');
  });

  it('names the latest crash of a service in the window, also one that brought no restart', () => {
    const h = new Harness({ restartLoopWindow: 60 });
    h.table.applySnapshot([unit('loop.service')]);
    h.sample();
    const u = h.table.get('loop.service')!;
    h.table.update(u, { nRestarts: 0 });
    crash(h.table, 'loop.service', 1);
    expect(label(h.sample())).toBe('loop.service 1 restart (exit-code status 1/FAILURE)');
    expect(label(h.sample())).toBeUndefined(); // unchanged: not sent again
    // systemd gives up (the start limit): a new Result, no restart.
    h.table.update(u, { result: 'start-limit-hit' });
    h.table.update(u, { activeState: 'failed', subState: 'failed' });
    expect(label(h.sample())).toBe('loop.service 1 restart (start-limit-hit)');
    expect(label(h.sample())).toBeUndefined();
    h.table.update(u, { result: 'exit-code', execCode: 1, execStatus: 203 }); // a Result alone
    expect(label(h.sample())).toBe('loop.service 1 restart (exit-code status 203/EXEC)');
  });

  it('counts the restarts of a service that came into the table since the previous sample', () => {
    const h = new Harness();
    h.table.applySnapshot([unit('a.service')]);
    h.sample();
    h.table.upsert(unit('new.service', 'activating')); // `systemctl start` of a unit not loaded before
    h.table.update(h.table.get('new.service')!, { nRestarts: 0 });
    crash(h.table, 'new.service', 1);
    crash(h.table, 'new.service', 2);
    expect(value(h.sample())).toBe(2);
  });

  it('remembers at most MAX_TRACKED services, and counts every restart all the same', () => {
    const h = new Harness();
    const n = MAX_TRACKED + 50;
    h.table.applySnapshot(Array.from({ length: n }, (_, i) => unit(`s${i}.service`)));
    h.sample();
    for (let i = 0; i < n; i++) {
      h.table.update(h.table.get(`s${i}.service`)!, { nRestarts: 0 });
      h.table.update(h.table.get(`s${i}.service`)!, { nRestarts: 1 });
    }
    const s = h.sample();
    expect(value(s)).toBe(n);
    expect(label(s)).toMatch(/; and 995 more$/);
  });
});

describe('failure lines of a crash loop', () => {
  afterEach(() => vi.useRealTimers());

  it('are one a minute per looping service, the rest counted in one line: other failures keep their lines', () => {
    vi.useFakeTimers();
    const lines: string[] = [];
    const t = new UnitTable();
    const reporter = new FailureReporter(t, () => true, { systemd: undefined }, (l) => lines.push(l));
    t.applySnapshot([unit('loop.service'), unit('other.service')]);
    t.update(t.get('loop.service')!, { nRestarts: 0 });
    for (let n = 1; n <= 30; n++) crash(t, 'loop.service', n);
    t.update(t.get('other.service')!, { result: 'exit-code', execCode: 1, execStatus: 203 });
    t.update(t.get('other.service')!, { activeState: 'failed' });
    // the first failure (before any restart), the first once it loops, and the other unit's
    expect(lines).toEqual([
      'loop.service failed (Result=exit-code, status=1/FAILURE)',
      'loop.service failed (Result=exit-code, status=1/FAILURE)',
      'other.service failed (Result=exit-code, status=203/EXEC)',
    ]);
    vi.advanceTimersByTime(60_000);
    expect(lines.slice(3)).toEqual(['loop.service failed 28 more times within 60 s, each time restarted by systemd (Restart=); see the alarm systemd_service_unit_restart_loop']);
    crash(t, 'loop.service', 31); // a new window: a line again
    expect(lines.at(-1)).toBe('loop.service failed (Result=exit-code, status=1/FAILURE)');
    reporter.stop();
  });
});
