// Socket activity on a Netdata v2 agent (v2.10.4, see netdataV2()), as test/e2e/activity.test.ts
// does on 1.37.1: on by default (the installed config sets no socket_activity key), and past
// socket_activity_max_sockets the sockets take turns: the agent takes the charts' redefined, longer
// update_every and keeps storing values. Skipped, saying why, without the v2 agent.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { netdataV2, startAgent, type Agent } from '../../harness/agent.js';
import { startSandbox, type Sandbox } from '../../harness/sandbox.js';
import { freePort } from '../../harness/units.js';
import { installForAgent, processesRunning, socketChartsTakingTurns } from '../../harness/e2e.js';

const V2 = await netdataV2();
if (V2.skip) console.log(`[v2] socket activity e2e on the v2 agent skipped: ${V2.skip}`);

const JOB = 'systemdunits_service_units';
let sb: Sandbox | undefined;
let agent: Agent | undefined;
let agentDir: string;
let pluginsDir: string;
let failed = false;

afterEach((ctx) => {
  if (ctx.task.result?.state === 'fail') failed = true;
});

async function acceptSocket(name: string): Promise<void> {
  await sb!.writeUnit(`${name}.socket`, `[Socket]\nListenStream=127.0.0.1:${await freePort()}\nAccept=yes\n`);
  await sb!.writeUnit(`${name}@.service`, '[Service]\nExecStart=/bin/cat\nStandardInput=socket\n');
}

describe.skipIf(V2.skip !== undefined)(`socket activity on ${V2.name} ${V2.version}`, () => {
  beforeAll(async () => {
    sb = await startSandbox();
    await acceptSocket('web');
    await sb.daemonReload();
    await sb.execOk('systemctl', 'start', 'web.socket');
    const bus = await sb.expose();
    agentDir = await mkdtemp(path.join(os.tmpdir(), 'e2e-activity-v2-'));
    const inst = await installForAgent(agentDir, { agentVersion: V2.version });
    pluginsDir = inst.pluginsDir;
    // No socket_activity key: on by default. Every second, one socket a round (to make them take turns).
    await writeFile(path.join(inst.configDir, 'systemdunits.conf'), 'jobs:\n  - name: service_units\n    socket_activity_every: 1\n    socket_activity_max_sockets: 1\n');
    agent = await startAgent({ dir: agentDir, prefix: V2.prefix, pluginsDir, healthDir: inst.healthDir, busAddress: bus, enable: ['systemdunits'] });
  }, 240_000);

  afterAll(async () => {
    await agent?.stop({ removeDir: !failed }).catch((e) => console.error(e));
    await sb?.stop({ removeDir: !failed }).catch((e) => console.error(e));
    if (failed) console.error(`e2e activity v2: a test failed: kept ${agentDir}, ${sb?.dir ?? ''}`);
    else if (agentDir) await rm(agentDir, { recursive: true, force: true });
  });

  it('charts the Accept=yes socket without any socket_activity key, every second', async () => {
    const a = agent!;
    const id = `${JOB}.socket_web_connections`;
    const c = await a.waitFor(async () => (await a.charts()).charts[id], 30_000, id);
    expect(c.update_every).toBe(1);
    expect(c.chart_labels).toMatchObject({ unit_name: 'web.socket', job: 'service_units' });
  });

  it('takes the longer update_every when a second socket makes them take turns, and keeps collecting', async () => {
    const a = agent!;
    await acceptSocket('web2');
    await sb!.daemonReload();
    await sb!.execOk('systemctl', 'start', 'web2.socket');
    const ids = [`${JOB}.socket_web_connections`, `${JOB}.socket_web2_connections`];
    const newest = await socketChartsTakingTurns(a, ids, 2);
    // Values at the new interval, not gaps.
    expect(newest.map((r) => r[1]), JSON.stringify(newest)).not.toContain(null);
    expect(await processesRunning(path.join(pluginsDir, 'systemdunits/systemdunits.mjs'))).toHaveLength(1);
  }, 120_000);
});
