// The whole protocol output of the chart writers on a fixed unit model and a fake clock, compared
// byte for byte with a recording (fixtures/writers.golden.txt) made before the chart writers were
// rebuilt on one chart lifecycle: any change in what the agent receives fails here. The writers
// must also leave the unit model as they found it: they only read it.
// Re-record only on purpose: UPDATE_GOLDEN=1 npx vitest run test/unit/writers-golden.test.ts
import { readFileSync, writeFileSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { ChartDef } from '../../charts/shape.js';
import { SOCKET_ACTIVITY, SOCKET_ACTIVITY_CHARTS } from '../../charts/socket-activity.js';
import { UNIT_STATE_CHART } from '../../charts/unit-state.js';
import { UNIT_COUNTS_CHART, UNIT_LOAD_STATES_CHART, UNIT_RESTARTS_CHART, UNIT_TRANSITIONS_CHART } from '../../charts/unit-summary.js';
import { defaultJob, type JobConfig } from '../../plugin/config/index.js';
import { ProtocolWriter } from '../../plugin/netdata/protocol.js';
import { tokenize } from '../../plugin/netdata/requests.js';
import { BusCallError } from '../../plugin/systemd/bus.js';
import type { SystemdManager } from '../../plugin/systemd/manager.js';
import { SocketAcceptIndex } from '../../plugin/systemd/socket-counters.js';
import { SocketPoller } from '../../plugin/systemd/socket-poller.js';
import { UnitTable, type UnitSnapshot } from '../../plugin/units/table.js';
import { Job } from '../../plugin/writers/job.js';
import { SocketActivityCharts } from '../../plugin/writers/socket-activity.js';

const GOLDEN = new URL('./fixtures/writers.golden.txt', import.meta.url);

function unit(name: string, activeState = 'active', extra: Partial<UnitSnapshot> = {}): UnitSnapshot {
  return { name, loadState: 'loaded', activeState, subState: 'x', transient: false, ...extra };
}

/** systemd's socket properties as the fake answers them: Accept per socket, counters that move. */
class FakeSockets {
  readonly accept = new Map<string, boolean>();
  readonly counters = new Map<string, { NAccepted: number; NConnections: number; NRefused: number | undefined }>();

  manager(): SystemdManager {
    const decode = (path: string) => path.replace('/org/freedesktop/systemd1/unit/', '').replace(/_([0-9a-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
    return {
      getProperty: async (path: string, _iface: string, property: string) => {
        const name = decode(path);
        if (property === 'Accept') return this.accept.get(name) === true;
        if (property === 'MaxConnections') return 64; // systemd's default
        if (property === 'MaxConnectionsPerSource') return 0;
        const c = this.counters.get(name);
        if (!c) throw new Error(`no such unit ${name}`);
        const v = c[property as 'NAccepted'];
        if (v === undefined) throw new BusCallError('unknown property', 'org.freedesktop.DBus.Error.UnknownProperty');
        return v;
      },
    } as unknown as SystemdManager;
  }
}

/**
 * The writers under test, wired as the plugin wires them. This is the only part that knows the
 * writers' API: it changes with the code, the recording does not.
 */
class Plugin {
  readonly table = new UnitTable();
  readonly sockets = new FakeSockets();
  private readonly out = new PassThrough();
  private readonly writer = new ProtocolWriter(this.out);
  private readonly jobs: Job[];
  private readonly activity: { charts: SocketActivityCharts; poller: SocketPoller }[];
  private readonly accept: SocketAcceptIndex;
  private readonly link = { inStep: false, generation: 0, systemd: undefined as SystemdManager | undefined };
  text = '';

  constructor(configs: JobConfig[]) {
    this.out.on('data', (c: Buffer) => (this.text += c.toString()));
    this.accept = new SocketAcceptIndex(this.table, this.link);
    this.jobs = configs.map((c) => new Job(c, this.table, this.writer));
    this.activity = configs.filter((c) => c.socketActivity).map((c) => ({ charts: new SocketActivityCharts(c, this.table, this.writer), poller: new SocketPoller(this.link, this.table, c.name, { maxSockets: c.socketActivityMaxSockets }) }));
  }

  set inStep(v: boolean) {
    this.link.inStep = v;
    this.link.systemd = v ? this.sockets.manager() : undefined;
  }

  /** Runs chart writers, checking they leave the unit model as it was (they only read it). */
  private readOnly<T>(write: () => T): T {
    const model = () => JSON.stringify([...this.table.units()]) + JSON.stringify([this.table.sequence, this.table.states, this.table.membership]);
    const before = model();
    const out = write();
    expect(model()).toBe(before);
    return out;
  }

  sample(nowUs: number): void {
    // As the sample loop does: nothing sampled while out of step.
    if (this.link.inStep) this.readOnly(() => this.jobs.forEach((j) => j.sample(nowUs)));
    this.writer.flush();
  }

  async activityTick(nowUs: number): Promise<void> {
    await this.accept.refresh();
    if (!this.link.systemd) return;
    for (const { charts, poller } of this.activity) {
      const sockets = this.readOnly(() => charts.select());
      this.writer.flush();
      if (sockets.length === 0) continue;
      await poller.poll(sockets, nowUs, 5000);
      if (this.link.inStep) this.readOnly(() => charts.sample(nowUs));
    }
    this.writer.flush();
  }
}

/** `mainPrefix`: the context_prefix of the job `main` (the recording has the default). */
async function scenario(mainPrefix?: string): Promise<string> {
  const main: JobConfig = { ...defaultJob(1), name: 'main', include: ['*'], exclude: ['skip*'], aggregateInstances: true, socketActivity: true, socketActivityEvery: 5 };
  if (mainPrefix) Object.assign(main, { contextPrefix: mainPrefix });
  const second: JobConfig = { ...defaultJob(2), name: 'second', include: ['*.service', '*.timer'], skipTransient: true, flappingThreshold: 3 };
  const p = new Plugin([main, second]);
  const t = p.table;
  let now = 1_000_000;
  const step = async (title: string, change: () => void, activity = false): Promise<void> => {
    change();
    p.text += `## ${title}\n`;
    now += 1_000_000;
    p.sample(now);
    if (activity) await p.activityTick(now + 500);
  };
  p.sockets.accept.set('web.socket', true);
  p.sockets.accept.set('ssh.socket', true);
  p.sockets.accept.set('plain.socket', false);
  p.sockets.counters.set('web.socket', { NAccepted: 10, NConnections: 1, NRefused: 0 });
  p.sockets.counters.set('ssh.socket', { NAccepted: 3, NConnections: 0, NRefused: undefined });

  // (Recorded when a listing put the table itself in step: the title is older than that.)
  await step('out of step: nothing', () => {
    t.applySnapshot([unit('a.service')]);
    p.inStep = true;
  });
  p.inStep = false;
  await step('still out of step', () => {});
  p.inStep = true;
  await step('first listing', () =>
    t.applySnapshot([
      unit('a.service'),
      unit('b.service', 'inactive'),
      unit('c.service', 'failed', { result: 'exit-code' }),
      unit('web.socket', 'active'),
      unit('ssh.socket', 'active'),
      unit('plain.socket', 'active'),
      unit('web@1-127.0.0.1:80-127.0.0.1:5000.service', 'active'),
      unit('x.timer', 'active'),
      unit('run-1.service', 'active', { transient: true }),
      unit('skipme.service', 'failed'),
      unit('ghost.service', 'inactive', { loadState: 'not-found' }),
      unit('weird\\x2dname.service', 'activating'),
      unit('-.mount', 'active'),
    ]), true);
  await step('steady', () => {}, true);
  await step('web.socket fails with a triggered service; counters move', () => {
    p.sockets.counters.set('web.socket', { NAccepted: 25, NConnections: 3, NRefused: 2 });
    t.noteSocketActivity('web.socket'); // as the sync does on the signals that come with that
    const web = t.get('web.socket')!;
    t.update(web, { result: 'resources' });
    t.update(web, { activeState: 'failed' });
    web.triggered = 'web@0.service failed exit-code';
  }, true);
  await step('web.socket back; b.service flaps', () => {
    t.update(t.get('web.socket')!, { activeState: 'active', result: 'success' });
    const b = t.get('b.service')!;
    for (const s of ['activating', 'active', 'deactivating', 'inactive', 'activating', 'active']) t.update(b, { activeState: s });
  }, true);
  await step('a.service goes, d.service comes, instance gone', () => {
    t.remove('a.service');
    t.remove('web@1-127.0.0.1:80-127.0.0.1:5000.service');
    t.upsert(unit('d.service', 'deactivating'));
  });
  await step('a.service back (its old id)', () => t.upsert(unit('a.service', 'inactive')));
  await step('timers all gone: chart obsolete; ssh.socket gone', () => {
    t.remove('x.timer');
    t.remove('ssh.socket');
  }, true);
  await step('a.service fails and recovers within one interval', () => {
    const a = t.get('a.service')!;
    t.update(a, { activeState: 'failed', result: 'exit-code' });
    t.update(a, { activeState: 'active', result: 'success' });
  }, true);
  p.inStep = false;
  await step('systemd out of reach', () => {}, true);
  p.inStep = true;
  await step('back in step, timer back', () => t.upsert(unit('x.timer', 'inactive')), true);
  await step('many failed units', () => {
    for (let i = 0; i < 14; i++) t.upsert(unit(`f${String(i).padStart(2, '0')}.service`, 'failed', { result: 'signal' }));
  });
  await step('they recover', () => {
    for (let i = 0; i < 14; i++) t.update(t.get(`f${String(i).padStart(2, '0')}.service`)!, { activeState: 'inactive' });
  });
  await step('b.service crash-loops: restarts counted from NRestarts, between samples too', () => {
    const b = t.get('b.service')!;
    t.update(b, { nRestarts: 7 }); // the first value is a base
    for (let n = 8; n <= 10; n++) {
      t.update(b, { result: 'exit-code', execCode: 1, execStatus: 1 });
      t.update(b, { activeState: 'failed', subState: 'failed' });
      t.update(b, { activeState: 'activating', subState: 'auto-restart' });
      t.update(b, { nRestarts: n });
    }
  }, true);
  await step('a.service dumps core on SIGSEGV and restarts once', () => {
    const a = t.get('a.service')!;
    t.update(a, { nRestarts: 0 });
    t.update(a, { result: 'core-dump', execCode: 3, execStatus: 11 });
    t.update(a, { activeState: 'failed' });
    t.update(a, { nRestarts: 1 });
  }, true);
  await step('idle', () => {});
  await step('a unit file broken, one masked, references without a file listed', () => {
    t.setNotFound(['ghost.service', 'skipnot.service', 'gone.socket']);
    t.upsert(unit('bad.service', 'inactive', { loadState: 'bad-setting' }));
    t.upsert(unit('cal.timer', 'inactive', { loadState: 'error' }));
    t.upsert(unit('m.service', 'inactive', { loadState: 'masked' }));
  });
  await step('idle while broken', () => {});
  await step('bad.service fixed and reloaded', () => t.upsert(unit('bad.service', 'inactive')));
  return p.text;
}

/** Every chart definition, with the labels every instance carries besides its declared ones. */
const DEFS: readonly [ChartDef, readonly string[]][] = [
  [UNIT_STATE_CHART, ['unit_type', 'job']],
  [UNIT_COUNTS_CHART, ['unit_type', 'job']],
  [UNIT_TRANSITIONS_CHART, ['unit_type', 'job']],
  [UNIT_LOAD_STATES_CHART, ['unit_type', 'job']],
  [UNIT_RESTARTS_CHART, ['unit_type', 'job']],
  ...SOCKET_ACTIVITY_CHARTS.map((d): [ChartDef, string[]] => [d, [SOCKET_ACTIVITY.unitLabel, SOCKET_ACTIVITY.jobLabel]]),
];

describe('chart writers on a fixed unit model', () => {
  it('write the labels and variables their definitions declare, and no others', () => {
    const text = readFileSync(GOLDEN, 'utf8');
    const seen = new Map<ChartDef, { labels: Set<string>; variables: Set<string> }>();
    let def: ChartDef | undefined;
    for (const w of text.split('\n').filter((l) => l && !l.startsWith('#')).map(tokenize)) {
      if (w[0] === 'CHART') {
        def = DEFS.find(([d]) => new RegExp(`^${d.context.replace('{prefix}', 'systemd').replace('{type}', '\\w+')}$`).test(w[6]!))?.[0];
        expect(def, `a definition for ${w[6]}`).toBeDefined();
      }
      if (w[0] === 'BEGIN') def = DEFS.find(([d]) => new RegExp(`\\.${d.id.replace(/\{\w+\}/g, '\\w+')}$`).test(w[1]!))?.[0];
      const s = seen.get(def!) ?? { labels: new Set<string>(), variables: new Set<string>() };
      seen.set(def!, s);
      if (w[0] === 'CLABEL') s.labels.add(w[1]!);
      if (w[0] === 'VARIABLE') s.variables.add(w[2]!);
    }
    expect(seen.size).toBe(DEFS.length); // the recording has every chart
    for (const [d, always] of DEFS) {
      expect([...seen.get(d)!.labels].sort(), d.id).toEqual([...always, ...d.labels].sort());
      expect([...seen.get(d)!.variables].sort(), d.id).toEqual([...d.variables].sort());
    }
  });


  it('write exactly the recorded protocol output', async () => {
    const text = await scenario();
    if (process.env.UPDATE_GOLDEN) writeFileSync(GOLDEN, text);
    expect(text).toBe(readFileSync(GOLDEN, 'utf8'));
  });

  it('put the charts of a job with context_prefix under that prefix, and change nothing else (ids, other jobs)', async () => {
    const text = await scenario('systemdunits');
    // The recording with the contexts of job main's CHART lines moved; every other byte the same.
    const want = readFileSync(GOLDEN, 'utf8').replace(/^(CHART systemdunits_main\.\S+ (?:'[^']*' ){4})'systemd\./gm, "$1'systemdunits.");
    expect(want).not.toBe(readFileSync(GOLDEN, 'utf8'));
    expect(text).toBe(want);
    const contexts = text.split('\n').filter((l) => l.startsWith('CHART ')).map((l) => [tokenize(l)[1]!.split('.')[0], tokenize(l)[6]!.split('.')[0]]);
    expect(new Set(contexts.map(([job, prefix]) => `${job} ${prefix}`))).toEqual(new Set(['systemdunits_main systemdunits', 'systemdunits_second systemd']));
    // A chart definition whose context does not start with {prefix} would stay on go.d's systemd.*.
    expect(DEFS.map(([d]) => d.context).filter((c) => !c.startsWith('{prefix}.'))).toEqual([]);
  });
});
