import { PassThrough } from 'node:stream';
import { beforeEach, describe, expect, it } from 'vitest';
import { defaultJob, type JobConfig } from '../../plugin/config/index.js';
import { IdAllocator } from '../../plugin/netdata/ids.js';
import { Glob } from '../../plugin/units/glob.js';
import { Job } from '../../plugin/writers/job.js';
import { failedLabel, unitDimensionIdOf } from '../../plugin/writers/unit-state.js';
import { ProtocolWriter } from '../../plugin/netdata/protocol.js';
import { tokenize } from '../../plugin/netdata/requests.js';
import { UnitTable, type UnitSnapshot } from '../../plugin/units/table.js';

const SOCKETS = 'systemdunits_service_units.socket_unit_state';

function unit(name: string, activeState = 'active', extra: Partial<UnitSnapshot> = {}): UnitSnapshot {
  return { name, loadState: 'loaded', activeState, subState: 'x', transient: false, ...extra };
}

/** A job over an in-memory table, with its output parsed into the agent's words. */
class Harness {
  readonly table = new UnitTable();
  private readonly out = new PassThrough();
  private text = '';
  readonly job: Job;
  private now = 0;

  constructor(config: JobConfig = defaultJob(1)) {
    this.out.on('data', (c: Buffer) => (this.text += c.toString()));
    const writer = new ProtocolWriter(this.out);
    this.job = new Job(config, this.table, writer);
    this.writer = writer;
  }
  private readonly writer: ProtocolWriter;

  /** An interval not sampled. */
  skip(): void {
    this.now += 1_000_000;
  }

  /** One sample; returns the lines of the unit state charts as word arrays. */
  sample(): string[][] {
    return stateChartLines(this.sampleAll());
  }

  /** One sample; returns every line (the summary charts' too). */
  sampleAll(): string[][] {
    this.text = '';
    this.now += 1_000_000;
    this.job.sample(this.now);
    this.writer.flush();
    this.out.read();
    return this.text.split('\n').filter((l) => l !== '').map(tokenize);
  }
}

/** The lines that belong to `*_unit_state` charts (a CHART or BEGIN line opens a chart's scope). */
function stateChartLines(lines: string[][]): string[][] {
  let inState = false;
  return lines.filter((w) => {
    if (w[0] === 'CHART' || w[0] === 'BEGIN') inState = w[1]!.endsWith('_unit_state');
    return inState;
  });
}

/** The SET values written for one chart in a sample. */
function values(lines: string[][], chart = SOCKETS): Record<string, number> {
  const out: Record<string, number> = {};
  let inChart = false;
  for (const w of lines) {
    if (w[0] === 'BEGIN') inChart = w[1] === chart;
    else if (w[0] === 'END') inChart = false;
    else if (inChart && w[0] === 'SET') out[w[1]!] = Number(w[2]);
  }
  return out;
}

function variable(lines: string[][], chart = SOCKETS): number | undefined {
  let inChart = false;
  let v: number | undefined;
  for (const w of lines) {
    if (w[0] === 'BEGIN') inChart = w[1] === chart;
    else if (inChart && w[0] === 'VARIABLE') v = Number(w[3]);
  }
  return v;
}

function dimensions(lines: string[][]): string[][] {
  return lines.filter((w) => w[0] === 'DIMENSION');
}

