// The plugin inside a real Netdata v2 agent (v2.10.4, ../shared/netdata-v2, see netdataV2()), as
// test/e2e/agent.test.ts does on Debian's 1.37.1: installed with scripts/install/install.sh for that
// version, watching a real systemd (a sandbox), with the agent's stock alarms on, and beside a
// fixture that speaks go.d's `systemdunits` chart shapes (test/e2e/fixtures/go.d.plugin: this v2
// build has no go.d). Everything is checked through the agent's REST API, its process table, its
// log and its notification hook. One agent for the whole file, stopped and started again at the
// end to see how the plugin exits at v2's shutdown. Skipped, saying why, without the v2 agent.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { netdataV2, startAgent, type Agent, type Chart, type Notification } from '../../harness/agent.js';
import { startSandbox, type Sandbox } from '../../harness/sandbox.js';
import { failSocket, startSockets } from '../../harness/units.js';
import {
  addGoDFixture,
  agentContext,
  atWallPhase,
  diffSnapshots,
  EXPECTED_VALUE,
  failSockets,
  GO_D_CHARTS,
  healthConfigErrors,
  install,
  installForAgent,
  listUnits,
  processesRunning,
  recoverSockets,
  snapshot,
  SOCKET_ALARM,
  SOCKET_ALARM_KEY,
  SOCKET_CHART,
  STATE_LEGEND,
  tail,
  timeStatus,
  unescapeUnitName,
} from '../../harness/e2e.js';

const V2 = await netdataV2();
if (V2.skip) console.log(`[v2] e2e on the v2 agent skipped: ${V2.skip}`);

const SOCKETS = ['listening', 'broken', 'first', 'second'];

let sb: Sandbox | undefined;
let bus: string;
let agentDir: string;
let pluginsDir: string;
let healthDir: string;
let installOutput = '';
let agent: Agent | undefined;
let failed = false;

afterEach((ctx) => {
  if (ctx.task.result?.state === 'fail') failed = true;
});

const entry = () => path.join(pluginsDir, 'systemdunits/systemdunits.mjs');

function warnings(notes: Notification[]): Notification[] {
  return notes.filter((n) => n.name === SOCKET_ALARM && n.chart === SOCKET_CHART && n.status === 'WARNING');
}

/** Lines of the agent's log saying our plugin (its launcher's path) ended badly or was disabled. */
function pluginTrouble(log: string): string[] {
  const launcher = path.join(pluginsDir, 'systemdunits.plugin');
  return log.split('\n').filter((l) => l.includes(launcher) && /abnormally|Disabling|error code|killed/i.test(l));
}

