// The compiled plugin against a real systemd 252 (PID 1 of its own namespace) on a real bus.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PluginRun } from '../../harness/plugin.js';
import { startSandbox, type Sandbox } from '../../harness/sandbox.js';
import { activeState, failSocket, recoverSocket, startSockets, writeSocket } from '../../harness/units.js';

const SOCKETS = 'systemdunits_service_units.socket_unit_state';

let sb: Sandbox;
let plugin: PluginRun;

beforeAll(async () => {
  sb = await startSandbox();
  for (const name of ['listening', 'running', 'idle', 'broken']) await writeSocket(sb, name);
  // An inactive unit stays loaded (and listed) only while something refers to it.
  await sb.writeUnit('hold.target', '[Unit]\nDescription=keeps idle.socket loaded\nAfter=idle.socket\n');
  await sb.daemonReload();
  await sb.execOk('systemctl', 'start', 'hold.target', 'listening.socket', 'running.socket', 'broken.socket');
  await sb.execOk('systemctl', 'start', 'running.service'); // the socket's sub state becomes "running"
  await failSocket(sb, 'broken');
  plugin = new PluginRun(['1'], { DBUS_SYSTEM_BUS_ADDRESS: sb.busAddress });
  await plugin.waitFor('the socket chart', () => plugin.samplesOf(SOCKETS).length > 0);
});

afterAll(async () => {
  await plugin?.stop();
  await sb?.stop({ removeDir: true });
});

