// Socket activity charts against a real systemd 252: real Accept=yes and Accept=no sockets on
// 127.0.0.1, real client connections from this process, MaxConnections= refusing for real, a
// reload that turns a socket into Accept=yes, units that come and go, a frozen systemd and a
// stopped bus; on by default (the built-in job), and the cap on sockets read a round. Counters are
// read on events (see plugin/systemd/socket-poller.ts): an idle socket is charted without a read.
import { writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { freePort } from '../../harness/units.js';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PluginRun } from '../../harness/plugin.js';
import { BusMonitor } from '../../harness/privilege.js';
import { tokenize } from '../../plugin/netdata/requests.js';
import { unitPath } from '../../plugin/units/names.js';
import { startSandbox, type Sandbox } from '../../harness/sandbox.js';
import { until } from '../../harness/wait.js';

const JOB = 'systemdunits_sockets';
const chart = (socket: string, kind: 'accepted_connections' | 'connections' | 'refused_connections') => `${JOB}.socket_${socket}_${kind}`;
const KINDS = ['accepted_connections', 'connections', 'refused_connections'] as const;

let sb: Sandbox;
let plugin: PluginRun;
let webPort: number;
let plainPort: number;
let onePort: number;
const clients: Socket[] = [];

/** An Accept=yes socket whose per-connection service echoes until the client hangs up. */
async function writeAcceptSocket(name: string, port: number, extra = ''): Promise<void> {
  await sb.writeUnit(`${name}.socket`, `[Socket]\nListenStream=127.0.0.1:${port}\nAccept=yes\n${extra}`);
  await sb.writeUnit(`${name}@.service`, `[Service]\nExecStart=/bin/cat\nStandardInput=socket\n`);
}

/** Opens a connection and resolves once it is established (systemd accepts it, or refuses by closing it). */
function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => resolve(s));
    s.on('error', reject);
    clients.push(s);
  });
}

