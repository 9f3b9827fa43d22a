// The plugin inside a real Netdata 1.37.1 agent, installed with scripts/install/install.sh the way a user
// installs it, watching a real systemd (PID 1 of a sandbox) over a bus that user netdata can open.
// Everything is checked through the agent's REST API, the agent's process table and the agent's
// notification hook; nothing talks to the plugin directly.
//
// One sandbox for the file; agent A (the test agent's defaults: no stock alarms) for the chart,
// the alarm timing and the first notification; agent B (stock alarms on) for the alarm's source
// and the two-socket notification. Each agent's first WARNING is the one whose notification we
// check: netdata 1.37.1 does not notify a status equal to the last one it notified, and the
// shipped `delay: down 1m …` holds the CLEAR notification back for a minute, so later WARNINGs of
// the same agent within this test are (correctly) not notified again.
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startAgent, type Agent, type Notification } from '../../harness/agent.js';
import { repoRoot, run } from '../../harness/run.js';
import { startSandbox, type Sandbox } from '../../harness/sandbox.js';
import { failSocket, startSockets } from '../../harness/units.js';
import {
  addGoDFixture,
  agentContext,
  atWallPhase,
  EXPECTED_VALUE,
  failSockets,
  GO_D_CHARTS,
  healthConfigErrors,
  LAUNCHER_MALLOC_ENV,
  launcherMallocEnvOf,
  listUnits,
  processesRunning,
  recoverSockets,
  SOCKET_ALARM,
  SOCKET_ALARM_KEY,
  SOCKET_CHART,
  STATE_LEGEND,
  installForAgent,
  tail,
  timeStatus,
  unescapeUnitName,
} from '../../harness/e2e.js';

const SOCKETS = ['listening', 'broken', 'first', 'second'];

let sb: Sandbox | undefined;
let bus: string;
let agentDir: string; // agent A's state dir; DIR/etc is its user config dir (NETDATA_USER_CONFIG_DIR)
let pluginsDir: string;
let healthDir: string;
let installOutput = '';
let agentA: Agent | undefined;
let agentB: Agent | undefined;
let failed = false;

afterEach((ctx) => {
  if (ctx.task.result?.state === 'fail') failed = true;
});

beforeAll(async () => {
  sb = await startSandbox();
  await startSockets(sb, SOCKETS, { noStartLimit: true }); // the timing cycles fail and restart one socket many times
  bus = await sb.expose();
  // broken.socket is already failed when the agent starts: the alarm must fire for it at once.
  await failSocket(sb, 'broken');

  // The agent's directories, filled by the installer before the agent starts, as on a real host.
  agentDir = await mkdtemp(path.join(os.tmpdir(), 'e2e-agent-'));
  ({ pluginsDir, healthDir, output: installOutput } = await installForAgent(agentDir));

  agentA = await startAgent({
    dir: agentDir,
    pluginsDir,
    healthDir,
    busAddress: bus,
    // Only to read back which config file the plugin loaded (one line on stderr, in error.log).
    env: { DEBUG: 'systemdunits:main' },
  });
}, 240_000);

afterAll(async () => {
  // Every process this file started goes, pass or fail; the state dirs stay when a test failed.
  await agentB?.stop({ removeDir: !failed }).catch((e) => console.error(e));
  await agentA?.stop({ removeDir: !failed }).catch((e) => console.error(e));
  await sb?.stop({ removeDir: !failed }).catch((e) => console.error(e));
  if (failed) console.error(`e2e: a test failed: kept ${agentDir} (agent A), ${sb?.dir ?? ''} (sandbox) for inspection`);
  else if (agentDir) await rm(agentDir, { recursive: true, force: true });
});

function warnings(notes: Notification[]): Notification[] {
  return notes.filter((n) => n.name === SOCKET_ALARM && n.chart === SOCKET_CHART && n.status === 'WARNING');
}