describe('against real systemd', () => {
  it('charts every socket unit with the right chart metadata', () => {
    const chart = plugin.charts.get(SOCKETS)!;
    expect(chart).toMatchObject({
      context: 'systemd.socket_unit_state',
      family: 'socket',
      units: 'state',
      title: 'Socket Unit State (1: active, 2: inactive, 3: activating, 4: deactivating, 5: failed)',
      obsolete: false,
    });
    const dims = [...chart.dims.keys()];
    for (const d of ['listening.socket', 'running.socket', 'idle.socket', 'broken.socket', 'dbus.socket']) expect(dims).toContain(d);
    expect(plugin.charts.get('systemdunits_service_units.service_unit_state')?.context).toBe('systemd.service_unit_state');
    expect(plugin.charts.get('systemdunits_service_units.target_unit_state')?.dims.has('hold.target')).toBe(true);
  });

  it('reports listening and running sockets as 1, an inactive one as 2, a failed one as 5', async () => {
    expect(await activeState(sb, 'broken.socket')).toBe('failed');
    const s = plugin.samplesOf(SOCKETS).at(-1)!;
    expect(s.values).toMatchObject({ 'listening.socket': 1, 'running.socket': 1, 'idle.socket': 2, 'broken.socket': 5 });
    expect(s.variables.failed_units).toBe(1);
    expect(plugin.charts.get(SOCKETS)!.labels.failed_units).toBe('broken.socket (exit-code)');
  });

  it('follows a socket failed by its ExecStartPre and its recovery', async () => {
    await startSockets(sb, ['flappy']);
    await plugin.waitForValue(SOCKETS, 'flappy.socket', 1);
    await failSocket(sb, 'flappy');
    const failed = await plugin.waitForValue(SOCKETS, 'flappy.socket', 5, 3000);
    expect(failed.variables.failed_units).toBe(2);
    expect(plugin.charts.get(SOCKETS)!.labels.failed_units).toContain('flappy.socket (exit-code)');
    await recoverSocket(sb, 'flappy');
    const back = await plugin.waitForValue(SOCKETS, 'flappy.socket', 1, 3000);
    expect(back.variables.failed_units).toBe(1);
  });

  it('reports a socket whose port is taken as failed with Result resources', async () => {
    const server: Server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      await writeSocket(sb, 'porttaken', { listen: `127.0.0.1:${port}` });
      await sb.daemonReload();
      await sb.exec('systemctl', 'start', 'porttaken.socket');
      expect((await sb.exec('systemctl', 'show', '-P', 'Result', 'porttaken.socket')).stdout.trim()).toBe('resources');
      await plugin.waitForValue(SOCKETS, 'porttaken.socket', 5, 3000);
      await plugin.waitFor('label naming the reason', () => plugin.charts.get(SOCKETS)!.labels.failed_units!.includes('porttaken.socket (resources)'));
    } finally {
      server.close();
    }
  });

  it('adds units that appear after a daemon-reload and retires those that go', async () => {
    await startSockets(sb, ['newcomer']);
    const before = plugin.samplesOf(SOCKETS).length;
    const s = await plugin.waitForValue(SOCKETS, 'newcomer.socket', 1, 3000);
    // Within one interval: at most two samples after the start (the one in progress, the next).
    expect(plugin.samplesOf(SOCKETS).indexOf(s) - before).toBeLessThanOrEqual(2);
    await sb.execOk('systemctl', 'stop', 'newcomer.socket', 'newcomer.service');
    await sb.execOk('rm', '/run/systemd/system/newcomer.socket', '/run/systemd/system/newcomer.service');
    await sb.daemonReload();
    await plugin.waitFor('newcomer retired', () => plugin.charts.get(SOCKETS)!.dims.get('newcomer.socket')?.obsolete, 5000);
    const after = await plugin.nextSample(SOCKETS);
    expect(after.values).not.toHaveProperty('newcomer.socket');
    expect(after.values['listening.socket']).toBe(1);
  });

  it('gives template instances and escaped names readable names and safe ids', async () => {
    await writeSocket(sb, 'tpl@', { fileName: 'tpl@' });
    await writeSocket(sb, 'my-app@', { fileName: 'my\\x2dapp@' });
    await sb.daemonReload();
    await sb.execOk('systemctl', 'start', 'tpl@7.socket', 'my\\x2dapp@1.socket');
    await plugin.waitForValue(SOCKETS, 'tpl@7.socket', 1, 3000);
    // The id is the name with \ as + (one-to-one); the name keeps this escape visible, as /x2d:
    // decoded, it would read as my-app@1.socket, another unit's name.
    await plugin.waitForValue(SOCKETS, 'my+x2dapp@1.socket', 1, 3000);
    const dim = plugin.charts.get(SOCKETS)!.dims.get('my+x2dapp@1.socket')!;
    expect(dim.name).toBe('my/x2dapp@1.socket');
    for (const id of plugin.charts.get(SOCKETS)!.dims.keys()) expect(id).toMatch(/^[A-Za-z0-9_.@:+-]+$/);
  });

  it('writes nothing but protocol lines and never refers to anything undefined', () => {
    expect(plugin.strayLines).toEqual([]);
    expect(plugin.protocolErrors).toEqual([]);
    // From the third sample: the first comes at once, the second at the next whole second.
    const elapsed = plugin.samplesOf(SOCKETS).slice(2).map((s) => s.elapsedUs!);
    // Real elapsed microseconds, one interval apart (the machine may be busy: be lenient).
    for (const e of elapsed) expect(e).toBeGreaterThan(500_000);
    // A late tick is followed by a short one (ticks are aligned, not chained), so the mean holds.
    const mean = elapsed.reduce((a, b) => a + b, 0) / elapsed.length;
    expect(Math.abs(mean - 1_000_000)).toBeLessThan(100_000);
  });
});