describe.skipIf(V2.skip !== undefined)(`the plugin on ${V2.name} ${V2.version}`, () => {
  beforeAll(async () => {
    sb = await startSandbox();
    await startSockets(sb, SOCKETS, { noStartLimit: true });
    bus = await sb.expose();
    await failSocket(sb, 'broken'); // failed before the agent starts: the alarm fires at once

    agentDir = await mkdtemp(path.join(os.tmpdir(), 'e2e-v2-'));
    ({ pluginsDir, healthDir, output: installOutput } = await installForAgent(agentDir, { agentVersion: V2.version }));
    // go.d's collector beside ours, as on a v2 host (its plugin name and module are what matter)
    await addGoDFixture(pluginsDir);

    agent = await startAgent({
      dir: agentDir,
      prefix: V2.prefix,
      pluginsDir,
      healthDir,
      busAddress: bus,
      stockHealth: true,
      enable: ['systemdunits', 'go.d'],
    });
  }, 240_000);

  afterAll(async () => {
    await agent?.stop({ removeDir: false }).catch((e) => console.error(e));
    await sb?.stop({ removeDir: !failed }).catch((e) => console.error(e));
    if (failed) console.error(`e2e v2: a test failed: kept ${agentDir} (agent), ${sb?.dir ?? ''} (sandbox)`);
    else if (agentDir) await rm(agentDir, { recursive: true, force: true });
  });

  it('was installed for the v2 agent: ${label:NAME} in info and summary', async () => {
    expect(installOutput, installOutput).toContain(`installed for Netdata ${V2.version}`);
    const installed = await readFile(path.join(healthDir, 'systemdunits.conf'), 'utf8');
    expect(installed).toMatch(/^\s*info: socket units \$\{label:failure_summary\} - \$\{label:failure_advice\}$/m);
    expect(installed).toMatch(/^\s*summary: Socket units \$\{label:failure_summary\}$/m);
    expect(agent!.version).toBe(V2.version);
  });

  it('is started by the agent itself, as user netdata', async () => {
    const a = agent!;
    const procs = await a.waitFor(async () => {
      const p = await processesRunning(entry());
      return p.length > 0 ? p : undefined;
    }, 15_000, `a process running ${entry()}`);
    expect(procs.length, JSON.stringify(procs.map((p) => p.cmdline))).toBe(1);
    expect(procs[0]!.user).toBe('netdata');
    expect(procs[0]!.ancestors, `the agent (pid ${a.pid}) is its ancestor`).toContain(a.pid);
    expect(procs[0]!.cmdline.slice(-2)).toEqual([entry(), '1']);
    expect(procs[0]!.environ.NETDATA_VERSION).toMatch(new RegExp(`^v?${V2.version.replaceAll('.', '\\.')}`));
  });

  it('charts one dimension per socket unit, with the documented chart metadata', async () => {
    const a = agent!;
    const chart = await a.waitFor(async () => (await a.charts()).charts[SOCKET_CHART], 15_000, `chart ${SOCKET_CHART}`);
    expect(chart.context).toBe('systemd.socket_unit_state');
    expect(chart.title).toContain(STATE_LEGEND);
    expect(chart.units).toBe('state');
    expect(chart.plugin).toBe('systemdunits.plugin');
    const units = (await listUnits(sb!, 'socket')).filter((u) => u.load !== 'not-found');
    const expected = units.map((u) => unescapeUnitName(u.name)).sort();
    for (const name of SOCKETS) expect(expected).toContain(`${name}.socket`);
    expect(Object.values(chart.dimensions).map((d) => d.name).sort()).toEqual(expected);
  });

  it('shows systemd state values in /api/v1/data', async () => {
    const a = agent!;
    const units = (await listUnits(sb!, 'socket')).filter((u) => u.load !== 'not-found');
    const want = Object.fromEntries(units.map((u) => [unescapeUnitName(u.name), EXPECTED_VALUE[u.active]]));
    expect(want['broken.socket']).toBe(5);
    let last: Record<string, number | null> = {};
    try {
      await a.waitFor(async () => {
        const d = await a.data(SOCKET_CHART, -5, 5);
        const row = d.result.data.find((r) => r.slice(1).every((v) => v !== null));
        if (!row) return false;
        last = Object.fromEntries(d.result.labels.slice(1).map((name, i) => [name, row[i + 1] ?? null]));
        return JSON.stringify(Object.entries(last).sort()) === JSON.stringify(Object.entries(want).sort());
      }, 10_000, `/api/v1/data of ${SOCKET_CHART} to match systemd`);
    } catch (err) {
      throw new Error(`${(err as Error).message}\nwanted: ${JSON.stringify(want)}\nlast row: ${JSON.stringify(last)}`);
    }
  });

  it('gives v2’s dashboard the units-by-state dimensions in an order whose sort puts active, failed first (its colours)', async () => {
    // v2's dashboard (@netdata/charts 6.10.6+, updateColors) colours the dimensions of a response's
    // summary in the sorted order of their ids, from its palette: slot 0 green and slot 1 red on
    // its dark theme. /api/v3 gives a context's dimensions by name there, all of them even with
    // `nonzero` (which the dashboard sends), in the chart's order (what older dashboards coloured).
    const a = agent!;
    const context = 'systemd.socket_units_by_state';
    const listed = async (options: string) => {
      const d = await a.get<{ summary?: { dimensions?: { id: string }[] } }>(
        `/api/v3/data?scope_contexts=${context}&contexts=${context}&after=-10&points=1&format=json2&options=${encodeURIComponent(options)}`,
      );
      return (d.summary?.dimensions ?? []).map((dim) => dim.id);
    };
    const ids = await a.waitFor(async () => {
      const l = await listed('jsonwrap|nonzero|minify');
      return l.length === 5 ? l : undefined;
    }, 15_000, `/api/v3/data of ${context}`);
    expect(ids).toEqual(['active', 'failed', 'inactive', 'starting', 'stopping']);
    expect([...ids].sort()).toEqual(ids);
    expect(await listed('jsonwrap|minify')).toEqual(ids);
  });

  it('raises the alarm for the failed socket, from the installed file, and notifies it with unit and Result', async () => {
    const a = agent!;
    const { alarm } = await timeStatus(a, SOCKET_ALARM_KEY, 'WARNING', performance.now(), 15_000);
    expect(alarm.info).toContain('socket units failed: broken.socket (exit-code) - run systemctl status');
    expect(alarm.source, 'the installed file, not the stock one').toContain(path.join(healthDir, 'systemdunits.conf'));
    const [note] = await a.waitFor(async () => {
      const w = warnings(await a.notifications());
      return w.length > 0 ? w : undefined;
    }, 10_000, 'a WARNING notification');
    // v2's notifications show the summary; both name the unit and systemd's Result
    expect(note!.summary, `notification: ${note!.args.join(' | ')}`).toBe('Socket units failed: broken.socket (exit-code)');
    expect(note!.info).toContain('socket units failed: broken.socket (exit-code) - run systemctl status');
    for (const text of [note!.summary, note!.info]) expect(text).not.toContain('label:');
  });

  it('goes WARNING and CLEAR within 3 s of a socket failing and recovering (3 cycles), stock alarms on', async () => {
    const a = agent!;
    await recoverSockets(sb!, ['broken']);
    await timeStatus(a, SOCKET_ALARM_KEY, 'CLEAR', performance.now(), 10_000);
    const phases = [
      { fail: 0.05, recover: 0.55 },
      { fail: 0.4, recover: 0.9 },
      { fail: 0.75, recover: 0.25 },
    ];
    const warn: number[] = [];
    const clear: number[] = [];
    for (const [i, phase] of phases.entries()) {
      await atWallPhase(phase.fail);
      const failedAt = await failSockets(sb!, ['broken']);
      const w = await timeStatus(a, SOCKET_ALARM_KEY, 'WARNING', failedAt, 10_000);
      await atWallPhase(phase.recover);
      const recoveredAt = await recoverSockets(sb!, ['broken']);
      const c = await timeStatus(a, SOCKET_ALARM_KEY, 'CLEAR', recoveredAt, 10_000);
      warn.push(w.seconds);
      clear.push(c.seconds);
      console.log(`[v2] alarm timing (cycle ${i + 1}): WARNING after ${w.seconds.toFixed(2)} s, CLEAR after ${c.seconds.toFixed(2)} s`);
    }
    const f = (xs: number[]) => `min ${Math.min(...xs).toFixed(2)} s, max ${Math.max(...xs).toFixed(2)} s`;
    console.log(`[v2] alarm timing on netdata ${V2.version}: failure→WARNING ${f(warn)}; recovery→CLEAR ${f(clear)} (${phases.length} cycles)`);
    const ctx = await agentContext(a);
    for (const s of [...warn, ...clear]) expect(s, `all: WARNING ${warn.join(', ')} CLEAR ${clear.join(', ')}${ctx}`).toBeLessThanOrEqual(3);
  });

  it('lists its Function at /api/v3/functions and answers /api/v3/function as the declaration says', async () => {
    const a = agent!;
    const NAME = 'systemd-socket-units';
    type Listed = { name: string; help?: string; access?: string[] };
    const listed = await a.waitFor(async () => {
      const fns = (await a.get<{ functions: Listed[] }>('/api/v3/functions')).functions;
      return fns?.find((f) => f.name === NAME);
    }, 15_000, `${NAME} in /api/v3/functions`);
    const res = await fetch(`${a.url}/api/v3/function?function=${NAME}`, { signal: AbortSignal.timeout(30_000) });
    const body = await res.text();
    // A Function declared without access (or `any`) is open to whoever reaches the API; one
    // declared `member`/`admin` is refused (412) to an anonymous local call (checked on v2.10.4).
    const open = (listed.access ?? []).length === 0 || (listed.access ?? []).includes('any');
    console.log(`[v2] ${NAME}: listed with access ${JSON.stringify(listed.access)}; anonymous call: HTTP ${res.status}`);
    if (open) {
      expect(res.status, body.slice(0, 300)).toBe(200);
      const table = JSON.parse(body) as { status: number; type: string; data: unknown[][]; columns: Record<string, { index: number }> };
      expect(table.type).toBe('table');
      const unitColumn = table.columns.unit!.index;
      const units = table.data.map((row) => row[unitColumn]);
      for (const name of SOCKETS) expect(units).toContain(`${name}.socket`);
    } else {
      expect(res.status, body.slice(0, 300)).toBe(412);
    }
  });

  it('beside go.d’s systemdunits charts, none of its alarm templates binds to a go.d chart', async () => {
    const a = agent!;
    const charts = await a.waitFor(async () => {
      const all = (await a.charts()).charts;
      return Object.keys(GO_D_CHARTS).every((id) => all[id]) ? all : undefined;
    }, 15_000, 'the go.d fixture’s charts');
    for (const [id, want] of Object.entries(GO_D_CHARTS)) {
      const c = charts[id]!;
      expect({ plugin: c.plugin, module: c.module, context: c.context }).toEqual({ plugin: 'go.d.plugin', module: 'systemdunits', context: want.context });
      expect(Object.values(c.dimensions).map((d) => d.name).sort()).toEqual(['activating', 'active', 'deactivating', 'failed', 'inactive']);
      expect(c.chart_labels?.unit_name).toBe(want.unit);
    }
    // Same contexts, two shapes. What v2's dashboard draws for a context is one chart over all its
    // instances (/api/v2/data by context): printed, for the decision on distinct contexts (not
    // asserted: today ours keeps the contexts its alarms and users know).
    for (const context of ['systemd.service_unit_state', 'systemd.socket_unit_state']) {
      const sharing = Object.values(charts).filter((c) => c.context === context).map((c: Chart) => `${c.id} (${c.plugin})`);
      const v = await a.get<{ view?: { dimensions?: { names?: string[] } } }>(
        `/api/v2/data?scope_contexts=${context}&after=-5&points=1&format=json2`,
      );
      const dims = v.view?.dimensions?.names ?? [];
      console.log(
        `[v2] context ${context}: charts ${sharing.join(', ')}; the dashboard's one chart for it has ${dims.length} dimensions: ` +
          `${dims.slice(0, 8).join(', ')}${dims.length > 8 ? ', …' : ''}`,
      );
    }
    // Give the health loop time to have bound (and run) every template on every chart.
    const evaluated = (s: string | undefined) => s !== undefined && s !== 'UNINITIALIZED';
    await a.waitFor(async () => evaluated((await a.alarms()).alarms[SOCKET_ALARM_KEY]?.status), 10_000, 'our alarm evaluated');
    const alarms = Object.values((await a.alarms()).alarms);
    const onGoD = alarms.filter((al) => al.chart in GO_D_CHARTS);
    const ours = alarms.filter((al) => al.source.includes(path.join(healthDir, 'systemdunits.conf')));
    expect(onGoD.map((al) => `${al.chart}.${al.name} (${al.source})`), 'alarms bound to go.d charts').toEqual([]);
    expect(ours.length).toBeGreaterThan(0);
    for (const al of ours) expect(al.chart.startsWith('systemdunits_service_units.'), `${al.name} on ${al.chart}`).toBe(true);
    // and the per-chart view agrees
    for (const id of Object.keys(GO_D_CHARTS)) expect(Object.keys((await a.chart(id)).alarms ?? {}), id).toEqual([]);
  });

  it('logs no health-configuration error and no trouble with the plugin', async () => {
    const log = await agent!.errorLog();
    expect(healthConfigErrors(log), tail(log, 20)).toEqual([]);
    expect(pluginTrouble(log)).toEqual([]);
  });

  it('ends by SIGTERM at once when systemd stops or restarts the agent, and runs again after the restart', async () => {
    // Netdata's own v2 unit leaves systemd's default KillMode=control-group: SIGTERM reaches the
    // agent and every plugin at once. v2.10.4 counts a plugin killed by SIGTERM as exit code 0,
    // provided its plugin thread has read the end before it cancels that thread, 7-130 ms into its
    // shutdown (measured here); a cancelled thread SIGKILLs what is left and logs "exited
    // abnormally. Disabling it." even for a plugin already gone (it stops waiting for the report).
    // So: the plugin must end by that SIGTERM, at once (no handler: the kernel ends it, ~5-15 ms
    // here, event loop busy or not), never by SIGKILL or an exit code; an "abnormally" is allowed
    // only as the agent's own cancelled wait for a plugin that SIGTERM had already ended.
    const launcher = path.join(pluginsDir, 'systemdunits.plugin');
    const stopLikeSystemd = async (what: string): Promise<void> => {
      const [proc] = await agent!.waitFor(async () => {
        const p = await processesRunning(entry());
        return p.length === 1 ? p : undefined;
      }, 15_000, 'one plugin process');
      const pid = proc!.pid;
      await agent!.stop({ all: true });
      const log = await readFile(path.join(agentDir, 'log/error.log'), 'utf8');
      const lines = log.split('\n');
      const about = lines.filter((l) => l.includes(launcher) || l.includes(`pid ${pid} `));
      // how the spawn server saw it end (nothing is logged for exit code 0)
      const ends = lines.filter((l) => l.includes(`child with pid ${pid} `)).map((l) => /(killed by signal \d+|exit code \d+|coredump'd)/.exec(l)?.[1]);
      const abnormal = pluginTrouble(log).filter((l) => /abnormally/.test(l));
      const gaveUp = lines.some((l) => l.includes(`giving up waiting for pid ${pid} `));
      const at = (re: RegExp) => Date.parse(/^time=(\S+)/.exec(lines.find((l) => re.test(l)) ?? '')?.[1] ?? '');
      const sigterm = at(/Received SIGTERM/);
      console.log(
        `[v2] ${what}: plugin (pid ${pid}) ended by ${ends.join(', ') || 'exit code 0'}; the agent read its end ` +
          `${at(new RegExp(`${pid}\\) disconnected after`)) - sigterm} ms and cancelled its thread ` +
          `${at(/stopping plugin thread: plugin:systemdunits/) - sigterm} ms after its SIGTERM; ` +
          `"exited abnormally": ${abnormal.length ? 'yes (the agent gave up waiting)' : 'no'}\n  ${about.slice(-3).join('\n  ')}`,
      );
      expect(ends.filter((e) => e !== 'killed by signal 15'), `${what}: how the plugin ended\n${tail(log, 30)}`).toEqual([]);
      if (abnormal.length > 0) expect(gaveUp && ends.length === 1, `${what}: ${abnormal.join('\n')}\n${tail(log, 30)}`).toBe(true);
      expect(await processesRunning(entry())).toEqual([]);
    };
    await stopLikeSystemd('first stop');
    agent = await startAgent({ dir: agentDir, prefix: V2.prefix, pluginsDir, healthDir, busAddress: bus, stockHealth: true, enable: ['systemdunits', 'go.d'] });
    await agent.waitFor(async () => (await agent!.charts()).charts[SOCKET_CHART], 15_000, `chart ${SOCKET_CHART} after the restart`);
    await stopLikeSystemd('stop after the restart');
    agent = undefined;
  });

  it('(control) SIGTERM to the agent alone: what "exited abnormally" is, when v2.10.4 logs it', async () => {
    // Without systemd's SIGTERM to the plugin (e.g. `kill` of the agent, a unit with KillMode=mixed),
    // the plugin learns of the shutdown from the agent only. v2.10.4 then cancels each plugin
    // thread; a thread cancelled while it waits for data closes the pipes and sends SIGTERM and
    // SIGKILL in the same millisecond, stops waiting for the exit report (its waits end with the
    // cancellation), "gives up waiting" and logs "exited abnormally. Disabling it." (the agent is
    // exiting: the next start runs it again). A thread that is reading a sample at that moment
    // takes the graceful path (close, 3 s grace): then a plugin that exits on EOF is logged as
    // normal. So the log line depends on the phase of the plugin's writes, not on how the plugin
    // exits; the check is that whenever it says so, it was that cancelled wait, never an exit code
    // of ours.
    const a = await startAgent({ dir: agentDir, prefix: V2.prefix, pluginsDir, healthDir, busAddress: bus, enable: ['systemdunits', 'go.d'] });
    let pid = 0;
    try {
      await a.waitFor(async () => (await a.charts()).charts[SOCKET_CHART], 15_000, 'our chart');
      pid = (await processesRunning(entry()))[0]!.pid;
    } finally {
      await a.stop();
    }
    const log = await readFile(path.join(agentDir, 'log/error.log'), 'utf8');
    const abnormal = pluginTrouble(log).filter((l) => /abnormally/.test(l));
    const gaveUp = log.split('\n').filter((l) => l.includes(`giving up waiting for pid ${pid} `));
    const exitCode = log.split('\n').filter((l) => l.includes(`(pid ${pid})`) && /error code/.test(l));
    const ended = log.split('\n').filter((l) => l.includes(`child with pid ${pid} `)).map((l) => /(killed by signal \d+|exit code \d+)/.exec(l)?.[1]);
    console.log(`[v2] agent alone SIGTERMed: "exited abnormally" ${abnormal.length ? 'logged' : 'not logged'} for ours; the plugin ended by ${ended.join(', ') || 'exit code 0'}`);
    expect(exitCode, 'never an exit code of ours').toEqual([]);
    if (abnormal.length > 0) expect(gaveUp.length, tail(log, 40)).toBeGreaterThan(0);
  });

  it('uninstalls: the agent’s dirs are as before the install', async () => {
    // install.sh again into fresh dirs of the same shape, then --uninstall: the dirs come back empty
    const dir = await mkdtemp(path.join(os.tmpdir(), 'e2e-v2-uninstall-'));
    try {
      const before = await snapshot(dir);
      const paths = await installForAgent(dir, { agentVersion: V2.version });
      const r = await install(['--config-dir', paths.configDir, '--plugins-dir', paths.pluginsDir, '--health-dir', paths.healthDir, '--uninstall']);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      const after = await snapshot(dir);
      // installForAgent made DIR/etc itself (the agent's config dir), as an agent's package would
      expect(diffSnapshots(before, after).filter((d) => d !== 'added: etc')).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
