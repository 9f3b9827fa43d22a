// Issue 6 items 2-5 against a real systemd 252 on a real bus: why a unit failed (stderr line and
// alarm label), units by state, state transitions, and Accept=yes per-connection instances.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PluginRun } from '../../harness/plugin.js';
import { startSandbox, type Sandbox } from '../../harness/sandbox.js';
import { until } from '../../harness/wait.js';
import { activeState, failSocket, freePort, recoverSocket, startSockets } from '../../harness/units.js';
import { crashText, exitText } from '../../plugin/units/exits.js';

const JOB = 'systemdunits_service_units';
const SOCKETS = `${JOB}.socket_unit_state`;
const SERVICES = `${JOB}.service_unit_state`;
const SOCKET_COUNTS = `${JOB}.socket_units_by_state`;
const SOCKET_TRANSITIONS = `${JOB}.socket_unit_state_transitions`;
const SERVICE_TRANSITIONS = `${JOB}.service_unit_state_transitions`;

let sb: Sandbox;
let plugin: PluginRun;

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => resolve(s));
    s.on('error', reject);
  });
}

/** Lines the plugin wrote to stderr that contain `text`. */
function stderrLines(run: PluginRun, text: string): string[] {
  return run.stderr.split('\n').filter((l) => l.includes(text));
}

async function systemctlList(type: string): Promise<{ name: string; active: string }[]> {
  const r = await sb.execOk('systemctl', 'list-units', `--type=${type}`, '--all', '--plain', '--no-legend', '--no-pager', '--full');
  return r.stdout
    .split('\n')
    .map((l) => l.replace(/^\s*●\s*/, '').trim().split(/\s+/))
    .filter((w) => w.length >= 4 && w[1] !== 'not-found')
    .map((w) => ({ name: w[0]!, active: w[2]! }));
}

beforeAll(async () => {
  sb = await startSandbox();
  await startSockets(sb, ['steady', 'broken']);
  plugin = new PluginRun(['1'], { DBUS_SYSTEM_BUS_ADDRESS: sb.busAddress });
  await plugin.waitFor('the socket chart', () => plugin.samplesOf(SOCKETS).length > 0);
}, 60_000);

afterAll(async () => {
  await plugin?.stop();
  await sb?.stop({ removeDir: true });
});

describe('why it failed', () => {
  it('writes one stderr line with the Result and the state of the service a socket triggers, once per failure', async () => {
    await failSocket(sb, 'broken');
    await plugin.waitForValue(SOCKETS, 'broken.socket', 5, 5000);
    const line = await plugin.waitFor('the failure line', () => stderrLines(plugin, 'broken.socket failed')[0], 5000);
    expect(line).toBe('systemdunits.plugin: broken.socket failed (Result=exit-code); it triggers broken.service, which is inactive/dead');
    // Its own start failed; the service was never started: the label says no more than the Result.
    expect(plugin.charts.get(SOCKETS)!.labels.failed_units).toBe('broken.socket (exit-code)');
    // A resync (daemon-reload) sees it failed again: still the same failed period, no new line.
    await sb.daemonReload();
    await sb.execOk('systemctl', 'daemon-reload');
    await plugin.nextSample(SOCKETS);
    await plugin.nextSample(SOCKETS);
    expect(stderrLines(plugin, 'broken.socket failed')).toHaveLength(1);
    // Recovered and failed again: a new failed period, a new line.
    await recoverSocket(sb, 'broken');
    await plugin.waitForValue(SOCKETS, 'broken.socket', 1, 5000);
    await failSocket(sb, 'broken');
    await plugin.waitFor('a second failure line', () => stderrLines(plugin, 'broken.socket failed').length === 2, 5000);
  });

  it('names the triggered service and its Result when the socket fails because the service hit its start limit', async () => {
    const port = await freePort();
    await sb.writeUnit('limit.socket', `[Unit]\nDescription=socket whose service cannot start\n[Socket]\nListenStream=127.0.0.1:${port}\n`);
    await sb.writeUnit('limit.service', '[Unit]\nDescription=fails at once\nStartLimitBurst=2\nStartLimitIntervalSec=60\n[Service]\nExecStart=/bin/false\n');
    await sb.daemonReload();
    await sb.execOk('systemctl', 'start', 'limit.socket');
    await plugin.waitForValue(SOCKETS, 'limit.socket', 1, 5000);
    // One connection left pending: systemd starts the service again and again until the limit.
    const client = await open(port).catch(() => undefined);
    try {
      await plugin.waitForValue(SOCKETS, 'limit.socket', 5, 10_000);
    } finally {
      client?.destroy();
    }
    expect((await sb.exec('systemctl', 'show', '-P', 'Result', 'limit.socket')).stdout.trim()).toBe('service-start-limit-hit');
    // What systemd says of the service (252: failed, with the Result of its last run).
    const service: string[] = [];
    for (const p of ['ActiveState', 'SubState', 'Result', 'ExecMainCode', 'ExecMainStatus']) service.push((await sb.execOk('systemctl', 'show', '-P', p, 'limit.service')).stdout.trim());
    // …and how its main process last ended, as an operator reads it (units/exits.ts, unit-tested)
    const exit = { code: Number(service[3]), status: Number(service[4]) };
    expect(service[0]).toBe('failed');
    const line = await plugin.waitFor('the failure line', () => stderrLines(plugin, 'limit.socket failed')[0], 5000);
    expect(line).toBe(
      `systemdunits.plugin: limit.socket failed (Result=service-start-limit-hit); it triggers limit.service, which is failed/${service[1]} (Result=${service[2]}, ${exitText(exit)})`,
    );
    const label = await plugin.waitFor('the label with the service', () => {
      const l = plugin.charts.get(SOCKETS)!.labels.failed_units!;
      return l.includes('limit.socket (') ? l : undefined;
    });
    expect(label).toContain(`limit.socket (service-start-limit-hit / limit.service failed ${crashText(service[2], exit, ' ')})`);
    // The service's own failure has its own line.
    expect(stderrLines(plugin, 'limit.service failed (Result=')).not.toEqual([]);
  });
});

