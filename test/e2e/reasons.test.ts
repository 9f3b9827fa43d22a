// Issue 6 items 2-4 inside a real Netdata 1.37.1 agent, installed with scripts/install/install.sh: the new
// charts as the agent's API shows them, the failed-socket notification carrying the state of the
// service the socket triggers, its recovery (CLEAR) notification naming the unit as recovered, and
// the flapping alarm firing and notifying the flapping unit.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startAgent, type Agent } from '../../harness/agent.js';
import { startSandbox, type Sandbox } from '../../harness/sandbox.js';
import { failSocket, freePort, recoverSocket, startSockets } from '../../harness/units.js';
import { crashText } from '../../plugin/units/exits.js';
import { agentContext, installForAgent, SOCKET_ALARM, SOCKET_ALARM_KEY, SOCKET_CHART, timeStatus } from '../../harness/e2e.js';

const JOB = 'systemdunits_service_units';
const COUNTS_CHART = `${JOB}.socket_units_by_state`;
const TRANSITIONS_CHART = `${JOB}.socket_unit_state_transitions`;
const FLAPPING = 'systemd_socket_units_flapping';
const FLAPPING_KEY = `${TRANSITIONS_CHART}.${FLAPPING}`;
const THRESHOLD = 10; // above what limit.socket's failure adds (about 5), below 7 flap cycles (14 or more)

let sb: Sandbox | undefined;
let agent: Agent | undefined;
let agentDir = '';
let port = 0;
let failed = false;

afterEach((ctx) => {
  if (ctx.task.result?.state === 'fail') failed = true;
});

beforeAll(async () => {
  sb = await startSandbox();
  port = await freePort();
  await sb.writeUnit('limit.socket', `[Unit]\nDescription=socket whose service cannot start\n[Socket]\nListenStream=127.0.0.1:${port}\n`);
  await sb.writeUnit('limit.service', '[Unit]\nDescription=fails at once\nStartLimitBurst=2\nStartLimitIntervalSec=60\n[Service]\nExecStart=/bin/false\n');
  await startSockets(sb, ['flap'], { noStartLimit: true, alsoStart: ['limit.socket'] });
  const bus = await sb.expose();

  agentDir = await mkdtemp(path.join(os.tmpdir(), 'e2e-reasons-'));
  // The user's config, in place before install.sh (which keeps an existing one): a low threshold.
  await mkdir(path.join(agentDir, 'etc'), { recursive: true });
  await writeFile(path.join(agentDir, 'etc/systemdunits.conf'), `jobs:\n  - name: service_units\n    flapping_threshold: ${THRESHOLD}\n`, { mode: 0o644 });
  const { pluginsDir, healthDir } = await installForAgent(agentDir);
  // The shipped `delay: down 1m` holds a CLEAR notification back a minute: 2 s here, so the
  // recovery notification test does not keep the suite waiting (the text is the same).
  const health = path.join(healthDir, 'systemdunits.conf');
  await writeFile(health, (await readFile(health, 'utf8')).replace(/delay: down 1m /g, 'delay: down 2s '));
  agent = await startAgent({ dir: agentDir, pluginsDir, healthDir, busAddress: bus });
}, 240_000);

afterAll(async () => {
  await agent?.stop({ removeDir: !failed }).catch((e) => console.error(e));
  await sb?.stop({ removeDir: !failed }).catch((e) => console.error(e));
  if (failed) console.error(`e2e reasons: a test failed: kept ${agentDir} (agent), ${sb?.dir ?? ''} (sandbox)`);
  else if (agentDir) await rm(agentDir, { recursive: true, force: true });
});

