import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BUILT_IN, DEFAULT_INCLUDE, findConfigFile, loadConfig, parseConfig } from '../../plugin/config.js';
import { parseArgs } from '../../plugin/args.js';

const SRC = '/etc/netdata/systemdunits.conf';

describe('config', () => {
  it('reads a go.d systemdunits job as it is', () => {
    const { config, problems } = parseConfig(
      `update_every: 2
autodetection_retry: 0
jobs:
  - name: service-units
    include:
      - '*.service'
    skip_transient: false
    timeout: 3
    collect_unit_files: yes
`,
      SRC,
      1,
    );
    expect(config.jobs).toEqual([
      { name: 'service-units', updateEvery: 2, include: ['*.service'], exclude: [], skipTransient: false, timeout: 3, socketActivity: false, socketActivityEvery: 10, aggregateInstances: true, flappingThreshold: 20 },
    ]);
    expect(problems).toEqual([`${SRC}: job 'service-units' (jobs[0]): collect_unit_files: not supported by this plugin; ignored`]);
  });

  it('fills defaults and accepts exclude and go.d durations', () => {
    const { config, problems } = parseConfig(`jobs:\n  - name: all\n    exclude: "user@*.service"\n    timeout: 500ms\n`, SRC, 5);
    expect(problems).toEqual([]);
    expect(config.jobs[0]).toEqual({ name: 'all', updateEvery: 5, include: DEFAULT_INCLUDE, exclude: ['user@*.service'], skipTransient: false, timeout: 0.5, socketActivity: false, socketActivityEvery: 10, aggregateInstances: true, flappingThreshold: 20 });
  });

  it('names file, job and key for every error and skips only the bad job', () => {
    const { config, problems } = parseConfig(
      `jobs:
  - name: good
    include: ['*.socket']
  - name: bad
    include: 5
  - include: ['*.service']
  - name: 'has space'
  - name: good
  - name: slow
    update_every: 0
  - name: t
    skip_transient: "yes"
    typo_key: 1
`,
      SRC,
      1,
    );
    expect(config.jobs.map((j) => j.name)).toEqual(['good']);
    expect(problems).toEqual([
      `${SRC}: job 'bad' (jobs[1]): include: must be a list of unit-name globs such as "*.socket"; job skipped`,
      `${SRC}: job (jobs[2]): name: required, a non-empty string; job skipped`,
      `${SRC}: job 'has space' (jobs[3]): name: use letters, digits, _ and - only (at most 64); job skipped`,
      `${SRC}: job 'good' (jobs[4]): name: duplicate job name; job skipped`,
      `${SRC}: job 'slow' (jobs[5]): update_every: must be a whole number of seconds from 1 to 3600; job skipped`,
      `${SRC}: job 't' (jobs[6]): skip_transient: must be true or false; job skipped`,
    ]);
  });

  it('never samples a job faster than the plugin runs', () => {
    const { config } = parseConfig(`jobs:\n  - name: a\n    update_every: 1\n`, SRC, 10);
    expect(config.jobs[0]!.updateEvery).toBe(10);
  });

  it('reports YAML errors in one line and falls back to the default job', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sdu-conf-'));
    const file = join(dir, 'systemdunits.conf');
    writeFileSync(file, 'jobs:\n  - name: [unclosed\n');
    const { config, problems } = loadConfig(file, 1);
    expect(config.source).toBe(BUILT_IN);
    expect(config.jobs.map((j) => j.name)).toEqual(['service_units']);
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(new RegExp(`^${file}: not valid YAML: `));
    for (const p of problems) expect(p).not.toContain('\n');
  });

  it('falls back to the default job for a missing file, an empty file and a file without jobs', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sdu-conf-'));
    expect(loadConfig(join(dir, 'nope.conf'), 1).problems[0]).toContain('cannot read the config (no such file)');
    writeFileSync(join(dir, 'empty.conf'), '');
    expect(loadConfig(join(dir, 'empty.conf'), 1).config.source).toBe(BUILT_IN);
    writeFileSync(join(dir, 'list.conf'), '- a\n- b\n');
    expect(loadConfig(join(dir, 'list.conf'), 1).problems[0]).toContain("expected a mapping with a 'jobs' list");
    const d = loadConfig(undefined, 3);
    expect(d.problems).toEqual([]);
    expect(d.config.jobs[0]).toMatchObject({ name: 'service_units', updateEvery: 3, skipTransient: false });
  });

  it('looks in the user config dir, then the stock one', () => {
    const user = mkdtempSync(join(tmpdir(), 'sdu-user-'));
    const stock = mkdtempSync(join(tmpdir(), 'sdu-stock-'));
    const env = { NETDATA_USER_CONFIG_DIR: user, NETDATA_STOCK_CONFIG_DIR: stock };
    expect(findConfigFile(undefined, env)).toBeUndefined();
    writeFileSync(join(stock, 'systemdunits.conf'), 'jobs: []');
    expect(findConfigFile(undefined, env)).toBe(join(stock, 'systemdunits.conf'));
    writeFileSync(join(user, 'systemdunits.conf'), 'jobs: []');
    expect(findConfigFile(undefined, env)).toBe(join(user, 'systemdunits.conf'));
    expect(findConfigFile('/x.conf', env)).toBe('/x.conf');
  });
});

describe('arguments', () => {
  it('takes update_every from argv, then NETDATA_UPDATE_EVERY, then 1', () => {
    expect(parseArgs(['5'], {}).updateEvery).toBe(5);
    expect(parseArgs([], { NETDATA_UPDATE_EVERY: '3' }).updateEvery).toBe(3);
    expect(parseArgs([], {}).updateEvery).toBe(1);
  });

  it('rejects a bad update_every with a note and falls back', () => {
    for (const bad of ['abc', '0', '-1', '1.5', '99999999']) {
      const a = parseArgs([bad], { NETDATA_UPDATE_EVERY: '2' });
      expect(a.updateEvery).toBe(2);
      expect(a.problems[0]).toContain(`ignoring update_every '${bad}'`);
    }
  });

  it('tolerates the words the agent appends and reads --config', () => {
    const a = parseArgs(['1', '[plugin:systemdunits]', '--config', '/etc/x.conf'], {});
    expect(a).toMatchObject({ updateEvery: 1, config: '/etc/x.conf', problems: [] });
  });
});