describe('job', () => {
  let h: Harness;
  beforeEach(() => {
    h = new Harness();
  });

  it('writes nothing until the table holds a snapshot', () => {
    expect(h.sample()).toEqual([]);
  });

  it('defines one chart per unit type, then samples each unit as 1..5', () => {
    h.table.applySnapshot([
      unit('a.socket'),
      unit('b.socket', 'inactive'),
      unit('c.socket', 'activating'),
      unit('d.socket', 'deactivating'),
      unit('e.socket', 'failed', { result: 'exit-code' }),
      unit('ssh.service'),
      unit('foo.slice'),
    ]);
    const first = h.sample();
    const charts = first.filter((w) => w[0] === 'CHART');
    expect(charts.map((w) => w[1]).sort()).toEqual(['systemdunits_service_units.service_unit_state', SOCKETS]);
    const socketChart = charts.find((w) => w[1] === SOCKETS)!;
    expect(socketChart.slice(3, 8)).toEqual([
      'Socket Unit State (1: active, 2: inactive, 3: activating, 4: deactivating, 5: failed)',
      'state',
      'socket',
      'systemd.socket_unit_state',
      'line',
    ]);
    expect(values(first)).toEqual({ 'a.socket': 1, 'b.socket': 2, 'c.socket': 3, 'd.socket': 4, 'e.socket': 5 });
    expect(variable(first)).toBe(1);
    expect(first).toContainEqual(['CLABEL', 'failed_units', 'e.socket (exit-code)', '1']);
    // BEGIN carries no elapsed time the first time, then the real interval.
    expect(first.find((w) => w[0] === 'BEGIN' && w[1] === SOCKETS)).toEqual(['BEGIN', SOCKETS]);
    const second = h.sample();
    expect(second.find((w) => w[0] === 'BEGIN' && w[1] === SOCKETS)).toEqual(['BEGIN', SOCKETS, '1000000']);
    expect(second.filter((w) => w[0] === 'CHART' || w[0] === 'DIMENSION')).toEqual([]);
  });

  it('reports a unit that failed and recovered between two samples as failed for that interval only', () => {
    h.table.applySnapshot([unit('a.socket')]);
    h.sample();
    const a = h.table.get('a.socket')!;
    for (const s of ['deactivating', 'failed', 'inactive', 'activating', 'active']) h.table.update(a, { activeState: s });
    const during = h.sample();
    expect(values(during)).toEqual({ 'a.socket': 5 });
    expect(variable(during)).toBe(1);
    const after = h.sample();
    expect(values(after)).toEqual({ 'a.socket': 1 });
    expect(variable(after)).toBe(0);
    expect(after).toContainEqual(['CLABEL', 'failed_units', 'none', '1']);
  });

  it('labels the alarm text: what failed and what to do, then what recovered, without telling to restart it', () => {
    const label = (lines: string[][], name: string) => lines.find((w) => w[0] === 'CLABEL' && w[1] === name)?.[2];
    h.table.applySnapshot([unit('my\\x2dapp.socket'), unit('b.socket')]);
    const first = h.sample();
    expect(label(first, 'failure_summary')).toBe('none failed');
    expect(label(first, 'failure_advice')).toBe('nothing to do');
    const a = h.table.get('my\\x2dapp.socket')!;
    h.table.update(a, { result: 'exit-code' });
    h.table.update(a, { activeState: 'failed' });
    const failing = h.sample();
    expect(label(failing, 'failure_summary')).toBe('failed: my/x2dapp.socket (exit-code)');
    expect(label(failing, 'failure_advice')).toMatch(/systemctl restart it$/);
    // A second unit fails while the first still is, then the first recovers: still failing.
    h.table.update(h.table.get('b.socket')!, { activeState: 'failed', result: 'resources' });
    h.sample();
    h.table.update(a, { result: 'success' });
    h.table.update(a, { activeState: 'active' });
    expect(label(h.sample(), 'failure_summary')).toBe('failed: b.socket (resources)');
    // None failed: the labels name every unit of the episode as recovered (what CLEAR then says).
    h.table.update(h.table.get('b.socket')!, { activeState: 'active' });
    const clear = h.sample();
    expect(variable(clear)).toBe(0);
    expect(label(clear, 'failure_summary')).toBe('recovered: my/x2dapp.socket; b.socket');
    expect(label(clear, 'failure_advice')).toBe('no unit of this chart is failed now');
    expect(clear.filter((w) => w[0] === 'CLABEL').map((w) => w[2]).join(' ')).not.toMatch(/restart/);
    // Unchanged labels are not sent again; the next failure starts a new episode.
    expect(label(h.sample(), 'failure_summary')).toBeUndefined();
    h.table.update(h.table.get('b.socket')!, { activeState: 'failed' });
    h.sample();
    h.table.update(h.table.get('b.socket')!, { activeState: 'active' });
    expect(label(h.sample(), 'failure_summary')).toBe('recovered: b.socket');
  });

  it('names a failure’s reasons when they come samples after it, with no state change in between', () => {
    const label = (lines: string[][]) => lines.find((w) => w[0] === 'CLABEL' && w[1] === 'failed_units')?.[2];
    h.table.applySnapshot([unit('a.socket'), unit('b.socket')]);
    h.sample();
    const a = h.table.get('a.socket')!;
    h.table.update(a, { activeState: 'failed' }); // its Result not signalled (yet)
    expect(label(h.sample())).toBe('a.socket');
    h.sample();
    h.sample();
    // Samples with nothing new in the table, then the Result comes late, and the failure reporter's words.
    h.table.update(a, { result: 'exit-code' });
    expect(label(h.sample())).toBe('a.socket (exit-code)');
    h.sample();
    a.triggered = 'a.service failed start-limit-hit';
    expect(label(h.sample())).toBe('a.socket (exit-code / a.service failed start-limit-hit)');
    expect(label(h.sample())).toBeUndefined(); // unchanged: not sent again
  });

  it('keeps reporting a unit failed while it stays failed', () => {
    h.table.applySnapshot([unit('a.socket')]);
    h.sample();
    h.table.update(h.table.get('a.socket')!, { activeState: 'failed', result: 'resources' });
    expect(values(h.sample())).toEqual({ 'a.socket': 5 });
    expect(values(h.sample())).toEqual({ 'a.socket': 5 });
  });

  it('adds dimensions for new units and retires those of removed units, then the empty chart', () => {
    h.table.applySnapshot([unit('a.socket'), unit('b.socket')]);
    h.sample();
    h.table.upsert(unit('c.socket'));
    const added = h.sample();
    expect(added.filter((w) => w[0] === 'CHART').map((w) => w[1])).toEqual([SOCKETS]);
    expect(dimensions(added).map((w) => w[1])).toEqual(['a.socket', 'b.socket', 'c.socket']);
    expect(values(added)).toEqual({ 'a.socket': 1, 'b.socket': 1, 'c.socket': 1 });
    h.table.remove('b.socket');
    const removed = h.sample();
    expect(dimensions(removed)).toContainEqual(['DIMENSION', 'b.socket', 'b.socket', 'absolute', '1', '1', 'obsolete']);
    expect(values(removed)).toEqual({ 'a.socket': 1, 'c.socket': 1 });
    h.table.applySnapshot([]);
    const emptied = h.sample();
    const chartLines = emptied.filter((w) => w[0] === 'CHART');
    expect(chartLines.at(-1)![10]).toBe('obsolete');
    expect(emptied.filter((w) => w[0] === 'BEGIN')).toEqual([]);
    expect(h.sample()).toEqual([]);
    // A unit coming back brings the chart back.
    h.table.upsert(unit('a.socket'));
    const back = h.sample();
    expect(back.filter((w) => w[0] === 'CHART').map((w) => w[10])).toEqual(['']);
    expect(back.find((w) => w[0] === 'BEGIN')).toEqual(['BEGIN', SOCKETS]);
  });

  it('never SETs a dimension it has not defined', () => {
    h.table.applySnapshot([unit('a.socket')]);
    const known = new Set<string>();
    const check = (lines: string[][]): void => {
      let chart = '';
      for (const w of lines) {
        if (w[0] === 'CHART') chart = w[1]!;
        if (w[0] === 'DIMENSION' && w[6] !== 'obsolete') known.add(`${chart}/${w[1]}`);
        if (w[0] === 'DIMENSION' && w[6] === 'obsolete') known.delete(`${chart}/${w[1]}`);
        if (w[0] === 'BEGIN') chart = w[1]!;
        if (w[0] === 'SET') expect(known.has(`${chart}/${w[1]}`)).toBe(true);
      }
    };
    for (let i = 0; i < 30; i++) {
      const n = `u${i % 7}.socket`;
      if (i % 3 === 0) h.table.remove(n);
      else h.table.upsert(unit(n, i % 5 === 0 ? 'failed' : 'active'));
      check(h.sample());
    }
  });

  it('gives escaped, odd and template names safe, unique, stable ids and readable names', () => {
    h.table.applySnapshot([unit('my\\x2dapp@1.socket'), unit('my-app@1.socket'), unit('odd name=x.socket')]);
    const dims = dimensions(h.sample());
    const ids = dims.map((w) => w[1]!);
    expect(new Set(ids).size).toBe(3);
    for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9_.@:+-]+$/);
    // Two units, two names: the escape stays visible where it reads as a plain character.
    expect(dims.map((w) => w[2])).toEqual(expect.arrayContaining(['my/x2dapp@1.socket', 'my-app@1.socket']));
    expect(dims.map((w) => w[2])).toContain('odd/[20]name/[3d]x.socket'); // a name systemd refuses, shown byte by byte
    // The same names give the same ids in a fresh process.
    const again = new Harness();
    again.table.applySnapshot([unit('my\\x2dapp@1.socket'), unit('my-app@1.socket'), unit('odd name=x.socket')]);
    expect(dimensions(again.sample()).map((w) => w[1])).toEqual(ids);
    const ids2 = new IdAllocator(unitDimensionIdOf);
    expect(ids2.idFor('a\\x20b.socket')).toBe('a+x20b.socket');
    expect(ids2.idFor('a_b.socket')).toBe('a_b.socket');
    // Names systemd would refuse may clean up alike: the later one is told apart by a hash.
    expect(ids2.idFor('a b.socket')).toMatch(/^a_b\.socket_[0-9a-f]{8}$/);
    expect(ids2.idFor('a\\x20b.socket')).toBe('a+x20b.socket');
  });

  it('selects by include and exclude globs and skips transient and not-found units', () => {
    const j = new Harness({ ...defaultJob(1), include: ['web*.socket', 'db?.service'], exclude: ['*-test.socket'], skipTransient: true });
    j.table.applySnapshot([
      unit('web1.socket'),
      unit('web-test.socket'),
      unit('api.socket'),
      unit('db1.service'),
      unit('db10.service'),
      unit('web2.socket', 'active', { transient: true }),
      unit('web3.socket', 'inactive', { loadState: 'not-found' }),
    ]);
    const lines = j.sample();
    expect(Object.keys(values(lines))).toEqual(['web1.socket']);
    expect(Object.keys(values(lines, 'systemdunits_service_units.service_unit_state'))).toEqual(['db1.service']);
    const withTransient = new Harness({ ...defaultJob(1), skipTransient: false, include: ['*.socket'] });
    withTransient.table.applySnapshot([unit('web2.socket', 'active', { transient: true })]);
    expect(values(withTransient.sample())).toEqual({ 'web2.socket': 1 });
  });

  it('after a gap (the sample loop skips it while out of step), carries on with the elapsed time of the gap', () => {
    h.table.applySnapshot([unit('a.socket')]);
    h.sample();
    h.skip();
    h.table.applySnapshot([unit('a.socket', 'failed')]);
    const back = h.sample();
    expect(values(back)).toEqual({ 'a.socket': 5 });
    expect(back.find((w) => w[0] === 'BEGIN')![2]).toBe('2000000');
  });
});