describe('plugin installed by install.sh, agent with its test defaults', () => {
  it('was installed for a 1.37 agent: the alarm text uses the $label:NAME syntax', async () => {
    expect(installOutput, installOutput).toContain('installed for Netdata 1.37.1');
    const shipped = await readFile(path.join(repoRoot, 'health.d/systemdunits.conf'), 'utf8');
    const installed = await readFile(path.join(healthDir, 'systemdunits.conf'), 'utf8');
    expect(shipped).toMatch(/^\s*info:.*\$\{label:failure_summary\}/m);
    expect(installed).toMatch(/^\s*info: socket units \$label:failure_summary - \$label:failure_advice$/m);
    expect(installed).not.toMatch(/^\s*info:.*\$\{label:/m);
  });

  it('is started by the agent itself, as user netdata, from the installed files and config', async () => {
    const agent = agentA!;
    const entry = path.join(pluginsDir, 'systemdunits/systemdunits.mjs');
    const procs = await agent.waitFor(
      async () => {
        const p = await processesRunning(entry);
        return p.length > 0 ? p : undefined;
      },
      15_000,
      `a process running ${entry}`,
    );
    expect(procs.length, `exactly one plugin process: ${JSON.stringify(procs.map((p) => p.cmdline))}`).toBe(1);
    const [proc] = procs;
    expect(proc!.user, 'the plugin runs as the agent user').toBe('netdata');
    const agentUid = (await readFile(`/proc/${agent.pid}/status`, 'utf8')).match(/^Uid:\s+\d+\s+(\d+)/m)?.[1];
    expect(agentUid, 'the agent itself runs as netdata').toBe((await run('id', ['-u', 'netdata'])).stdout.trim());
    expect(proc!.ancestors, `the agent (pid ${agent.pid}) is its ancestor`).toContain(agent.pid);
    // argv: node FLAGS… ENTRY UPDATE_EVERY, as the agent runs NAME.plugin 1 (flags: the launcher's)
    expect(proc!.cmdline.slice(-2)).toEqual([entry, '1']);
    expect(proc!.cmdline).toContain('--max-semi-space-size=1');
    // The launcher's fixed malloc thresholds reach node (memory after safety resyncs: see the launcher).
    expect(launcherMallocEnvOf(proc!)).toEqual(LAUNCHER_MALLOC_ENV);
    expect(proc!.environ.NETDATA_USER_CONFIG_DIR).toBe(path.join(agentDir, 'etc'));
    expect(proc!.environ.DBUS_SYSTEM_BUS_ADDRESS).toBe(bus);
    // The config install.sh put into the agent's user config dir is the one the plugin loaded.
    const configFile = path.join(agentDir, 'etc/systemdunits.conf');
    const log = await agent.waitFor(async () => {
      const l = await agent.errorLog();
      return l.includes('config from ') ? l : undefined;
    }, 10_000, 'the plugin to log its config source');
    expect(log, tail(log)).toContain(`config from ${configFile}`);
    expect((await run('runuser', ['-u', 'netdata', '--', 'test', '-r', configFile])).code, `netdata can read ${configFile}`).toBe(0);
  });

  it('charts one dimension per socket unit systemd lists, with the documented chart metadata', async () => {
    const agent = agentA!;
    const chart = await agent.waitFor(async () => (await agent.charts()).charts[SOCKET_CHART], 15_000, `chart ${SOCKET_CHART}`);
    expect(chart.context).toBe('systemd.socket_unit_state');
    expect(chart.title).toContain(STATE_LEGEND);
    expect(chart.title.endsWith(` (${SOCKET_CHART})`), chart.title).toBe(true);
    expect(chart.units).toBe('state');
    expect(chart.family).toBe('socket');
    expect(chart.plugin).toBe('systemdunits.plugin');

    const units = (await listUnits(sb!, 'socket')).filter((u) => u.load !== 'not-found');
    const expected = units.map((u) => unescapeUnitName(u.name)).sort();
    for (const name of SOCKETS) expect(expected).toContain(`${name}.socket`);
    const names = Object.values(chart.dimensions)
      .map((d) => d.name)
      .sort();
    expect(names, `dimensions of ${SOCKET_CHART} vs systemctl list-units --type=socket --all`).toEqual(expected);
  });

  it('shows systemd state values in /api/v1/data: 1 listening, 5 failed, and so on for every socket', async () => {
    const agent = agentA!;
    const units = (await listUnits(sb!, 'socket')).filter((u) => u.load !== 'not-found');
    const want = Object.fromEntries(units.map((u) => [unescapeUnitName(u.name), EXPECTED_VALUE[u.active]]));
    expect(want['listening.socket']).toBe(1);
    expect(want['broken.socket']).toBe(5);
    let last: Record<string, number | null> = {};
    try {
      await agent.waitFor(
        async () => {
          const d = await agent.data(SOCKET_CHART, -5, 5);
          // the newest complete row (every value present); rows come newest first
          const row = d.result.data.find((r) => r.slice(1).every((v) => v !== null));
          if (!row) return false;
          last = Object.fromEntries(d.result.labels.slice(1).map((name, i) => [name, row[i + 1] ?? null]));
          return JSON.stringify(Object.entries(last).sort()) === JSON.stringify(Object.entries(want).sort());
        },
        10_000,
        `/api/v1/data of ${SOCKET_CHART} to match systemd`,
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}\nwanted (from systemctl): ${JSON.stringify(want)}\nlast row: ${JSON.stringify(last)}`);
    }
  });

  it('raises the alarm for the socket that was failed when the agent started, and notifies it', async () => {
    const agent = agentA!;
    const { alarm } = await timeStatus(agent, SOCKET_ALARM_KEY, 'WARNING', performance.now(), 10_000);
    expect(alarm.info, 'the alarm text names the unit and systemd’s Result').toContain('broken.socket (exit-code)');
    const [note] = await agent.waitFor(async () => {
      const w = warnings(await agent.notifications());
      return w.length > 0 ? w : undefined;
    }, 10_000, 'a WARNING notification');
    // 1.37.1 passes the expanded info text as the 18th argument of the notification script.
    expect(note!.info, `notification: ${note!.args.join(' | ')}`).toContain('socket units failed: broken.socket (exit-code) - run systemctl status');
    expect(note!.info).not.toContain('label:');
    for (const other of ['listening', 'first', 'second']) expect(note!.info).not.toContain(`${other}.socket`);
  });

  it('goes WARNING within 3 s of a socket failing and CLEAR within 3 s of its recovery (3 cycles)', async () => {
    const agent = agentA!;
    // broken.socket is still failed from the start: bring it back and let the alarm settle.
    await recoverSockets(sb!, ['broken']);
    await timeStatus(agent, SOCKET_ALARM_KEY, 'CLEAR', performance.now(), 10_000);

    // Timings use the shipped health file as installed and the agent's health defaults, except
    // `run at least every seconds = 1` from netdata-agent.sh, which only brings the very first
    // evaluation after start forward (default 10 s); every later one follows the alarm's `every: 1s`.
    // The plugin samples on whole wall-clock seconds; failing and recovering at different points of
    // the second covers the phases between systemd, the plugin's samples and the health loop.
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
      const w = await timeStatus(agent, SOCKET_ALARM_KEY, 'WARNING', failedAt, 10_000);
      expect(w.alarm.info).toContain('broken.socket (exit-code)');
      await atWallPhase(phase.recover);
      const recoveredAt = await recoverSockets(sb!, ['broken']);
      const c = await timeStatus(agent, SOCKET_ALARM_KEY, 'CLEAR', recoveredAt, 10_000);
      warn.push(w.seconds);
      clear.push(c.seconds);
      console.log(
        `alarm timing (cycle ${i + 1}, fail at +${phase.fail}s, recover at +${phase.recover}s): ` +
          `WARNING after ${w.seconds.toFixed(2)} s, CLEAR after ${c.seconds.toFixed(2)} s`,
      );
    }
    const f = (xs: number[]) => `min ${Math.min(...xs).toFixed(2)} s, max ${Math.max(...xs).toFixed(2)} s`;
    console.log(`alarm timing: WARNING ${f(warn)}; CLEAR ${f(clear)} (${phases.length} cycles)`);
    const ctx = await agentContext(agent);
    for (const s of warn) expect(s, `WARNING took ${s.toFixed(2)} s (all: ${warn.map((x) => x.toFixed(2)).join(', ')})${ctx}`).toBeLessThanOrEqual(3);
    for (const s of clear) expect(s, `CLEAR took ${s.toFixed(2)} s (all: ${clear.map((x) => x.toFixed(2)).join(', ')})${ctx}`).toBeLessThanOrEqual(3);
  });

  it('runs on 1.37.1, which expands $label:NAME in info and leaves ${label:NAME} as text', async () => {
    // Why install.sh rewrites ${label:NAME} (v1.38+) into $label:NAME for agents older than 1.38:
    // a throwaway alarm on the same chart carrying both spellings, loaded with reload-health.
    const agent = agentA!;
    const file = path.join(healthDir, 'e2e-label-syntax.conf');
    const name = 'e2e_label_syntax';
    await writeFile(
      file,
      ` template: ${name}\n       on: systemd.socket_unit_state\n     calc: $failed_units\n    every: 1s\n     warn: $this > 0\n` +
        '     info: old $label:job new ${label:job} end\n       to: silent\n',
      { mode: 0o644 },
    );
    try {
      const r = await agent.exec('netdatacli', 'reload-health');
      expect(r.code, r.stderr).toBe(0);
      const alarm = await agent.waitFor(async () => (await agent.alarms()).alarms[`${SOCKET_CHART}.${name}`], 10_000, `alarm ${name}`);
      const info = await agent.waitFor(async () => {
        const a = (await agent.alarms()).alarms[`${SOCKET_CHART}.${name}`];
        return a && !a.info.includes('$label:') ? a.info : undefined;
      }, 10_000, `the labels in ${name}'s info to be expanded (was: ${alarm.info})`);
      expect(info).toBe('old service_units new ${label:job} end');
    } finally {
      await rm(file, { force: true });
      await agent.exec('netdatacli', 'reload-health');
    }
  });
});

describe('with the agent’s stock alarms enabled', () => {
  beforeAll(async () => {
    // The stock systemdunits.conf defines the same template name (for go.d's chart layout): the
    // installed file must replace it, not sit next to it.
    const stock = await readFile('/usr/lib/netdata/conf.d/health.d/systemdunits.conf', 'utf8');
    expect(stock).toMatch(/template:\s*systemd_socket_unit_failed_state/);
    // Every socket active before agent B starts: its first WARNING is the two-socket one.
    for (const u of await listUnits(sb!, 'socket')) {
      if (SOCKETS.includes(u.name.replace(/\.socket$/, ''))) expect(u.active, `${u.name} before agent B`).toBe('active');
    }
    // go.d's systemdunits charts beside ours (a fixture of their shapes): none of our templates may take them
    await addGoDFixture(pluginsDir);
    agentB = await startAgent({ pluginsDir, healthDir, busAddress: bus, stockHealth: true, enable: ['systemdunits', 'go.d'] });
    await agentB.waitFor(async () => (await agentB!.alarms()).alarms[SOCKET_ALARM_KEY]?.status === 'CLEAR', 15_000, 'alarm CLEAR on agent B');
  }, 60_000);

  it('has exactly one systemd_socket_unit_failed_state alarm on the chart, from the installed file', async () => {
    const agent = agentB!;
    // Raw text: alarms keyed alike would collapse in a parsed object.
    const raw = await (await fetch(`${agent.url}/api/v1/alarms?all`)).text();
    const count = raw.split(`"${SOCKET_ALARM_KEY}"`).length - 1;
    expect(count, `entries for ${SOCKET_ALARM_KEY} in /api/v1/alarms?all${await agentContext(agent)}`).toBe(1);
    const all = Object.values((await agent.alarms()).alarms).filter((a) => a.name === SOCKET_ALARM);
    expect(all.map((a) => a.chart)).toEqual([SOCKET_CHART]);
    const alarm = all[0]!;
    expect(alarm.source, 'the alarm comes from the installed health file').toContain(path.join(healthDir, 'systemdunits.conf'));
    expect(alarm.source).not.toContain('/usr/lib/netdata/conf.d');
    // Agent B does read the stock alarms (the API lists only alarms bound to a chart, and with the
    // internal collectors off no stock one is).
    const conf = await readFile(path.join(agent.dir, 'netdata.conf'), 'utf8');
    expect(conf).toMatch(/^\s*stock health config = \/usr\/lib\/netdata\/conf\.d\/health\.d$/m);
  });

  it('beside go.d’s systemdunits charts (same contexts), binds none of its templates to them', async () => {
    const agent = agentB!;
    const charts = await agent.waitFor(async () => {
      const all = (await agent.charts()).charts;
      return Object.keys(GO_D_CHARTS).every((id) => all[id]) ? all : undefined;
    }, 15_000, 'the go.d fixture’s charts');
    for (const [id, want] of Object.entries(GO_D_CHARTS)) {
      expect({ plugin: charts[id]!.plugin, module: charts[id]!.module, context: charts[id]!.context }).toEqual({
        plugin: 'go.d.plugin',
        module: 'systemdunits',
        context: want.context,
      });
    }
    const alarms = Object.values((await agent.alarms()).alarms);
    expect(alarms.filter((a) => a.chart in GO_D_CHARTS).map((a) => `${a.chart}.${a.name} (${a.source})`)).toEqual([]);
    for (const id of Object.keys(GO_D_CHARTS)) expect(Object.keys((await agent.chart(id)).alarms ?? {}), id).toEqual([]);
  });

  it('logs no health-configuration error for the installed file', async () => {
    // `plugin:` (the go.d filter) is a key 1.37.1 takes; `summary:` it does not, so install.sh
    // leaves it out for agents older than it reads them (issue 12, item 2).
    expect(healthConfigErrors(await agentB!.errorLog())).toEqual([]);
  });

  it('goes WARNING on two sockets failed at once and notifies both names with their Result', async () => {
    const agent = agentB!;
    expect(warnings(await agent.notifications())).toEqual([]);
    // Both fail in one systemctl transaction in the middle of a plugin interval (the plugin samples
    // on whole seconds), so one sample carries both: the WARNING itself names the two units.
    await atWallPhase(0.5);
    const failedAt = await failSockets(sb!, ['first', 'second']);
    const w = await timeStatus(agent, SOCKET_ALARM_KEY, 'WARNING', failedAt, 10_000);
    console.log(`alarm timing (agent B, stock alarms, two sockets): WARNING after ${w.seconds.toFixed(2)} s`);
    expect(w.seconds).toBeLessThanOrEqual(3);
    expect(w.alarm.value).toBe(2);
    const [note] = await agent.waitFor(async () => {
      const n = warnings(await agent.notifications());
      return n.length > 0 ? n : undefined;
    }, 10_000, 'a WARNING notification on agent B');
    expect(note!.info, `notification: ${note!.args.join(' | ')}`).toContain('first.socket (exit-code)');
    expect(note!.info).toContain('second.socket (exit-code)');
    expect(note!.info).not.toContain('broken.socket');
    const recoveredAt = await recoverSockets(sb!, ['first', 'second']);
    const c = await timeStatus(agent, SOCKET_ALARM_KEY, 'CLEAR', recoveredAt, 10_000);
    console.log(`alarm timing (agent B, stock alarms, two sockets): CLEAR after ${c.seconds.toFixed(2)} s`);
    expect(c.seconds).toBeLessThanOrEqual(3);
  });

  it('(control) without the installed file the stock template would take the chart, and miss failures', async () => {
    // Makes the test above meaningful: agent C loads the stock alarms but not the installed file.
    const emptyHealth = await mkdtemp(path.join(os.tmpdir(), 'e2e-nohealth-'));
    await chmod(emptyHealth, 0o755);
    const agent = await startAgent({ pluginsDir, healthDir: emptyHealth, busAddress: bus, stockHealth: true });
    try {
      const alarm = await agent.waitFor(async () => {
        const a = (await agent.alarms()).alarms[SOCKET_ALARM_KEY];
        return a && a.status !== 'UNINITIALIZED' ? a : undefined;
      }, 15_000, 'the stock socket alarm to be evaluated');
      expect(alarm.source).toContain('/usr/lib/netdata/conf.d/health.d/systemdunits.conf');
      // `calc: $failed` is no variable of this chart. 1.37 finds it through the chart family: the
      // `failed` dimension of socket_units_by_state (agents without family variables give null),
      // and the stock `warn: $this != nan AND $this == 1` holds for exactly one failed unit. So
      // with two sockets failed it stays CLEAR, where the installed alarm goes WARNING.
      expect([null, 0], `stock alarm: ${JSON.stringify(alarm)}`).toContain(alarm.value);
      const failedAt = Date.now() / 1000;
      await failSockets(sb!, ['first', 'second']);
      try {
        const after = await agent.waitFor(async () => {
          const a = (await agent.alarms()).alarms[SOCKET_ALARM_KEY];
          return a && a.last_updated > failedAt + 2 ? a : undefined;
        }, 30_000, 'the stock socket alarm to be evaluated after two sockets failed');
        expect([null, 2], `stock alarm: ${JSON.stringify(after)}`).toContain(after.value);
        expect(['CLEAR', 'UNDEFINED']).toContain(after.status);
      } finally {
        await recoverSockets(sb!, ['first', 'second']);
      }
    } finally {
      await agent.stop({ removeDir: true });
      await rm(emptyHealth, { recursive: true, force: true });
    }
  });

  afterAll(async () => {
    await agentB?.stop({ removeDir: !failed }).catch((e) => console.error(e));
    agentB = undefined;
  });
});
