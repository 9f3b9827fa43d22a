// --check-config: finds the file as the agent would (and, run by hand, in the agents' usual
// dirs), checks it as the plugin does, says what would be charted, and fails on any problem.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkConfig } from '../../plugin/config/index.js';

const made: string[] = [];
afterAll(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));

function dirWith(text?: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'sdu-check-'));
  made.push(dir);
  if (text !== undefined) writeFileSync(join(dir, 'systemdunits.conf'), text);
  return dir;
}

describe('--check-config', () => {
  it('reports a good config and what it would chart, with status 0', () => {
    const dir = dirWith(`jobs:\n  - name: web\n    include: ['nginx*.socket']\n    exclude: ['nginx-old.socket']\n    socket_activity: yes\n`);
    const r = checkConfig(undefined, { NETDATA_USER_CONFIG_DIR: dir }, 1, []);
    expect(r.status).toBe(0);
    expect(r.problems).toEqual([]);
    expect(r.report).toEqual([
      `config: ${join(dir, 'systemdunits.conf')}`,
      "job 'web': every 1 s, charts systemdunits_web.<type>_unit_state (and _units_by_state, _unit_state_transitions, _units_by_load_state) for each unit type with units",
      "  include: 'nginx*.socket'",
      "  exclude: 'nginx-old.socket'",
      '  skip_transient: false, timeout: 2 s, aggregate_instances: true, flapping_threshold: 20',
      '  socket_activity: every 10 s, at most 40 sockets a round',
      '  restart loops: systemdunits_web.service_unit_restarts, warns above 3 restarts of one service in 60 s',
      'OK: 1 job would run',
    ]);
  });

  it('says a context_prefix other than the default', () => {
    const dir = dirWith(`context_prefix: systemdunits\njobs:\n  - name: a\n  - name: b\n    context_prefix: systemd\n`);
    const r = checkConfig(undefined, { NETDATA_USER_CONFIG_DIR: dir }, 1, []);
    expect(r.status).toBe(0);
    expect(r.report.filter((l) => l.includes('context_prefix'))).toEqual(["  context_prefix: systemdunits (contexts systemdunits.<type>_unit_state…, apart from go.d's systemd.*)"]);
  });

  it('fails with the problems when a job is skipped, and says what still runs', () => {
    const dir = dirWith(`jobs:\n  - name: a\n  - name: b\n    exlude: []\n`);
    const r = checkConfig(undefined, { NETDATA_USER_CONFIG_DIR: dir }, 1, []);
    expect(r.status).toBe(1);
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]).toMatch(/job 'b' \(jobs\[1\]\): exlude: unknown key \(did you mean 'exclude'\?\); job skipped$/);
    expect(r.report.at(-1)).toBe('1 problem (on stderr); 1 job would run');
  });

  it('fails when nothing would run', () => {
    const dir = dirWith(`jobs:\n  - name: a\n    include: [*.socket]\n`);
    const r = checkConfig(undefined, { NETDATA_USER_CONFIG_DIR: dir }, 1, []);
    expect(r.status).toBe(1);
    expect(r.problems[0]).toMatch(/quote the glob/);
    expect(r.report.at(-1)).toBe('1 problem (on stderr); no job would run: the plugin would disable itself');
  });

  it("run by hand (no NETDATA_USER_CONFIG_DIR), checks the installed config in the agents' dirs", () => {
    const etc = dirWith();
    const opt = dirWith('jobs:\n  - name: opt_job\n');
    const r = checkConfig(undefined, {}, 1, [etc, opt]);
    expect(r.report[0]).toBe(`config: ${join(opt, 'systemdunits.conf')}`);
    expect(r.report[1]).toMatch(/^job 'opt_job': /);
  });

  it('says where it looked when there is no file, and that the built-in job would run', () => {
    const etc = dirWith();
    const r = checkConfig(undefined, {}, 1, [etc]);
    expect(r.status).toBe(0);
    expect(r.report[0]).toBe(`no systemdunits.conf in ${etc}: the built-in job would run`);
    expect(r.report[1]).toMatch(/^job 'service_units': /);
  });

  it('refuses what the plugin refuses', () => {
    const r = checkConfig('/dev/zero', {}, 1, []);
    expect(r.status).toBe(1);
    expect(r.problems).toEqual(['/dev/zero: cannot read the config (a character device, not a regular file); disabling the plugin']);
  });
});