describe('the bundle', () => {
  it("talks to the system bus without loading Node's crypto (dbus-next's cookie auth would load it on use)", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sdu-int-'));
    const hook = join(dir, 'hook.cjs');
    // Preloaded into the plugin's node: says it is in place, then names every crypto require.
    writeFileSync(
      hook,
      `const Module = require('node:module');\nconst load = Module._load;\nprocess.stderr.write('hook in place\\n');\n` +
        `Module._load = function (request, ...rest) {\n  if (/^(node:)?crypto$/.test(request)) process.stderr.write('required ' + request + '\\n');\n  return load.call(this, request, ...rest);\n};\n`,
    );
    const run = new PluginRun(['1'], { DBUS_SYSTEM_BUS_ADDRESS: sb.busAddress, NODE_OPTIONS: `--require ${hook}` });
    try {
      await run.waitFor('the socket chart', () => run.samplesOf(SOCKETS).length > 0);
      expect(run.stderr).toContain('hook in place');
      expect(run.stderr).not.toContain('required');
    } finally {
      await run.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('between samples', () => {
  it('reports a socket that fails and recovers inside one interval as failed for that interval', async () => {
    await startSockets(sb, ['blink']);
    // A 5 s interval leaves ample room to fail and recover between two samples.
    const slow = new PluginRun(['5'], { DBUS_SYSTEM_BUS_ADDRESS: sb.busAddress });
    try {
      await slow.waitForValue(SOCKETS, 'blink.socket', 1, 12_000);
      // The first sample comes at once, the next on the 5 s grid: start from that one.
      const first = await slow.nextSample(SOCKETS, 12_000);
      expect(first.values['blink.socket']).toBe(1);
      await failSocket(sb, 'blink');
      expect(await activeState(sb, 'blink.socket')).toBe('failed');
      await recoverSocket(sb, 'blink');
      expect(await activeState(sb, 'blink.socket')).toBe('active');
      const next = await slow.nextSample(SOCKETS, 12_000);
      expect(slow.samplesOf(SOCKETS).indexOf(next)).toBe(slow.samplesOf(SOCKETS).indexOf(first) + 1);
      expect(next.values['blink.socket']).toBe(5);
      expect(next.variables.failed_units).toBeGreaterThanOrEqual(1);
      const after = await slow.nextSample(SOCKETS, 12_000);
      expect(after.values['blink.socket']).toBe(1);
    } finally {
      if (process.env.PLUGIN_DEBUG) console.error(slow.stderr);
      await slow.stop();
    }
  });
});

describe('jobs from a config file', () => {
  it('charts only what include and exclude select, under the job name', async () => {
    await startSockets(sb, ['web-a', 'web-test']);
    const dir = mkdtempSync(join(tmpdir(), 'sdu-int-'));
    const conf = join(dir, 'systemdunits.conf');
    writeFileSync(conf, `jobs:\n  - name: web\n    include: ['web-*.socket', 'hold.target']\n    exclude: ['*-test.socket']\n`);
    const run = new PluginRun(['1'], { DBUS_SYSTEM_BUS_ADDRESS: sb.busAddress, NETDATA_USER_CONFIG_DIR: dir });
    try {
      const s = await run.waitFor('web chart', () => run.samplesOf('systemdunits_web.socket_unit_state')[0]);
      expect(Object.keys(s.values)).toEqual(['web-a.socket']);
      await run.waitFor('target chart', () => run.samplesOf('systemdunits_web.target_unit_state')[0]);
      await run.waitFor('the last chart of the batch', () => run.samplesOf('systemdunits_web.target_units_by_load_state')[0]);
      const ids = [...run.charts.keys()];
      expect(ids.filter((id) => id.endsWith('_unit_state')).sort()).toEqual(['systemdunits_web.socket_unit_state', 'systemdunits_web.target_unit_state']);
      // and each state chart's summaries (units by state, transitions, by load state), for the same types only
      expect(ids.filter((id) => !id.endsWith('_unit_state')).sort()).toEqual([
        'systemdunits_web.socket_unit_state_transitions',
        'systemdunits_web.socket_units_by_load_state',
        'systemdunits_web.socket_units_by_state',
        'systemdunits_web.target_unit_state_transitions',
        'systemdunits_web.target_units_by_load_state',
        'systemdunits_web.target_units_by_state',
      ]);
    } finally {
      await run.stop();
    }
  });
});
