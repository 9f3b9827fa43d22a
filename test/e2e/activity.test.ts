// Socket activity and the systemd-socket-units Function inside real agents (Debian's 1.37.1 and
// v2.10.4), installed with scripts/install/install.sh, watching a real systemd over a bus user
// netdata can open:
// - socket activity is on by default (the installed config sets no socket_activity key): the
//   per-socket activity charts reach the agent every second, with their contexts and labels;
// - connections refused for real by MaxConnections= raise systemd_socket_refused_connections,
//   and its text names the socket;
// - past socket_activity_max_sockets the charts keep their update_every (counters are read on
//   events only: an idle socket needs no read) and the agent keeps collecting them with values;
// - 1.37.1 accepts the FUNCTION declaration (lists it in /api/v1/info, keeps the plugin running,
//   keeps collecting its charts) but cannot call it (403), which the integration test covers by
//   speaking to the plugin's stdin.
// The v2 agent's part is skipped, saying why, where it is absent.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { flavours, startAgent, type Agent } from '../../harness/agent.js';
import { startSandbox, type Sandbox } from '../../harness/sandbox.js';
import { freePort } from '../../harness/units.js';
import { installForAgent, processesRunning, SOCKET_CHART, socketChartsCollectedEvery, tail } from '../../harness/e2e.js';

const JOB = 'systemdunits_service_units';
const REFUSED_CHART = `${JOB}.socket_web_refused_connections`;
const REFUSED_ALARM = 'systemd_socket_refused_connections';

/** The health file with the refused-connections template over 10 s instead of a minute. */
function shortRefusedWindow(conf: string): string {
  const blocks = conf.split(/\n(?=\s*template:)/);
  const i = blocks.findIndex((b) => new RegExp(`^\\s*template:\\s*${REFUSED_ALARM}\\s*$`, 'm').test(b));
  if (i < 0) throw new Error(`no template ${REFUSED_ALARM} in the installed health file`);
  const short = blocks[i]!
    .replace(/(lookup:\s*average\s+)-1m(\s)/, (_, a: string, b: string) => `${a}-10s${b}`)
    .replace(/(calc:\s*\$this\s*\*\s*)60\b/, (_, a: string) => `${a}10`)
    .replace(/(every:\s*)10s\b/, (_, a: string) => `${a}2s`);
  if (!/-10s/.test(short) || !/\* ?10\b/.test(short) || !/every:\s*2s/.test(short)) throw new Error(`unexpected ${REFUSED_ALARM} template:\n${blocks[i]}`);
  blocks[i] = short;
  return blocks.join('\n');
}

