// Issue 13 item 1 inside real agents (Debian's 1.37.1 and v2.10.4 when present), installed with
// scripts/install/install.sh: a service that exits 1 every 200 ms with Restart=always and no start
// limit raises systemd_service_unit_restart_loop, whose notification names it with why it crashed,
// and the alarm clears once the service is stable. The job's restart_loop_window is 5 s here, so the
// CLEAR comes within seconds (the shipped default is 60 s); `delay: down` only holds back the CLEAR
// notification, not the status.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { netdataV2, startAgent, type Agent } from '../../harness/agent.js';
import { startSandbox, type Sandbox } from '../../harness/sandbox.js';
import { agentContext, installForAgent, timeStatus } from '../../harness/e2e.js';

const CHART = 'systemdunits_service_units.service_unit_restarts';
const ALARM = 'systemd_service_unit_restart_loop';
const KEY = `${CHART}.${ALARM}`;
const WINDOW = 5;

const V2 = await netdataV2();
if (V2.skip) console.log(`[v2] restart loop e2e on the v2 agent skipped: ${V2.skip}`);

let sb: Sandbox | undefined;
let bus = '';
let failed = false;

afterEach((ctx) => {
  if (ctx.task.result?.state === 'fail') failed = true;
});

beforeAll(async () => {
  sb = await startSandbox();
  // Exits 1 every 200 ms and is restarted 200 ms later, with no start limit, until /run/crashy.ok exists.
  await sb.writeUnit(
    'crashy.service',
    '[Unit]\nStartLimitIntervalSec=0\n[Service]\nExecStart=/bin/sh -c "test -e /run/crashy.ok && exec sleep infinity; exit 1"\nRestart=always\nRestartSec=200ms\n',
  );
  await sb.daemonReload();
  bus = await sb.expose();
}, 60_000);

afterAll(async () => {
  await sb?.stop({ removeDir: !failed }).catch((e) => console.error(e));
});

const agents = [
  { name: 'netdata 1.37.1', skip: undefined as string | undefined, prefix: undefined as string | undefined, version: undefined as string | undefined },
  { name: `${V2.name} ${V2.version}`, skip: V2.skip, prefix: V2.prefix, version: V2.version },
];

describe.each(agents)('the restart loop alarm on $name', ({ name, skip, prefix, version }) => {
  let agent: Agent | undefined;
  let agentDir = '';

  beforeAll(async () => {
    if (skip) return;
    agentDir = await mkdtemp(path.join(os.tmpdir(), 'e2e-restarts-'));
    await mkdir(path.join(agentDir, 'etc'), { recursive: true });
    await writeFile(path.join(agentDir, 'etc/systemdunits.conf'), `jobs:\n  - name: service_units\n    restart_loop_window: ${WINDOW}\n`, { mode: 0o644 });
    const { pluginsDir, healthDir } = await installForAgent(agentDir, version ? { agentVersion: version } : {});
    agent = await startAgent({ dir: agentDir, prefix, pluginsDir, healthDir, busAddress: bus });
    await sb!.exec('rm', '-f', '/run/crashy.ok');
  }, 240_000);

  afterAll(async () => {
    await sb?.exec('systemctl', 'stop', 'crashy.service');
    await agent?.stop({ removeDir: !failed }).catch((e) => console.error(e));
    if (failed) console.error(`e2e restarts: a test failed: kept ${agentDir} (agent)`);
    else if (agentDir) await rm(agentDir, { recursive: true, force: true });
  });

  it.skipIf(skip !== undefined)('raises within seconds, names the service and its exit, and clears once it is stable', async () => {
    const a = agent!;
    // Evaluated (CLEAR) before the loop starts: the chart and its variables reached the alarm.
    await a.waitFor(async () => {
      const x = (await a.alarms()).alarms[KEY];
      return x && x.status === 'CLEAR' ? x : undefined;
    }, 30_000, `${KEY} evaluated`).catch(async (err: Error) => {
      throw new Error(`${err.message}${await agentContext(a)}`);
    });
    const started = performance.now();
    await sb!.execOk('systemctl', 'start', 'crashy.service');
    const w = await timeStatus(a, KEY, 'WARNING', started, 20_000, 50);
    console.log(`${name}: restart loop WARNING ${w.seconds.toFixed(2)} s after systemctl start (value ${w.alarm.value})`);
    expect(w.alarm.value!).toBeGreaterThan(3); // the default restart_loop_threshold
    const note = await a.waitFor(async () => (await a.notifications()).filter((n) => n.name === ALARM && n.status === 'WARNING').at(-1), 20_000, 'the WARNING notification');
    expect(note.info, note.args.join(' | ')).toMatch(
      /^services restarted more than the restart_loop_threshold of the job within its restart_loop_window: crashy\.service \d+ restarts \(exit-code status 1\/FAILURE\) - run systemctl status/,
    );
    if (version) expect(note.summary).toMatch(/^Service restart loop: crashy\.service \d+ restarts \(exit-code status 1\/FAILURE\)$/);
    // Each crash passes through `failed` (systemd 252): the failed-state notification says how it exited too.
    const failedNote = await a.waitFor(
      async () => (await a.notifications()).filter((n) => n.name === 'systemd_service_unit_failed_state' && n.status === 'WARNING').at(-1),
      20_000,
      'the failed-state notification',
    );
    expect(failedNote.info, failedNote.args.join(' | ')).toContain('service units failed: crashy.service (exit-code status 1/FAILURE)');
    // Fixed: the next start runs for good; the window forgets the loop.
    await sb!.execOk('touch', '/run/crashy.ok');
    const fixed = performance.now();
    const c = await timeStatus(a, KEY, 'CLEAR', fixed, 30_000, 100);
    console.log(`${name}: restart loop CLEAR ${c.seconds.toFixed(2)} s after the fix (window ${WINDOW} s)`);
    expect((await sb!.execOk('systemctl', 'show', '-p', 'SubState', '--value', 'crashy.service')).stdout.trim()).toBe('running');
    // The label names it until the window has forgotten every restart.
    await a.waitFor(async () => ((await a.chart(CHART)).chart_labels?.restarting_units === 'none' ? true : undefined), (WINDOW + 5) * 1000, 'restarting_units none');
  }, 120_000);
});
