// The faults of test/integration/recovery.test.ts under the real agents (Debian's Netdata 1.37.1
// and, where it is available, the v2.10.4 one, side by side on one sandbox: each fault happens
// once, to both), with the plugin installed by install.sh and run by each agent as user netdata:
// dbus-daemon restarted, dbus-daemon gone for 15 s, systemd frozen (SIGSTOP) for 10 s,
// daemon-reexec. No agent may disable or restart the plugin (one plugin process throughout,
// nothing about it in its log), and the alarm raised before the faults (a failed socket) must stay
// WARNING, never CLEAR, through them, then follow the socket's recovery and next failure as usual.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { flavours, startAgent, type Agent, type AlarmStatus, type Flavour } from '../../harness/agent.js';
import { busGoneFor, freezeSystemd } from '../../harness/faults.js';
import { sleep } from '../../harness/wait.js';
import { startSandbox, type Sandbox } from '../../harness/sandbox.js';
import { failSocket, startSockets } from '../../harness/units.js';
import { failSockets, installForAgent, processesRunning, recoverSockets, SOCKET_ALARM_KEY, tail, timeStatus } from '../../harness/e2e.js';

/** One agent under test, with the plugin it runs. */
interface Subject {
  flavour: Flavour;
  agent: Agent;
  dir: string;
  entry: string;
  pluginPid: number;
}

const FLAVOURS = (await flavours()).filter((f) => {
  if (f.skip) console.log(`[faults] ${f.name} skipped: ${f.skip}`);
  return f.skip === undefined;
});
let sb: Sandbox | undefined;
const subjects: Subject[] = [];
let failed = false;

afterEach((ctx) => {
  if (ctx.task.result?.state === 'fail') failed = true;
});

beforeAll(async () => {
  sb = await startSandbox();
  await startSockets(sb, ['broken', 'steady'], { noStartLimit: true });
  const bus = await sb.expose();
  await failSocket(sb, 'broken');
  for (const flavour of FLAVOURS) {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'e2e-faults-'));
    const { pluginsDir, healthDir } = await installForAgent(dir, { agentVersion: flavour.version });
    const entry = path.join(pluginsDir, 'systemdunits/systemdunits.mjs');
    const agent = await startAgent({ prefix: flavour.prefix, dir, pluginsDir, healthDir, busAddress: bus });
    subjects.push({ flavour, agent, dir, entry, pluginPid: 0 });
  }
  for (const s of subjects) {
    await timeStatus(s.agent, SOCKET_ALARM_KEY, 'WARNING', performance.now(), 30_000);
    s.pluginPid = (await onePlugin(s)).pid;
  }
}, 240_000);

afterAll(async () => {
  for (const s of subjects) await s.agent.stop({ removeDir: !failed }).catch((e) => console.error(e));
  await sb?.stop({ removeDir: !failed }).catch((e) => console.error(e));
  if (failed) console.error(`e2e faults: a test failed: kept ${subjects.map((s) => s.dir).join(', ')} (agents), ${sb?.dir ?? ''} (sandbox)`);
});

async function onePlugin(s: Subject): Promise<{ pid: number }> {
  const procs = await processesRunning(s.entry);
  if (procs.length !== 1) throw new Error(`${s.flavour.name}: expected one plugin process, found ${procs.length}: ${JSON.stringify(procs.map((p) => p.pid))}`);
  return procs[0]!;
}

/** Every line of the agent's log about our plugin being stopped, disabled or restarted. */
async function pluginTrouble(s: Subject): Promise<string[]> {
  return (await s.agent.errorLog())
    .split('\n')
    .filter((l) => /systemdunits/.test(l) && /Disabling it|disconnected after|exited with|exited abnormally|killed with|does not generate useful output|called DISABLE/.test(l));
}

/** Polls each agent's alarm every 200 ms while `fault` runs (and `settleMs` after); returns the
 * statuses each one showed. */
async function statusesThrough(fault: () => Promise<unknown>, settleMs = 5000): Promise<AlarmStatus[][]> {
  const seen: AlarmStatus[][] = subjects.map(() => []);
  let done = false;
  const poll = (async () => {
    while (!done) {
      for (const [i, s] of subjects.entries()) {
        try {
          const st = (await s.agent.alarms()).alarms[SOCKET_ALARM_KEY]?.status;
          if (st && seen[i]!.at(-1) !== st) seen[i]!.push(st);
        } catch {
          // the API is the agent's; a slow answer is not the plugin's fault
        }
      }
      await sleep(200);
    }
  })();
  try {
    await fault();
    await sleep(settleMs); // after the fault too, the status must not move
  } finally {
    done = true;
    await poll;
  }
  return seen;
}

describe('under the real agents, a failed socket’s alarm through faults', () => {
  for (const [name, fault] of [
    ['dbus-daemon restarted', () => sb!.execOk('systemctl', 'restart', 'dbus.service')],
    ['dbus-daemon gone for 15 s', () => busGoneFor(sb!, 15_000)],
    ['systemd frozen for 10 s (SIGSTOP, then SIGCONT)', () => freezeSystemd(sb!, 10_000)],
    ['systemd re-executed (daemon-reexec)', () => sb!.execOk('systemctl', 'daemon-reexec')],
  ] as const) {
    it(`${name}: stays WARNING, same plugin process, nothing in the agent's log`, async () => {
      const seen = await statusesThrough(fault);
      for (const [i, s] of subjects.entries()) {
        const alarm = (await s.agent.alarms()).alarms[SOCKET_ALARM_KEY];
        console.log(`${name} (${s.flavour.name}): alarm statuses seen ${seen[i]!.join(' → ')}`);
        expect(seen[i], `${s.flavour.name}: never CLEAR (nor anything else) while the socket stays failed`).toEqual(['WARNING']);
        expect(alarm?.info).toContain('broken.socket (exit-code)');
        expect(alarm?.value).toBe(1);
        expect((await onePlugin(s)).pid, `${s.flavour.name}: the agent never restarted the plugin`).toBe(s.pluginPid);
        expect(await pluginTrouble(s), tail(await s.agent.errorLog(), 40)).toEqual([]);
      }
    }, 90_000);
  }

  it('after all of them, follows the socket: CLEAR on recovery, WARNING on the next failure', async () => {
    const recoveredAt = await recoverSockets(sb!, ['broken']);
    const clear = await Promise.all(subjects.map((s) => timeStatus(s.agent, SOCKET_ALARM_KEY, 'CLEAR', recoveredAt, 10_000)));
    const failedAt = await failSockets(sb!, ['broken']);
    const warn = await Promise.all(subjects.map((s) => timeStatus(s.agent, SOCKET_ALARM_KEY, 'WARNING', failedAt, 10_000)));
    for (const [i, s] of subjects.entries()) {
      const [c, w] = [clear[i]!, warn[i]!];
      console.log(`after the faults (${s.flavour.name}): CLEAR ${c.seconds.toFixed(2)} s after recovery, WARNING ${w.seconds.toFixed(2)} s after the failure`);
      expect(w.alarm.info).toContain('broken.socket (exit-code)');
      expect(c.seconds).toBeLessThanOrEqual(5);
      expect(w.seconds).toBeLessThanOrEqual(5);
      expect((await onePlugin(s)).pid).toBe(s.pluginPid);
      expect(await pluginTrouble(s)).toEqual([]);
    }
  }, 60_000);
});