describe.each(await flavours())('socket activity on $name', (flavour) => {
  let sb: Sandbox | undefined;
  let agent: Agent | undefined;
  let agentDir = '';
  let pluginsDir: string;
  let port: number;
  let failed = false;
  const clients: Socket[] = [];

  afterEach((ctx) => {
    if (ctx.task.result?.state === 'fail') failed = true;
  });

  function open(): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const s = connect(port, '127.0.0.1', () => resolve(s));
      s.on('error', reject);
      clients.push(s);
    });
  }

  beforeAll(async () => {
    if (flavour.skip) return console.log(`[${flavour.name}] socket activity e2e skipped: ${flavour.skip}`);
    sb = await startSandbox();
    port = await freePort();
    await sb.writeUnit('web.socket', `[Socket]\nListenStream=127.0.0.1:${port}\nAccept=yes\nMaxConnections=1\n`);
    await sb.writeUnit('web@.service', '[Service]\nExecStart=/bin/cat\nStandardInput=socket\n');
    await sb.daemonReload();
    await sb.execOk('systemctl', 'start', 'web.socket');
    const bus = await sb.expose();
    agentDir = await mkdtemp(path.join(os.tmpdir(), 'e2e-activity-'));
    const inst = await installForAgent(agentDir, { agentVersion: flavour.version });
    pluginsDir = inst.pluginsDir;
    // Socket activity is on by default: the operator only reads it every second here, and at most
    // one socket a round (so that a second Accept=yes socket exceeds the cap, last test).
    await writeFile(
      path.join(inst.configDir, 'systemdunits.conf'),
      'jobs:\n  - name: service_units\n    socket_activity_every: 1\n    socket_activity_max_sockets: 1\n',
    );
    // The shipped refused-connections alarm looks back a minute, and the agent evaluates it only once
    // the chart holds that much: the test's copy looks back 10 s (and counts over 10 s), evaluated
    // every 2 s, which saves a minute and keeps what is tested: the template binds to the chart,
    // fires on refusals and names the socket.
    const health = path.join(inst.healthDir, 'systemdunits.conf');
    await writeFile(health, shortRefusedWindow(await readFile(health, 'utf8')));
    agent = await startAgent({ dir: agentDir, prefix: flavour.prefix, pluginsDir, healthDir: inst.healthDir, busAddress: bus });
  }, 240_000);

  afterAll(async () => {
    for (const c of clients) c.destroy();
    await agent?.stop({ removeDir: !failed }).catch((e) => console.error(e));
    await sb?.stop({ removeDir: !failed }).catch((e) => console.error(e));
    if (failed) console.error(`e2e activity (${flavour.name}): a test failed: kept ${agentDir}, ${sb?.dir ?? ''}`);
    else if (agentDir) await rm(agentDir, { recursive: true, force: true });
  });

  // v2's Functions (listed and callable at /api/v3) are test/e2e/v2.test.ts's.
  it.skipIf(flavour.skip !== undefined || !flavour.version.startsWith('1.'))('1.37.1 accepts the FUNCTION declaration: lists it, keeps the plugin running and its charts collected', async () => {
    const a = agent!;
    const info = await a.waitFor(async () => {
      const i = await a.get<{ functions?: Record<string, { help: string; timeout: number }> }>('/api/v1/info');
      return i.functions?.['systemd-socket-units'] ? i : undefined;
    }, 15_000, 'systemd-socket-units in /api/v1/info');
    expect(info.functions!['systemd-socket-units']).toMatchObject({ timeout: 10 });
    expect(info.functions!['systemd-socket-units']!.help).toContain('Socket units');
    const first = await a.waitFor(async () => (await a.charts()).charts[SOCKET_CHART], 15_000, SOCKET_CHART);
    await a.waitFor(async () => {
      const later = (await a.charts()).charts[SOCKET_CHART]!;
      return later.last_entry > first.last_entry ? later : undefined;
    }, 15_000, 'the state chart still being collected (its last_entry moving on)');
    const procs = await processesRunning(path.join(pluginsDir, 'systemdunits/systemdunits.mjs'));
    expect(procs, 'one plugin process, never restarted by the agent').toHaveLength(1);
    const log = await a.errorLog();
    expect(log, tail(log)).not.toMatch(/systemdunits.*(disabl|FUNCTION)|FUNCTION.*(Ignoring|without providing)/i);
    // 1.37.1 (no cloud link) refuses to call plugin functions over the REST API.
    const res = await fetch(`${a.url}/api/v1/function?function=systemd-socket-units`);
    expect(res.status).toBe(403);
  });

  it.skipIf(flavour.skip !== undefined)('shows the per-socket activity charts with their contexts and unit labels, every second, with no socket_activity key', async () => {
    const a = agent!;
    const charts = await a.waitFor(async () => {
      const c = (await a.charts()).charts;
      return c[REFUSED_CHART] ? c : undefined;
    }, 30_000, REFUSED_CHART);
    const want = {
      [`${JOB}.socket_web_accepted_connections`]: 'systemd.socket_accepted_connections',
      [`${JOB}.socket_web_connections`]: 'systemd.socket_connections',
      [REFUSED_CHART]: 'systemd.socket_refused_connections',
    };
    for (const [id, context] of Object.entries(want)) {
      expect(charts[id], id).toBeDefined();
      expect(charts[id]!.context).toBe(context);
      expect(charts[id]!.family).toBe('socket activity');
      expect(charts[id]!.update_every).toBe(1);
      expect(charts[id]!.chart_labels).toMatchObject({ unit_name: 'web.socket', job: 'service_units' });
    }
    // Accept=no sockets (dbus.socket…) get none.
    expect(Object.keys(charts).filter((id) => id.endsWith('_connections')).sort()).toEqual(Object.keys(want).sort());
    const held = await open();
    await a.waitFor(async () => {
      const d = await a.data(`${JOB}.socket_web_connections`, -3, 3);
      return d.result.data.some((r) => r[1] === 1);
    }, 10_000, 'one current connection in /api/v1/data');
    held.destroy();
  });

  it.skipIf(flavour.skip !== undefined)('raises systemd_socket_refused_connections when the socket refuses connections, naming the socket', async () => {
    const a = agent!;
    const key = `${REFUSED_CHART}.${REFUSED_ALARM}`;
    const clear = await a.waitFor(async () => {
      const al = (await a.alarms()).alarms[key];
      return al && al.status === 'CLEAR' ? al : undefined;
    }, 60_000, `${key} CLEAR before any refusal (the agent first runs it once the chart holds its 10 s window)`);
    expect(clear.info).toContain('web.socket');
    // MaxConnections=1: one held connection, and systemd refuses the next ones.
    await open();
    for (let i = 0; i < 3; i++) await open();
    const warn = await a.waitFor(async () => {
      const al = (await a.alarms()).alarms[key];
      return al && al.status === 'WARNING' ? al : undefined;
    }, 30_000, `${key} WARNING`);
    expect(warn.value).toBeGreaterThan(0);
    expect(warn.info).toContain('connections refused by socket web.socket in the last minute');
  }, 180_000);

  it.skipIf(flavour.skip !== undefined)('keeps update_every and collects both sockets every second with values when a second socket exceeds the cap', async () => {
    const a = agent!;
    await sb!.writeUnit('web2.socket', `[Socket]\nListenStream=127.0.0.1:${await freePort()}\nAccept=yes\n`);
    await sb!.writeUnit('web2@.service', '[Service]\nExecStart=/bin/cat\nStandardInput=socket\n');
    await sb!.daemonReload();
    await sb!.execOk('systemctl', 'start', 'web2.socket');
    // Two Accept=yes sockets, one read a round: web (held at MaxConnections=1 by the test before)
    // is read every round, web2 once; both are charted every second all the same.
    const ids = [`${JOB}.socket_web_connections`, `${JOB}.socket_web2_connections`];
    const newest = await socketChartsCollectedEvery(a, ids, 1);
    // Values every second, not gaps.
    expect(newest.map((r) => r[1]), JSON.stringify(newest)).not.toContain(null);
    const log = await a.errorLog();
    expect(log, tail(log)).not.toMatch(/systemdunits.*disabl/i);
    expect(await processesRunning(path.join(pluginsDir, 'systemdunits/systemdunits.mjs'))).toHaveLength(1);
  }, 120_000);
});
