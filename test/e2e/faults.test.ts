// The faults of test/integration/recovery.test.ts under the real agent (Debian's Netdata 1.37.1),
// with the plugin installed by install.sh and run by the agent as user netdata: dbus-daemon
// restarted, dbus-daemon gone for 15 s, systemd frozen (SIGSTOP) for 10 s, daemon-reexec. The
// agent must never disable or restart the plugin (one plugin process throughout, nothing about it
// in error.log), and the alarm raised before the faults (a failed socket) must stay WARNING, never
// CLEAR, through them, then follow the socket's recovery and next failure as usual.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startAgent, type Agent, type AlarmStatus } from '../helpers/agent.js';
import { busGoneFor, freezeSystemd, sleep } from '../helpers/faults.js';
import { startSandbox, type Sandbox } from '../helpers/sandbox.js';
import { failSocket, writeSocket } from '../integration/units.js';
import { failSockets, installForAgent, noStartLimit, processesRunning, recoverSockets, SOCKET_ALARM_KEY, tail, timeStatus } from './e2e.js';

let sb: Sandbox | undefined;
let agent: Agent | undefined;
let agentDir: string;
let entry: string;
let failed = false;
let pluginPid: number;

afterEach((ctx) => {
  if (ctx.task.result?.state === 'fail') failed = true;
});

beforeAll(async () => {
  sb = await startSandbox();
  for (const name of ['broken', 'steady']) {
    await writeSocket(sb, name);
    await noStartLimit(sb, name);
  }
  await sb.daemonReload();
  await sb.execOk('systemctl', 'start', 'broken.socket', 'steady.socket');
  const bus = await sb.expose();
  await failSocket(sb, 'broken');
  agentDir = await mkdtemp(path.join(os.tmpdir(), 'e2e-faults-'));
  const { pluginsDir, healthDir } = await installForAgent(agentDir);
  entry = path.join(pluginsDir, 'systemdunits/systemdunits.mjs');
  agent = await startAgent({ dir: agentDir, pluginsDir, healthDir, busAddress: bus });
  await timeStatus(agent, SOCKET_ALARM_KEY, 'WARNING', performance.now(), 30_000);
  pluginPid = (await onePlugin()).pid;
}, 240_000);

afterAll(async () => {
  await agent?.stop({ removeDir: !failed }).catch((e) => console.error(e));
  await sb?.stop({ removeDir: !failed }).catch((e) => console.error(e));
  if (failed) console.error(`e2e faults: a test failed: kept ${agentDir} (agent), ${sb?.dir ?? ''} (sandbox)`);
  else if (agentDir) await rm(agentDir, { recursive: true, force: true });
});

async function onePlugin(): Promise<{ pid: number }> {
  const procs = await processesRunning(entry);
  if (procs.length !== 1) throw new Error(`expected one plugin process, found ${procs.length}: ${JSON.stringify(procs.map((p) => p.pid))}`);
  return procs[0]!;
}

/** Every line of the agent's log about our plugin being stopped, disabled or restarted. */
async function pluginTrouble(): Promise<string[]> {
  return (await agent!.errorLog())
    .split('\n')
    .filter((l) => /systemdunits/.test(l) && /Disabling it|disconnected after|exited with|killed with|does not generate useful output|called DISABLE/.test(l));
}

/** Polls the alarm every 200 ms while `fault` runs (and `settleMs` after); returns the statuses seen. */
async function statusesThrough(fault: () => Promise<unknown>, settleMs = 5000): Promise<AlarmStatus[]> {
  const seen: AlarmStatus[] = [];
  let done = false;
  const poll = (async () => {
    while (!done) {
      try {
        const s = (await agent!.alarms()).alarms[SOCKET_ALARM_KEY]?.status;
        if (s && seen.at(-1) !== s) seen.push(s);
      } catch {
        // the API is the agent's; a slow answer is not the plugin's fault
      }
      await sleep(200);
    }
  })();
  try {
    await fault();
    await sleep(settleMs);
  } finally {
    done = true;
    await poll;
  }
  return seen;
}

describe('under the real agent, a failed socket’s alarm through faults', () => {
  for (const [name, fault] of [
    ['dbus-daemon restarted', () => sb!.execOk('systemctl', 'restart', 'dbus.service')],
    ['dbus-daemon gone for 15 s', () => busGoneFor(sb!, 15_000)],
    ['systemd frozen for 10 s (SIGSTOP, then SIGCONT)', () => freezeSystemd(sb!, 10_000)],
    ['systemd re-executed (daemon-reexec)', () => sb!.execOk('systemctl', 'daemon-reexec')],
  ] as const) {
    it(`${name}: stays WARNING, same plugin process, nothing in the agent's log`, async () => {
      const seen = await statusesThrough(fault);
      const alarm = (await agent!.alarms()).alarms[SOCKET_ALARM_KEY];
      console.log(`${name}: alarm statuses seen ${seen.join(' → ')}`);
      expect(seen, 'never CLEAR (nor anything else) while the socket stays failed').toEqual(['WARNING']);
      expect(alarm?.info).toContain('broken.socket (exit-code)');
      expect(alarm?.value).toBe(1);
      expect((await onePlugin()).pid, 'the agent never restarted the plugin').toBe(pluginPid);
      const trouble = await pluginTrouble();
      expect(trouble, tail(await agent!.errorLog(), 40)).toEqual([]);
    }, 90_000);
  }

  it('after all of them, follows the socket: CLEAR on recovery, WARNING on the next failure', async () => {
    const recoveredAt = await recoverSockets(sb!, ['broken']);
    const c = await timeStatus(agent!, SOCKET_ALARM_KEY, 'CLEAR', recoveredAt, 10_000);
    const failedAt = await failSockets(sb!, ['broken']);
    const w = await timeStatus(agent!, SOCKET_ALARM_KEY, 'WARNING', failedAt, 10_000);
    console.log(`after the faults: CLEAR ${c.seconds.toFixed(2)} s after recovery, WARNING ${w.seconds.toFixed(2)} s after the failure`);
    expect(w.alarm.info).toContain('broken.socket (exit-code)');
    expect(c.seconds).toBeLessThanOrEqual(5);
    expect(w.seconds).toBeLessThanOrEqual(5);
    expect((await onePlugin()).pid).toBe(pluginPid);
    expect(await pluginTrouble()).toEqual([]);
  }, 60_000);
});