describe('helpers', () => {
  it('globs match like fnmatch', () => {
    expect(new Glob('*.socket').matches('a.socket')).toBe(true);
    expect(new Glob('*.socket').matches('a.socketx')).toBe(false);
    expect(new Glob('getty@tty[1-3].service').matches('getty@tty2.service')).toBe(true);
    expect(new Glob('getty@tty[!1-3].service').matches('getty@tty2.service')).toBe(false);
    // A backslash is literal, as in systemd's FNM_NOESCAPE matching of unit names.
    expect(new Glob('my\\x2dapp@*.socket').matches('my\\x2dapp@1.socket')).toBe(true);
    expect(new Glob('a[*]b').matches('a*b')).toBe(true);
    expect(new Glob('a[*]b').matches('axb')).toBe(false);
    expect(new Glob('(x).socket').matches('(x).socket')).toBe(true);
  });

  it('names at most ten failed units in the label', () => {
    const table = new UnitTable();
    const units = Array.from({ length: 12 }, (_, i) => table.upsert(unit(`u${i}.socket`, 'failed', { result: 'exit-code' })));
    const label = failedLabel(units);
    expect(label.startsWith('u0.socket (exit-code); u1.socket (exit-code)')).toBe(true);
    expect(label.endsWith('; and 2 more')).toBe(true);
    expect(failedLabel([])).toBe('none');
  });
});

