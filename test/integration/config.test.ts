// Bad config through the real plugin process, found where the agent points it
// (NETDATA_USER_CONFIG_DIR): one stderr line per problem naming file, job and key; the good jobs
// chart real systemd units; with no valid job the plugin prints DISABLE and exits 0 without
// touching the bus.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PluginRun } from '../../harness/plugin.js';
import { startSandbox, type Sandbox } from '../../harness/sandbox.js';
import { startSockets } from '../../harness/units.js';

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

describe('the command line, by hand', () => {
  const NO_BUS = { DBUS_SYSTEM_BUS_ADDRESS: 'unix:path=/nonexistent/bus' };

  it('--check-config: the report on stdout, the problems on stderr, exit 1 on a problem', async () => {
    const good = configDir("jobs:\n  - name: web\n    include: ['nginx*.socket']\n");
    const ok = new PluginRun(['--check-config'], { ...NO_BUS, NETDATA_USER_CONFIG_DIR: good.dir });
    expect(await exitOf(ok)).toBe(0);
    expect(ok.lines[0]).toBe(`config: ${good.file}`);
    expect(ok.lines).toContain("  include: 'nginx*.socket'");
    expect(ok.lines.filter((l) => l !== '').at(-1)).toBe('OK: 1 job would run');
    expect(ok.rawStderr).toBe('');
    const bad = configDir('jobs:\n  - name: web\n    include: [*.socket]\n');
    const ko = new PluginRun(['--check-config'], { ...NO_BUS, NETDATA_USER_CONFIG_DIR: bad.dir });
    expect(await exitOf(ko)).toBe(1);
    expect(ko.lines.filter((l) => l !== '').at(-1)).toBe('1 problem (on stderr); no job would run: the plugin would disable itself');
    // For a terminal: no timestamp; the line says what to do, with the line number.
    expect(ko.rawStderr).toMatch(/^systemdunits\.plugin: .*: job 'web' \(jobs\[0\]\): include: not valid YAML at line 3, column 15: '\*\.socket' starts with '\*', which YAML reads as an alias: quote the glob, as in \['\*\.socket'\]; disabling the plugin\n$/);
  });

  it('--help and --version print and exit 0', async () => {
    const help = new PluginRun(['--help'], NO_BUS);
    expect(await exitOf(help)).toBe(0);
    expect(help.lines.slice(0, 2)).toEqual(['Usage: systemdunits.plugin [UPDATE_EVERY] [--config FILE] [--debug]', '                           [--check-config | --version | --help]']);
    const version = new PluginRun(['--version'], NO_BUS);
    expect(await exitOf(version)).toBe(0);
    expect(version.lines.filter((l) => l !== '')).toEqual([`systemdunits.plugin ${JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version}`]);
  });

  it('says on stderr what it ignores, and carries on', async () => {
    const run = new PluginRun(['1', '--bogus', '--config'], NO_BUS);
    expect(await exitOf(run)).toBe(0);
    // It went on to the bus (which is not there here): the options were not fatal.
    expect(stderrLines(run)).toEqual([
      'systemdunits.plugin: ignoring unknown option --bogus (see --help)',
      'systemdunits.plugin: ignoring --config without a file name (see --help)',
      expect.stringMatching(/^systemdunits\.plugin: cannot reach the system bus at unix:path=\/nonexistent\/bus: .*; disabling the plugin$/),
    ]);
  });

  it('timestamps its stderr lines unless the agent logs to the journal or syslog', async () => {
    const stamped = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d: systemdunits\.plugin: /;
    for (const [method, want] of [[undefined, true], ['stderr', true], ['journal', false], ['syslog', false]] as const) {
      const env: NodeJS.ProcessEnv = { ...NO_BUS, NETDATA_LOG_METHOD: method };
      if (method === undefined) delete env.NETDATA_LOG_METHOD;
      const run = new PluginRun(['1', '--config', '/nonexistent/systemdunits.conf'], env, { cleanEnv: true });
      expect(await exitOf(run)).toBe(0);
      const lines = run.rawStderr.split('\n').filter((l) => l !== '');
      expect(lines, `${method}: ${run.rawStderr}`).toHaveLength(1);
      expect(stamped.test(lines[0]!), `${method}: ${lines[0]}`).toBe(want);
      expect(lines[0]).toMatch(/systemdunits\.plugin: \/nonexistent\/systemdunits\.conf: cannot read the config \(no such file\); disabling the plugin$/);
    }
  });
});

describe('good and bad jobs against real systemd', () => {
  let sb: Sandbox;
  let run: PluginRun | undefined;

  beforeAll(async () => {
    sb = await startSandbox();
    await startSockets(sb, ['alpha']);
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