async function show(unit: string, ...props: string[]): Promise<Record<string, string>> {
  const out = (await sb.execOk('systemctl', 'show', unit, ...props.map((p) => `--property=${p}`))).stdout;
  return Object.fromEntries(out.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

function startPlugin(config: string): PluginRun {
  const file = path.join(sb.dir, `activity-${Math.random().toString(36).slice(2)}.conf`);
  writeFileSync(file, config);
  return new PluginRun(['1', '--config', file], { DBUS_SYSTEM_BUS_ADDRESS: sb.busAddress, DEBUG: 'systemdunits:activity' });
}

beforeAll(async () => {
  sb = await startSandbox();
  [webPort, plainPort, onePort] = [await freePort(), await freePort(), await freePort()];
  await writeAcceptSocket('web', webPort, 'MaxConnections=2\n');
  await writeAcceptSocket('one', onePort, 'MaxConnections=1\n');
  await sb.writeUnit('plain.socket', `[Socket]\nListenStream=127.0.0.1:${plainPort}\n`);
  await sb.writeUnit('plain.service', '[Service]\nExecStart=/bin/sleep infinity\n');
  await sb.daemonReload();
  await sb.execOk('systemctl', 'start', 'web.socket', 'plain.socket', 'one.socket');
  plugin = startPlugin(
    [
      'jobs:',
      '  - name: sockets',
      "    include: ['*.socket']",
      '    socket_activity: true',
      '    socket_activity_every: 1',
      '    timeout: 3',
      '  - name: quiet',
      "    include: ['*.socket', '*.service']",
      '    socket_activity: false',
      '',
    ].join('\n'),
  );
  await plugin.waitFor('the socket activity charts', () => plugin.samplesOf(chart('web', 'connections')).length > 0 && plugin.samplesOf(chart('one', 'connections')).length > 0, 15_000);
});

afterAll(async () => {
  for (const c of clients) c.destroy();
  await plugin?.stop();
  await sb?.stop({ removeDir: true });
});

describe('socket activity against real systemd', () => {
  it('charts each Accept=yes socket with its own three charts, contexts and labels', () => {
    const expected = {
      accepted_connections: { context: 'systemd.socket_accepted_connections', units: 'connections/s', dim: 'accepted' },
      connections: { context: 'systemd.socket_connections', units: 'connections', dim: 'connections' },
      refused_connections: { context: 'systemd.socket_refused_connections', units: 'connections/s', dim: 'refused' },
    };
    for (const kind of KINDS) {
      const c = plugin.charts.get(chart('web', kind))!;
      expect(c, kind).toBeDefined();
      expect(c).toMatchObject({ context: expected[kind].context, units: expected[kind].units, family: 'socket activity', obsolete: false });
      expect(c.labels).toEqual({ unit_name: 'web.socket', job: 'sockets' });
      expect([...c.dims.keys()]).toEqual([expected[kind].dim]);
    }
  });

  it('reads nothing for Accept=no sockets, and nothing for a job with socket_activity: false', () => {
    const activityCharts = [...plugin.charts.keys()].filter((id) => /_connections$/.test(id));
    expect(activityCharts.sort()).toEqual(['one', 'web'].flatMap((n) => KINDS.map((k) => chart(n, k))).sort());
    // plain.socket and dbus.socket are Accept=no: their counters never move.
    expect(activityCharts.some((id) => id.includes('plain') || id.includes('dbus'))).toBe(false);
    expect([...plugin.charts.keys()].filter((id) => id.startsWith('systemdunits_quiet.') && id.endsWith('_connections'))).toEqual([]);
    expect(plugin.charts.has('systemdunits_quiet.socket_unit_state')).toBe(true);
    expect(plugin.protocolErrors).toEqual([]);
    expect(plugin.strayLines).toEqual([]);
  });

  it('follows real connections: accepted and current, then refused past MaxConnections, then closed', async () => {
    const accepted0 = plugin.lastValue(chart('web', 'accepted_connections'), 'accepted')!;
    const refused0 = plugin.lastValue(chart('web', 'refused_connections'), 'refused')!;
    const held = [await open(webPort), await open(webPort)];
    await plugin.waitForValue(chart('web', 'connections'), 'connections', 2, 5000);
    await plugin.waitForValue(chart('web', 'accepted_connections'), 'accepted', accepted0 + 2, 5000);
    // MaxConnections=2: systemd accepts and drops the next two at once, counting them as refused.
    const dropped = [await open(webPort), await open(webPort)];
    await plugin.waitForValue(chart('web', 'refused_connections'), 'refused', refused0 + 2, 5000);
    const s = await show('web.socket', 'NAccepted', 'NConnections', 'NRefused');
    expect(s).toEqual({ NAccepted: String(accepted0 + 2), NConnections: '2', NRefused: String(refused0 + 2) });
    expect(plugin.lastValue(chart('web', 'accepted_connections'), 'accepted')).toBe(accepted0 + 2); // refused ones are not accepted
    for (const c of [...held, ...dropped]) c.destroy();
    await plugin.waitForValue(chart('web', 'connections'), 'connections', 0, 5000);
  });

  it('reads no idle socket, yet charts each one every round with its values', async () => {
    const rounds = () => [...plugin.stderr.matchAll(/sockets: read (\d+) of (\d+) sockets/g)].map((m) => Number(m[1]));
    const n = rounds().length;
    const samples = plugin.samplesOf(chart('one', 'connections')).length;
    await plugin.waitFor('four more rounds', () => rounds().length >= n + 4, 10_000);
    // Nothing moved their counters: not one read in those rounds (the debug line of each says so).
    expect(rounds().slice(n)).toEqual(rounds().slice(n).map(() => 0));
    expect(plugin.samplesOf(chart('one', 'connections')).length - samples).toBeGreaterThanOrEqual(3);
    expect(plugin.lastValue(chart('one', 'accepted_connections'), 'accepted')).toBe(Number((await show('one.socket', 'NAccepted')).NAccepted));
  });

  it('counts accepted and current connections right in the first round after systemd accepted them', async () => {
    const accepted0 = plugin.lastValue(chart('web', 'accepted_connections'), 'accepted')!;
    const held = [await open(webPort), await open(webPort)];
    await until('systemd to hold both connections', async () => (await show('web.socket', 'NConnections')).NConnections === '2', { timeoutMs: 5000 });
    // A round under way may have read before the second connection: the one after it cannot have.
    await plugin.nextSample(chart('web', 'connections'), 5000);
    const next = await plugin.nextSample(chart('web', 'connections'), 5000);
    expect(next.values.connections).toBe(2);
    expect(plugin.lastValue(chart('web', 'accepted_connections'), 'accepted')).toBe(accepted0 + 2);
    for (const c of held) c.destroy();
    await until('systemd to see both closed', async () => (await show('web.socket', 'NConnections')).NConnections === '0', { timeoutMs: 5000 });
    await plugin.nextSample(chart('web', 'connections'), 5000);
    expect((await plugin.nextSample(chart('web', 'connections'), 5000)).values.connections).toBe(0);
  });

  it('counts refusals at MaxConnections=1 that come rounds after the last signal (the socket at its limit is read each round)', async () => {
    const refused0 = Number((await show('one.socket', 'NRefused')).NRefused);
    const held = await open(onePort);
    await plugin.waitForValue(chart('one', 'connections'), 'connections', 1, 5000);
    for (let i = 1; i <= 3; i++) {
      // Rounds pass between refusals: no signal says any of them (systemd only counts them).
      await plugin.nextSample(chart('one', 'connections'), 5000);
      await plugin.nextSample(chart('one', 'connections'), 5000);
      const dropped = await open(onePort);
      await until(`refusal ${i} counted by systemd`, async () => Number((await show('one.socket', 'NRefused')).NRefused) === refused0 + i, { timeoutMs: 5000 });
      dropped.destroy();
      await plugin.waitForValue(chart('one', 'refused_connections'), 'refused', refused0 + i, 5000);
    }
    expect(plugin.lastValue(chart('one', 'connections'), 'connections')).toBe(1);
    held.destroy();
    await plugin.waitForValue(chart('one', 'connections'), 'connections', 0, 5000);
  });

  it('samples at socket_activity_every with the elapsed time in BEGIN', () => {
    const samples = plugin.samplesOf(chart('web', 'connections'));
    expect(samples.length).toBeGreaterThanOrEqual(3);
    // From the third: the first round runs at once, the second at the next whole interval.
    const later = samples.slice(2).map((x) => x.elapsedUs!);
    // Every second, or two when a round was skipped; never faster.
    for (const us of later) expect(us).toBeGreaterThanOrEqual(900_000);
    expect(later.filter((us) => us < 1_500_000).length).toBeGreaterThan(later.length / 2);
  });

  it('charts a socket that appears, and obsoletes its charts when systemd unloads it', async () => {
    // The port is picked as the socket is written, not in beforeAll: files running beside this one
    // (agents, other sandboxes on the host's network) may take a port picked minutes earlier.
    await writeAcceptSocket('extra', await freePort());
    await sb.daemonReload();
    await sb.execOk('systemctl', 'start', 'extra.socket');
    await plugin.waitFor('charts of extra.socket', () => plugin.samplesOf(chart('extra', 'connections')).length > 0, 10_000);
    expect(plugin.charts.get(chart('extra', 'accepted_connections'))!.labels.unit_name).toBe('extra.socket');
    await sb.execOk('systemctl', 'stop', 'extra.socket');
    await sb.execOk('rm', '/run/systemd/system/extra.socket', '/run/systemd/system/extra@.service');
    await sb.daemonReload();
    await plugin.waitFor('extra.socket charts obsoleted', () => KINDS.every((k) => plugin.charts.get(chart('extra', k))?.obsolete), 10_000);
    const n = plugin.samplesOf(chart('extra', 'connections')).length;
    await new Promise((r) => setTimeout(r, 2000)); // two intervals in which nothing may come
    expect(plugin.samplesOf(chart('extra', 'connections')).length).toBe(n); // never sampled again
    expect(plugin.protocolErrors).toEqual([]);
  });

  it('reads Accept again after a daemon-reload: a socket turned Accept=yes gets its charts', async () => {
    await sb.writeUnit('plain.socket.d/accept.conf', '[Socket]\nAccept=yes\n');
    await sb.writeUnit('plain@.service', '[Service]\nExecStart=/bin/cat\nStandardInput=socket\n');
    await sb.daemonReload();
    await sb.execOk('systemctl', 'restart', 'plain.socket');
    expect((await show('plain.socket', 'Accept')).Accept).toBe('yes');
    await plugin.waitFor('charts of plain.socket', () => plugin.samplesOf(chart('plain', 'accepted_connections')).length > 0, 10_000);
    const c = await open(plainPort);
    const before = plugin.samplesOf(chart('plain', 'accepted_connections')).at(-1)!.values.accepted!;
    await plugin.waitForValue(chart('plain', 'accepted_connections'), 'accepted', before + 1, 5000);
    c.destroy();
  });

  it('reads the counters of every socket again after a real daemon-reload, idle ones too', async () => {
    const held = await open(webPort);
    await plugin.waitForValue(chart('web', 'connections'), 'connections', 1, 5000);
    const rounds = () => plugin.stderr.match(/sockets: read \d+ of \d+ sockets/g)?.length ?? 0;
    const n = rounds();
    await plugin.waitFor('two more rounds', () => rounds() >= n + 2, 10_000);
    // Who asks systemd for a socket's NAccepted (systemctl show asks with GetAll): the plugin.
    const monitor = new BusMonitor(sb.busAddress);
    const countersRead = (socket: string) =>
      monitor.messages.some((m) => m.member === 'Get' && m.path === unitPath(socket) && JSON.stringify(m.payload?.data) === JSON.stringify(['org.freedesktop.systemd1.Socket', 'NAccepted']));
    try {
      await monitor.ready;
      // Its unit signals' rules are off meanwhile (a connection then goes unheard), and systemd
      // rebuilds its counters from its serialized state: neither socket's may be taken on trust.
      // (A daemon-reexec is no test of it: systemd 252 then signals every socket, read anyway.)
      await sb.daemonReload();
      await until('both sockets read after the reload', () => countersRead('web.socket') && countersRead('one.socket'), {
        timeoutMs: 10_000,
        context: () => `\n${plugin.stderr.split('\n').filter((l) => l.includes('sockets: read')).slice(-5).join('\n')}`,
      });
    } finally {
      await monitor.stop();
    }
    const s = await show('web.socket', 'NAccepted', 'NConnections');
    await plugin.nextSample(chart('web', 'connections'), 5000);
    expect(plugin.lastValue(chart('web', 'connections'), 'connections')).toBe(Number(s.NConnections));
    expect(plugin.lastValue(chart('web', 'accepted_connections'), 'accepted')).toBe(Number(s.NAccepted));
    held.destroy();
    await plugin.waitForValue(chart('web', 'connections'), 'connections', 0, 5000);
  });

  it('skips rounds while systemd does not answer (SIGSTOP) and writes no stale values, then resumes', async () => {
    // one.socket held at its limit is read every round (a refusal may come any time); idle
    // sockets are not read, and a frozen systemd moves no counter: their values stay true.
    const held = await open(onePort);
    await plugin.waitForValue(chart('one', 'connections'), 'connections', 1, 5000);
    const before = plugin.stderr.split('tick skipped').length;
    process.kill(sb.pid, 'SIGSTOP');
    try {
      await new Promise((r) => setTimeout(r, 1200)); // a round already answered may still land
      const n = plugin.samplesOf(chart('one', 'connections')).length;
      await new Promise((r) => setTimeout(r, 3000)); // three intervals in which no sample may come
      expect(plugin.samplesOf(chart('one', 'connections')).length).toBe(n);
    } finally {
      process.kill(sb.pid, 'SIGCONT');
    }
    // Each Get waits up to the job's 3 s timeout, longer than the 1 s interval: ticks were skipped.
    expect(plugin.stderr.split('tick skipped').length).toBeGreaterThan(before);
    await plugin.nextSample(chart('one', 'connections'), 10_000);
    expect(plugin.child.exitCode).toBeNull();
    held.destroy();
    await plugin.waitForValue(chart('one', 'connections'), 'connections', 0, 10_000);
  });

  it('reads nothing while the bus is gone, and resumes after reconnecting', async () => {
    await sb.execOk('systemctl', 'stop', 'dbus.socket', 'dbus.service');
    try {
      await plugin.waitFor('connection loss noticed', () => plugin.stderr.includes('lost the system bus'), 5000);
      const n = plugin.samplesOf(chart('web', 'connections')).length;
      await new Promise((r) => setTimeout(r, 2500)); // a span in which at most one sample may come
      expect(plugin.samplesOf(chart('web', 'connections')).length - n).toBeLessThanOrEqual(1); // a gap
    } finally {
      await sb.execOk('systemctl', 'start', 'dbus.socket', 'dbus.service');
    }
    await plugin.waitFor('reconnected', () => plugin.stderr.includes('reconnected to the system bus'), 40_000);
    await plugin.nextSample(chart('web', 'connections'), 10_000);
    const c = await open(webPort);
    await plugin.waitForValue(chart('web', 'connections'), 'connections', 1, 5000);
    c.destroy();
    expect(plugin.protocolErrors).toEqual([]);
    expect(plugin.strayLines).toEqual([]);
  });
});

/** The update_every of the latest CHART line of `id` (its 10th word). */
function updateEveryOf(run: PluginRun, id: string): number | undefined {
  const line = run.lines.filter((l) => l.startsWith(`CHART ${id} `)).at(-1);
  return line === undefined ? undefined : Number(tokenize(line)[9]);
}

// Side by side: each test runs a plugin of its own, and none asserts on sockets another one adds.
describe.concurrent('socket activity by default, and its bound', () => {
  const runs: PluginRun[] = [];
  afterAll(async () => {
    for (const r of runs) await r.stop();
  });

  it('the built-in job (a file without jobs) charts an Accept=yes socket without any socket_activity key', async () => {
    const run = startPlugin('update_every: 1\n');
    runs.push(run);
    const id = 'systemdunits_service_units.socket_web_connections';
    await run.waitFor('the built-in job to chart web.socket', () => run.samplesOf(id).length > 0, 20_000);
    expect(run.charts.get(id)!.labels).toEqual({ unit_name: 'web.socket', job: 'service_units' });
    expect(updateEveryOf(run, id)).toBe(10); // socket_activity_every's default
    expect([...run.charts.keys()].some((c) => c.includes('socket_dbus'))).toBe(false); // Accept=no
    expect(run.protocolErrors).toEqual([]);
    await run.stop();
  });

  it('socket_activity: false reads no counters and draws no activity chart', async () => {
    const run = startPlugin(['update_every: 1', 'jobs:', '  - name: off', "    include: ['*.socket']", '    socket_activity: false', ''].join('\n'));
    runs.push(run);
    await run.waitFor('the state chart', () => run.samplesOf('systemdunits_off.socket_unit_state').length >= 3, 20_000);
    await new Promise((r) => setTimeout(r, 1500)); // a first round would have run by now
    expect([...run.charts.keys()].filter((c) => c.endsWith('_connections'))).toEqual([]);
    expect(run.stderr).not.toMatch(/read \d+ of \d+ sockets/);
    await run.stop();
  });

  it('reads at most socket_activity_max_sockets a round: 7 new Accept=yes sockets, 3 a round, then none; charts every round', async () => {
    const names = Array.from({ length: 6 }, (_, i) => `many${i}`);
    for (const n of names) await writeAcceptSocket(n, await freePort());
    await sb.daemonReload();
    await sb.execOk('systemctl', 'start', ...names.map((n) => `${n}.socket`));
    const run = startPlugin(
      ['update_every: 1', 'jobs:', '  - name: capped', "    include: ['web.socket', 'many*.socket']", '    socket_activity_every: 1', '    socket_activity_max_sockets: 3', ''].join('\n'),
    );
    runs.push(run);
    const all = ['web', ...names].map((n) => `systemdunits_capped.socket_${n}_connections`);
    await run.waitFor('charts of all 7 sockets', () => all.every((id) => run.samplesOf(id).length >= 3), 30_000);
    // Every socket's charts are defined with socket_activity_every, whatever the cap.
    for (const id of all) expect(updateEveryOf(run, id), id).toBe(1);
    // The plugin's own account of each round (debug log): never more than 3 sockets read; once
    // each was read, none (nothing moved their counters).
    const rounds = [...run.stderr.matchAll(/capped: read (\d+) of (\d+) sockets/g)].map((m) => [Number(m[1]), Number(m[2])]);
    expect(rounds.length).toBeGreaterThanOrEqual(5);
    for (const [read] of rounds) expect(read).toBeLessThanOrEqual(3);
    expect(rounds.filter(([, of]) => of === 7).reduce((sum, [read]) => sum + read!, 0)).toBeLessThanOrEqual(7 + 1); // + at most a safety read
    expect(rounds.slice(-2).map(([read]) => read)).toEqual([0, 0]);
    // And each socket is sampled every second once read.
    for (const id of all) {
      const later = run.samplesOf(id).slice(1).map((x) => x.elapsedUs!);
      expect(later.filter((us) => us < 1_500_000).length, id).toBeGreaterThan(later.length / 2);
    }
    // No job of this run wants services: the per-connection instances are not in its table, and
    // their signals still say when to read (the accept signals the socket; the close only them).
    const c = await open(webPort);
    await run.waitForValue('systemdunits_capped.socket_web_connections', 'connections', 1, 5000);
    c.destroy();
    await run.waitForValue('systemdunits_capped.socket_web_connections', 'connections', 0, 5000);
    expect(run.protocolErrors).toEqual([]);
    await run.stop();
    await sb.execOk('systemctl', 'stop', ...names.map((n) => `${n}.socket`));
  });
});