describe('unit table', () => {
  it('keeps a failure when systemd unloads the unit and loads it again within the interval', () => {
    const h = new Harness();
    h.table.applySnapshot([unit('a.socket'), unit('b.socket')]);
    h.sample();
    h.table.update(h.table.get('a.socket')!, { activeState: 'failed' });
    h.table.remove('a.socket'); // reset-failed unloads an unreferenced unit
    h.table.upsert(unit('a.socket')); // start loads it again
    expect(values(h.sample())).toEqual({ 'a.socket': 5, 'b.socket': 1 });
    expect(values(h.sample())).toEqual({ 'a.socket': 1, 'b.socket': 1 });
  });
});

describe('label updates', () => {
  it('re-sends only the chart line and its labels when just the failed set changes', () => {
    const h = new Harness();
    h.table.applySnapshot([unit('a.socket'), unit('b.socket')]);
    h.sample();
    h.table.update(h.table.get('a.socket')!, { activeState: 'failed', result: 'timeout' });
    const lines = h.sample();
    expect(lines.filter((w) => w[0] === 'CHART').map((w) => w[1])).toEqual([SOCKETS]);
    expect(dimensions(lines)).toEqual([]);
    expect(lines).toContainEqual(['CLABEL', 'failed_units', 'a.socket (timeout)', '1']);
    // The label lines come before the BEGIN that reports the failure.
    const label = lines.findIndex((w) => w[0] === 'CLABEL_COMMIT');
    const begin = lines.findIndex((w) => w[0] === 'BEGIN' && w[1] === SOCKETS);
    expect(label).toBeLessThan(begin);
    expect(values(lines)).toEqual({ 'a.socket': 5, 'b.socket': 1 });
  });
});
