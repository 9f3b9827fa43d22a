// Issue 13 items 2 and 3 inside real agents (Debian's 1.37.1 and v2.10.4), installed with
// scripts/install/install.sh, watching a real systemd: a socket failing while another has been
// failed for a while is notified on its own, naming it (systemd_socket_unit_new_failure), while
// systemd_socket_unit_failed_state stays WARNING and sends nothing; two failing in one transaction
// are one notification naming both; and a unit file systemd refuses raises
// systemd_service_unit_broken naming it, which clears once the file is fixed and reloaded.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { flavours, startAgent, type Agent, type Notification } from '../../harness/agent.js';
import { startSandbox, type Sandbox } from '../../harness/sandbox.js';
import { failSocket, startSockets } from '../../harness/units.js';
import { agentContext, failSockets, healthConfigErrors, installForAgent, SOCKET_ALARM, SOCKET_ALARM_KEY, timeStatus } from '../../harness/e2e.js';

const JOB = 'systemdunits_service_units';
const COUNTS_CHART = `${JOB}.socket_units_by_state`;
const NEW_FAILURE = 'systemd_socket_unit_new_failure';
const NEW_FAILURE_KEY = `${COUNTS_CHART}.${NEW_FAILURE}`;
const LOAD_CHART = `${JOB}.service_units_by_load_state`;
const BROKEN = 'systemd_service_unit_broken';
const BROKEN_KEY = `${LOAD_CHART}.${BROKEN}`;
const SOCKETS = ['old', 'second', 'third', 'fourth'];

const newFailureNotes = (notes: Notification[]) => notes.filter((n) => n.name === NEW_FAILURE && n.status === 'WARNING');
/** The text an operator reads: v2 notifications show the summary, 1.37.1 the info. */
const text = (n: Notification) => `${n.info} | ${n.summary}`;