describe('new charts and alarms in a 1.37.1 agent', () => {
  it('shows units by state and state transitions, with the flapping alarm bound and CLEAR', async () => {
    const a = agent!;
    const counts = await a.waitFor(async () => (await a.charts()).charts[COUNTS_CHART], 20_000, COUNTS_CHART);
    expect(counts).toMatchObject({ context: 'systemd.socket_units_by_state', family: 'socket', units: 'units', chart_type: 'stacked' });
    expect(Object.values(counts.dimensions).map((d) => d.name)).toEqual(['active', 'failed', 'inactive', 'starting', 'stopping']);
    const transitions = await a.waitFor(async () => (await a.charts()).charts[TRANSITIONS_CHART], 10_000, TRANSITIONS_CHART);
    expect(transitions).toMatchObject({ context: 'systemd.socket_unit_state_transitions', units: 'transitions' });
    // The job's threshold reached the alarm: it evaluates (not UNDEFINED) to CLEAR.
    const alarm = await a.waitFor(async () => {
      const x = (await a.alarms()).alarms[FLAPPING_KEY];
      return x && x.status !== 'UNINITIALIZED' ? x : undefined;
    }, 30_000, `${FLAPPING_KEY} evaluated`);
    expect(alarm.status, `${JSON.stringify(alarm)}${await agentContext(a)}`).toBe('CLEAR');
    expect(alarm.value).toBe(0);
    expect(alarm.warn).toContain('flapping_threshold');
    const chart = await a.chart(TRANSITIONS_CHART);
    expect(chart.chart_variables).toMatchObject({ flapping_threshold: THRESHOLD, transitions_5m: 0 });
  });

  it('notifies a failed socket with the state of the service it triggers', async () => {
    const a = agent!;
    // One connection left pending: systemd starts limit.service until its start limit, then fails the socket.
    const client = connect(port, '127.0.0.1');
    client.on('error', () => {});
    try {
      await timeStatus(a, SOCKET_ALARM_KEY, 'WARNING', performance.now(), 15_000);
    } finally {
      client.destroy();
    }
    const show = async (p: string) => (await sb!.execOk('systemctl', 'show', '-P', p, 'limit.service')).stdout.trim();
    const result = await show('Result');
    // how its main process last ended, as units/exits.ts words it for a label (unit-tested there)
    const exit = { code: Number(await show('ExecMainCode')), status: Number(await show('ExecMainStatus')) };
    const want = `limit.socket (service-start-limit-hit / limit.service failed ${crashText(result, exit, ' ')})`;
    const note = await a.waitFor(async () => {
      const n = (await a.notifications()).filter((x) => x.name === SOCKET_ALARM && x.chart === SOCKET_CHART && x.status === 'WARNING');
      return n.at(-1);
    }, 15_000, 'the WARNING notification');
    // 1.37.1 hands the expanded info text to the notification script as its 18th argument.
    expect(note.info, note.args.join(' | ')).toBe(`socket units failed: ${want} - run systemctl status and journalctl -u on each - fix the cause - then systemctl restart it`);
    expect((await a.errorLog()).includes('limit.socket failed (Result=service-start-limit-hit); it triggers limit.service, which is failed/')).toBe(true);
  });

  it('sends a recovery (CLEAR) notification that names the unit as recovered and does not tell to restart it', async () => {
    const a = agent!;
    await sb!.execOk('systemctl', 'reset-failed', 'limit.socket', 'limit.service');
    await sb!.execOk('systemctl', 'start', 'limit.socket');
    await timeStatus(a, SOCKET_ALARM_KEY, 'CLEAR', performance.now(), 15_000);
    // The alarm's `delay: down` (2 s in this test's copy of the file) holds the CLEAR notification back.
    const note = await a.waitFor(async () => {
      const n = (await a.notifications()).filter((x) => x.name === SOCKET_ALARM && x.chart === SOCKET_CHART && x.status === 'CLEAR');
      return n.at(-1);
    }, 120_000, 'the CLEAR notification');
    expect(note.info, note.args.join(' | ')).toBe('socket units recovered: limit.socket - no unit of this chart is failed now');
    expect(note.info).not.toMatch(/restart|label:/);
  }, 150_000);

  it('warns when sockets flap more than the job’s threshold in 5 minutes, and names the unit', async () => {
    const a = agent!;
    // At least 2 counted changes a cycle (failed, and active again: a busy systemd merges the
    // steps between into one signal, or into the unit's unload and load): 7 cycles clear the threshold.
    for (let i = 0; i < 7; i++) {
      await failSocket(sb!, 'flap');
      await recoverSocket(sb!, 'flap');
    }
    const w = await timeStatus(a, FLAPPING_KEY, 'WARNING', performance.now(), 30_000, 200).catch(async (err: Error) => {
      const vars = (await a.chart(TRANSITIONS_CHART).catch(() => undefined))?.chart_variables;
      throw new Error(`${err.message}\nchart variables of ${TRANSITIONS_CHART}: ${JSON.stringify(vars)}`);
    });
    expect(w.alarm.value!).toBeGreaterThan(THRESHOLD);
    console.log(`flapping alarm: WARNING at ${w.alarm.value} transitions in 5 min (threshold ${THRESHOLD})`);
    const note = await a.waitFor(async () => {
      const n = (await a.notifications()).filter((x) => x.name === FLAPPING && x.status === 'WARNING');
      return n.at(-1);
    }, 20_000, 'the flapping notification');
    expect(note.info, note.args.join(' | ')).toContain('socket units changed state more often in 5 minutes than the flapping_threshold of the job; latest: flap.socket - run systemctl status');
    expect(note.info).toContain('latest: flap.socket - run systemctl status');
    expect(note.info).not.toContain('label:');
  });
});