describe('units by state', () => {
  it('counts the job’s socket units per state as systemctl lists them', async () => {
    const units = await systemctlList('socket');
    const want = { active: 0, inactive: 0, activating: 0, deactivating: 0, failed: 0 } as Record<string, number>;
    for (const u of units) want[u.active] = (want[u.active] ?? 0) + 1;
    expect(want.failed).toBeGreaterThanOrEqual(2); // broken.socket, limit.socket
    const s = await plugin.nextSample(SOCKET_COUNTS);
    expect(s.values).toEqual(want);
    const chart = plugin.charts.get(SOCKET_COUNTS)!;
    expect(chart).toMatchObject({ context: 'systemd.socket_units_by_state', family: 'socket', units: 'units' });
    expect(chart.labels).toMatchObject({ unit_type: 'socket', job: 'service_units' });
  });
});

describe('state transitions', () => {
  it('counts every state change of a socket that flaps between two samples', async () => {
    await startSockets(sb, ['flap'], { noStartLimit: true });
    // A 5 s interval: three fail/recover cycles fit between two samples.
    const slow = new PluginRun(['5'], { DBUS_SYSTEM_BUS_ADDRESS: sb.busAddress });
    try {
      const first = await slow.waitFor('a first sample', () => slow.samplesOf(SOCKET_TRANSITIONS)[0], 12_000);
      expect(slow.charts.get(SOCKET_TRANSITIONS)).toMatchObject({ context: 'systemd.socket_unit_state_transitions', units: 'transitions' });
      expect(first.variables.flapping_threshold).toBe(20);
      // The first sample comes at once, the next on the 5 s grid: start from that one.
      await slow.waitFor('a sample on the grid', () => slow.samplesOf(SOCKET_TRANSITIONS)[1], 12_000);
      const before = slow.samplesOf(SOCKET_TRANSITIONS).length;
      for (let i = 0; i < 3; i++) {
        await failSocket(sb, 'flap');
        expect(await activeState(sb, 'flap.socket')).toBe('failed');
        await recoverSocket(sb, 'flap');
      }
      const samples = await slow.waitFor('two more samples', () => {
        const all = slow.samplesOf(SOCKET_TRANSITIONS);
        return all.length >= before + 2 ? all.slice(before - 1) : undefined;
      }, 15_000);
      const counted = samples.slice(1).reduce((n, s) => n + s.values.transitions!, 0);
      // systemd signals each cycle as active → inactive → activating → failed, then (reset-failed
      // unloads it, start loads it again) inactive → activating → active: 6 changes; it may merge
      // changes made within one iteration of its own loop, so ask for at least 3 a cycle.
      console.log(`state transitions counted for 3 fail/recover cycles between two samples: ${counted}`);
      expect(counted).toBeGreaterThanOrEqual(9);
      expect(slow.charts.get(SOCKET_TRANSITIONS)!.labels.changed_units).toContain('flap.socket');
    } finally {
      await slow.stop();
    }
  });
});

