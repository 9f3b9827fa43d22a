// Bad config through the real plugin process, found where the agent points it
// (NETDATA_USER_CONFIG_DIR): one stderr line per problem naming file, job and key; the good jobs
// chart real systemd units; with no valid job the plugin prints DISABLE and exits 0 without
// touching the bus.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PluginRun } from '../helpers/plugin.js';
import { startSandbox, type Sandbox } from '../helpers/sandbox.js';
import { writeSocket } from './units.js';

const made: string[] = [];
afterAll(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A config dir as the agent gives it, holding systemdunits.conf with `text`. */
function configDir(text: string): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), 'sdu-conf-'));
  made.push(dir);
  const file = join(dir, 'systemdunits.conf');
  writeFileSync(file, text);
  return { dir, file };
}

function stderrLines(run: PluginRun): string[] {
  return run.stderr.split('\n').filter((l) => l !== '');
}

async function exitOf(run: PluginRun, withinMs = 5000): Promise<number | null> {
  const r = await Promise.race([run.exit, new Promise<undefined>((res) => setTimeout(res, withinMs))]);
  if (!r) {
    await run.stop();
    throw new Error(`plugin still running after ${withinMs} ms; stderr:\n${run.stderr}`);
  }
  return r.code;
}

describe('no valid job: DISABLE', () => {
  // The bus address leads nowhere: a plugin that tried it would say "cannot reach the system bus".
  const NO_BUS = { DBUS_SYSTEM_BUS_ADDRESS: 'unix:path=/nonexistent/bus' };
  const cases: { what: string; text: string; lines: RegExp[] }[] = [
    {
      what: 'a YAML syntax error',
      text: "jobs:\n  - name: web\n    include: ['*.socket'\n  - name: b\n",
      lines: [/^systemdunits\.plugin: FILE: job 'web' \(jobs\[0\]\): include: not valid YAML at line 4, column 3: .*; disabling the plugin$/],
    },
    {
      what: 'every job bad',
      text: "jobs:\n  - name: web\n    exlude: ['a.service']\n  - name: web2\n    include: ['*.sokcet']\n",
      lines: [
        /^systemdunits\.plugin: FILE: job 'web' \(jobs\[0\]\): exlude: unknown key \(did you mean 'exclude'\?\); job skipped$/,
        /^systemdunits\.plugin: FILE: job 'web2' \(jobs\[1\]\): include: '\*\.sokcet': '\.sokcet' is not a unit type \(did you mean 'socket'\?\); job skipped$/,
        /^systemdunits\.plugin: FILE: no valid job \(2 skipped\); disabling the plugin$/,
      ],
    },
    { what: 'an empty jobs list', text: 'jobs: []\n', lines: [/^systemdunits\.plugin: FILE: jobs: the list is empty; disabling the plugin$/] },
  ];
  for (const c of cases) {
    it(`for ${c.what}: the reason on stderr, DISABLE on stdout, exit 0`, async () => {
      const { dir, file } = configDir(c.text);
      const run = new PluginRun(['1'], { ...NO_BUS, NETDATA_USER_CONFIG_DIR: dir });
      expect(await exitOf(run)).toBe(0);
      expect(run.lines.filter((l) => l !== '')).toEqual(['DISABLE']);
      const lines = stderrLines(run).map((l) => l.replace(file, 'FILE'));
      expect(lines, run.stderr).toHaveLength(c.lines.length);
      lines.forEach((l, i) => expect(l).toMatch(c.lines[i]!));
    });
  }

  it('for a config named with --config that does not exist', async () => {
    const run = new PluginRun(['1', '--config', '/nonexistent/systemdunits.conf'], NO_BUS);
    expect(await exitOf(run)).toBe(0);
    expect(run.lines.filter((l) => l !== '')).toEqual(['DISABLE']);
    expect(stderrLines(run)).toEqual(['systemdunits.plugin: /nonexistent/systemdunits.conf: cannot read the config (no such file); disabling the plugin']);
  });
});

describe('good and bad jobs against real systemd', () => {
  let sb: Sandbox;
  let run: PluginRun | undefined;

  beforeAll(async () => {
    sb = await startSandbox();
    await writeSocket(sb, 'alpha');
    await sb.daemonReload();
    await sb.execOk('systemctl', 'start', 'alpha.socket');
  });
  afterAll(async () => {
    await run?.stop();
    await sb?.stop({ removeDir: true });
  });

  it('skips the bad jobs with one line each and charts the good ones', async () => {
    const { dir, file } = configDir(`jobs:
  - name: sockets
    include: ['*.socket']
  - name: typo
    include: ['*.socket']
    skip_transent: true
  - name: wrongtype
    include: '*.service'
    timeout: forever
  - name: nopattern
    include: ['alpha .socket']
  - name: sockets
    include: ['*.service']
  - name: services
    include: ['*.service']
    exclude: ['user@*.service']
`);
    run = new PluginRun(['1'], { DBUS_SYSTEM_BUS_ADDRESS: sb.busAddress, NETDATA_USER_CONFIG_DIR: dir });
    await run.waitFor('both good jobs sampled', () =>
      run!.samplesOf('systemdunits_sockets.socket_unit_state').length > 0 && run!.samplesOf('systemdunits_services.service_unit_state').length > 0,
    );
    expect(stderrLines(run).map((l) => l.replace(file, 'FILE'))).toEqual([
      "systemdunits.plugin: FILE: job 'typo' (jobs[1]): skip_transent: unknown key (did you mean 'skip_transient'?); job skipped",
      "systemdunits.plugin: FILE: job 'wrongtype' (jobs[2]): timeout: expected seconds above 0 and at most 60 (2, '2s', '500ms'), got 'forever'; job skipped",
      "systemdunits.plugin: FILE: job 'nopattern' (jobs[3]): include: 'alpha .socket': ' ' appears in no unit name (they have letters, digits and : - _ . @ \\ only); job skipped",
      "systemdunits.plugin: FILE: job 'sockets' (jobs[4]): name: 'sockets' is already the name of jobs[0]; job skipped",
    ]);
    expect(run.lastValue('systemdunits_sockets.socket_unit_state', 'alpha.socket')).toBe(1);
    // Only the good jobs' charts: the duplicate 'sockets' (services) did not replace the first.
    const types = new Set([...run.charts.keys()].map((id) => id.split('.')[0]));
    expect([...types].sort()).toEqual(['systemdunits_services', 'systemdunits_sockets']);
    expect(run.charts.has('systemdunits_sockets.service_unit_state')).toBe(false);
    expect(run.strayLines).toEqual([]);
    expect(run.lines).not.toContain('DISABLE');
  });
});