describe.each(await flavours())('new failures and broken unit files on $name', (flavour) => {
  let sb: Sandbox | undefined;
  let agent: Agent | undefined;
  let agentDir = '';
  let failed = false;

  afterEach((ctx) => {
    if (ctx.task.result?.state === 'fail') failed = true;
  });

  beforeAll(async () => {
    if (flavour.skip) return;
    sb = await startSandbox();
    // Loaded (so listed) because an active target wants it.
    await sb.writeUnit('holder.target', '[Unit]\nWants=typo.service\n');
    await sb.writeUnit('typo.service', '[Service]\nExecStart=/bin/sleep infinity\n');
    await startSockets(sb, SOCKETS, { noStartLimit: true, alsoStart: ['holder.target'] });
    const bus = await sb.expose();
    await failSocket(sb, 'old'); // failed long before: the agent starts with it failed

    agentDir = await mkdtemp(path.join(os.tmpdir(), 'e2e-new-failure-'));
    const { pluginsDir, healthDir } = await installForAgent(agentDir, { agentVersion: flavour.version });
    agent = await startAgent({ dir: agentDir, prefix: flavour.prefix, pluginsDir, healthDir, busAddress: bus });
  }, 240_000);

  afterAll(async () => {
    await agent?.stop({ removeDir: !failed }).catch((e) => console.error(e));
    await sb?.stop({ removeDir: !failed }).catch((e) => console.error(e));
    if (failed) console.error(`e2e new-failure (${flavour.name}): a test failed: kept ${agentDir} (agent), ${sb?.dir ?? ''} (sandbox)`);
    else if (agentDir) await rm(agentDir, { recursive: true, force: true });
  });

  it.skipIf(flavour.skip !== undefined)('an old failure raises failed_state; the new-failure alarm evaluates CLEAR and announces nothing for it', async () => {
    const a = agent!;
    await timeStatus(a, SOCKET_ALARM_KEY, 'WARNING', performance.now(), 30_000);
    await timeStatus(a, NEW_FAILURE_KEY, 'CLEAR', performance.now(), 30_000);
    // The old failure is failed_state's to tell (the agent may send it a moment after the status).
    const told = await a.waitFor(async () => (await a.notifications()).find((n) => n.name === SOCKET_ALARM && n.status === 'WARNING'), 15_000, 'the failed_state notification');
    expect(told.info).toContain('old.socket');
    // Units failed before the plugin started are not news (a plugin restart must not re-announce them).
    expect(newFailureNotes(await a.notifications())).toEqual([]);
  });

  it.skipIf(flavour.skip !== undefined)('a second socket failing is notified within 3 s, naming it, while failed_state stays WARNING', async () => {
    const a = agent!;
    const before = (await a.notifications()).length;
    const since = await failSockets(sb!, ['second']);
    const note = await a.waitFor(async () => newFailureNotes(await a.notifications()).find((n) => text(n).includes('second.socket')), 10_000, 'the new-failure notification');
    const seconds = (performance.now() - since) / 1000;
    console.log(`${flavour.name}: second.socket failed → new-failure notification seen after ${seconds.toFixed(2)} s`);
    expect(seconds, await agentContext(a)).toBeLessThan(3);
    expect(note.info).toMatch(/^socket units that just entered failed: second\.socket \(exit-code\) - /);
    expect(note.info).not.toContain('old.socket');
    if (flavour.version.startsWith('2.')) expect(note.summary).toBe('Socket units newly failed: second.socket (exit-code)');
    // The per-type alarm stayed WARNING, so it sent nothing: the new-failure alarm is what told.
    const later = (await a.notifications()).slice(before);
    expect(later.filter((n) => n.name === SOCKET_ALARM)).toEqual([]);
    expect((await a.alarms()).alarms[SOCKET_ALARM_KEY]?.status).toBe('WARNING');
  });

  it.skipIf(flavour.skip !== undefined)('every later failure is notified again (no status dedup), and failures together are one notification', async () => {
    const a = agent!;
    // Let the previous batch's WARNING clear (its CLEAR is not notified: no-clear-notification).
    await timeStatus(a, NEW_FAILURE_KEY, 'CLEAR', performance.now(), 10_000);
    const count = newFailureNotes(await a.notifications()).length;
    await failSockets(sb!, ['third', 'fourth']); // one systemctl transaction
    const note = await a.waitFor(async () => newFailureNotes(await a.notifications())[count], 10_000, 'the next new-failure notification');
    expect(note.info).toContain('third.socket (exit-code)');
    expect(note.info).toContain('fourth.socket (exit-code)');
    expect(note.info).not.toContain('second.socket');
    // No second notification for the same batch, and no CLEAR notification of this alarm.
    await timeStatus(a, NEW_FAILURE_KEY, 'CLEAR', performance.now(), 10_000);
    await new Promise((r) => setTimeout(r, 3000));
    const notes = (await a.notifications()).filter((n) => n.name === NEW_FAILURE);
    expect(notes.map((n) => n.status)).toEqual(['WARNING', 'WARNING']);
  });

  it.skipIf(flavour.skip !== undefined)('a unit file systemd refuses raises the broken alarm naming it; fixed and reloaded, it clears', async () => {
    const a = agent!;
    await a.waitFor(async () => (await a.charts()).charts[LOAD_CHART], 20_000, `${LOAD_CHART} in the API`);
    await timeStatus(a, BROKEN_KEY, 'CLEAR', performance.now(), 60_000).catch(async (err: Error) => {
      const ours = Object.keys((await a.alarms()).alarms).filter((k) => k.startsWith(JOB));
      throw new Error(`${err.message}\nalarms on the job's charts: ${ours.join(', ')}`);
    });
    await sb!.writeUnit('typo.service', '[Service]\nExecStrat=/bin/sleep infinity\n'); // no ExecStart=: bad-setting
    await sb!.daemonReload();
    const w = await timeStatus(a, BROKEN_KEY, 'WARNING', performance.now(), 20_000);
    console.log(`${flavour.name}: broken alarm WARNING ${w.seconds.toFixed(2)} s after daemon-reload`);
    const note = await a.waitFor(async () => (await a.notifications()).find((n) => n.name === BROKEN && n.status === 'WARNING'), 10_000, 'the broken notification');
    expect(note.info).toMatch(/^service units systemd could not load and will never run: typo\.service \(bad-setting\) - /);
    const chart = await a.chart(LOAD_CHART);
    expect(Object.values(chart.dimensions).map((d) => d.name)).toEqual(['loaded', 'not-found', 'bad-setting', 'error', 'masked']);
    await sb!.writeUnit('typo.service', '[Service]\nExecStart=/bin/sleep infinity\n');
    await sb!.daemonReload();
    const c = await timeStatus(a, BROKEN_KEY, 'CLEAR', performance.now(), 20_000);
    console.log(`${flavour.name}: broken alarm CLEAR ${c.seconds.toFixed(2)} s after the fix and reload`);
  });

  it.skipIf(flavour.skip !== undefined)('logs no health-configuration error for the installed file (options: and the new templates included)', async () => {
    expect(healthConfigErrors(await agent!.errorLog())).toEqual([]);
  });
});