describe('Accept=yes per-connection instances', () => {
  let port: number;
  const clients: Socket[] = [];

  beforeAll(async () => {
    port = await freePort();
    await sb.writeUnit('echo.socket', `[Unit]\nDescription=per-connection service\n[Socket]\nListenStream=127.0.0.1:${port}\nAccept=yes\n`);
    // Reads one line; exits 3 if it is "fail", else waits for the peer to go.
    await sb.writeUnit(
      'echo@.service',
      "[Unit]\nDescription=one connection\n[Service]\nStandardInput=socket\nStandardOutput=socket\nExecStart=/bin/sh -c 'read l; [ \"$l\" = fail ] && exit 3; cat >/dev/null'\n",
    );
    await sb.daemonReload();
    await sb.execOk('systemctl', 'start', 'echo.socket');
  });

  afterAll(() => {
    for (const c of clients) c.destroy();
  });

  it('charts twenty connections as one dimension, and names the real instance when one fails', async () => {
    for (let i = 0; i < 20; i++) clients.push(await open(port));
    const instances = async () => (await systemctlList('service')).filter((u) => u.name.startsWith('echo@'));
    const listed = await until('20 instances in systemd', async () => {
      const l = await instances();
      return l.length >= 20 ? l : undefined;
    }, { everyMs: 100 });
    // systemd 252 names them N-LOCAL:PORT-REMOTE:PORT
    expect(listed[0]!.name).toMatch(new RegExp(`^echo@\\d+-127\\.0\\.0\\.1:${port}-127\\.0\\.0\\.1:\\d+\\.service$`));

    const s = await plugin.waitForValue(SERVICES, 'echo@_.service', 1, 5000);
    const dims = [...plugin.charts.get(SERVICES)!.dims.entries()].filter(([, d]) => d.name.startsWith('echo@'));
    expect(dims).toEqual([['echo@_.service', { name: 'echo@*.service', obsolete: false }]]);
    expect(Object.keys(s.values).filter((k) => k.startsWith('echo@'))).toEqual(['echo@_.service']);
    // Units by state still counts every instance.
    const counts = await plugin.nextSample(`${JOB}.service_units_by_state`);
    expect(counts.values.active).toBeGreaterThanOrEqual(20);

    const failedBefore = s.variables.failed_units!; // limit.service, from an earlier test
    const victim = clients[7]!;
    const local = victim.localPort;
    victim.write('fail\n');
    const failed = await plugin.waitForValue(SERVICES, 'echo@_.service', 5, 5000);
    expect(failed.variables.failed_units).toBe(failedBefore + 1);
    const name = (await instances()).find((u) => u.active === 'failed')!.name;
    expect(name).toMatch(new RegExp(`-127\\.0\\.0\\.1:${local}\\.service$`));
    await plugin.waitFor('the label naming the instance', () => plugin.charts.get(SERVICES)!.labels.failed_units!.includes(`${name} (exit-code status `), 5000);
    await plugin.waitFor('its failure line', () => stderrLines(plugin, `${name} failed (Result=exit-code, status=`).length === 1, 5000);
    // Still one dimension for the template.
    expect([...plugin.charts.get(SERVICES)!.dims.values()].filter((d) => d.name.startsWith('echo@') && !d.obsolete)).toHaveLength(1);
    await sb.execOk('systemctl', 'reset-failed', name);
  });

  it('keeps the dimension while connections come and go, and does not count them as flapping', async () => {
    for (const c of clients.splice(0)) c.destroy();
    const transitionsBefore = plugin.samplesOf(SERVICE_TRANSITIONS).length;
    for (let round = 0; round < 5; round++) {
      const batch = await Promise.all(Array.from({ length: 5 }, () => open(port)));
      await new Promise((r) => setTimeout(r, 200));
      for (const c of batch) c.destroy();
    }
    const idle = await plugin.waitForValue(SERVICES, 'echo@_.service', 2, 10_000).catch(async (err: Error) => {
      const listed = (await systemctlList('service')).filter((u) => u.name.startsWith('echo@'));
      throw new Error(`${err.message.split('\n')[0]}; last value ${plugin.lastValue(SERVICES, 'echo@_.service')}; systemd: ${JSON.stringify(listed)}`);
    });
    expect(idle.values['echo@_.service']).toBe(2);
    const dims = [...plugin.charts.get(SERVICES)!.dims.keys()].filter((k) => k.startsWith('echo@'));
    expect(dims).toEqual(['echo@_.service']);
    expect(plugin.protocolErrors).toEqual([]);
    // 25 connections came and went (each several state changes); none counted as flapping.
    const since = plugin.samplesOf(SERVICE_TRANSITIONS).slice(transitionsBefore);
    expect(since.reduce((n, s) => n + s.values.transitions!, 0)).toBeLessThan(5);
  });

  it('gives every instance its own dimension with aggregate_instances: false', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sdu-reasons-'));
    writeFileSync(join(dir, 'systemdunits.conf'), `jobs:\n  - name: each\n    include: ['echo*']\n    aggregate_instances: false\n`);
    const run = new PluginRun(['1'], { DBUS_SYSTEM_BUS_ADDRESS: sb.busAddress, NETDATA_USER_CONFIG_DIR: dir });
    const batch = await Promise.all(Array.from({ length: 3 }, () => open(port)));
    try {
      const s = await run.waitFor('three instance dimensions', () => {
        const last = run.samplesOf('systemdunits_each.service_unit_state').at(-1);
        return last && Object.keys(last.values).length >= 3 ? last : undefined;
      }, 10_000);
      for (const id of Object.keys(s.values)) expect(id).toMatch(/^echo@\d+-127\.0\.0\.1:\d+-127\.0\.0\.1:\d+\.service$/);
      expect(run.strayLines).toEqual([]);
    } finally {
      for (const c of batch) c.destroy();
      await run.stop();
    }
  });
});

describe('output', () => {
  it('writes nothing but protocol lines and never refers to anything undefined', () => {
    expect(plugin.strayLines).toEqual([]);
    expect(plugin.protocolErrors).toEqual([]);
  });
});
