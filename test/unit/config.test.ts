import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { BUILT_IN, DEFAULT_INCLUDE, defaultJob, findConfigFile, globProblem, loadConfig, MAX_CONFIG_BYTES, MAX_JOBS, MAX_PATTERNS, parseConfig } from '../../plugin/config/index.js';
import { HELP, parseArgs, VERSION } from '../../plugin/args.js';
import { UNIT_TYPES } from '../../plugin/config/schema.js';
import { UNIT_STATE_CHARTS } from '../../charts/unit-state.js';

const SRC = '/etc/netdata/systemdunits.conf';

const DEFAULTS = { exclude: [], skipTransient: false, timeout: 2, socketActivity: true, socketActivityEvery: 10, socketActivityMaxSockets: 40, aggregateInstances: true, flappingThreshold: 20, contextPrefix: 'systemd', restartLoopThreshold: 3, restartLoopWindow: 60 };

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
    expect(config.jobs).toEqual([{ ...DEFAULTS, name: 'service-units', updateEvery: 2, include: ['*.service'], skipTransient: false, timeout: 3 }]);
    expect(problems).toEqual([`${SRC}: job 'service-units' (jobs[0]): collect_unit_files: not supported by this plugin; ignored`]);
  });

  it('fills defaults and accepts exclude, go.d durations and YAML 1.1 booleans', () => {
    const { config, problems } = parseConfig(
      `jobs:\n  - name: all\n    exclude: "user@*.service"\n    timeout: 500ms\n    socket_activity: no\n    socket_activity_every: 1m\n    aggregate_instances: off\n`,
      SRC,
      5,
    );
    expect(problems).toEqual([]);
    expect(config.jobs[0]).toEqual({
      ...DEFAULTS,
      name: 'all',
      updateEvery: 5,
      include: DEFAULT_INCLUDE,
      exclude: ['user@*.service'],
      timeout: 0.5,
      socketActivity: false,
      socketActivityEvery: 60,
      aggregateInstances: false,
    });
  });

  it('the built-in job is the schema defaults', () => {
    expect(defaultJob(3)).toEqual({ ...DEFAULTS, name: 'service_units', updateEvery: 3, include: DEFAULT_INCLUDE });
  });

  it('never samples a job faster than the plugin runs', () => {
    const { config } = parseConfig(`jobs:\n  - name: a\n    update_every: 1\n`, SRC, 10);
    expect(config.jobs[0]!.updateEvery).toBe(10);
  });

  // Each bad job sits between two good ones: its one line names the file, the job and the key,
  // it is skipped, and the good jobs run.
  const BAD_JOBS: { what: string; job: string; line: RegExp }[] = [
    { what: 'an unknown key (a typo)', job: `  - name: bad\n    exlude: ['a.service']`, line: /job 'bad' \(jobs\[1\]\): exlude: unknown key \(did you mean 'exclude'\?\); job skipped$/ },
    { what: 'an unknown key', job: `  - name: bad\n    colour: blue`, line: /job 'bad' \(jobs\[1\]\): colour: unknown key \(known: name, update_every, include, exclude, skip_transient, timeout, socket_activity, socket_activity_every, socket_activity_max_sockets, aggregate_instances, flapping_threshold, context_prefix, restart_loop_threshold, restart_loop_window\); job skipped$/ },
    { what: 'a number for a list', job: `  - name: bad\n    include: 5`, line: /job 'bad' \(jobs\[1\]\): include: expected a list of unit-name globs such as \['\*\.socket'\], got 5; job skipped$/ },
    { what: 'a string for a boolean', job: `  - name: bad\n    skip_transient: "maybe"`, line: /job 'bad' \(jobs\[1\]\): skip_transient: expected true or false, got 'maybe'; job skipped$/ },
    { what: 'a word for a duration', job: `  - name: bad\n    timeout: soon`, line: /job 'bad' \(jobs\[1\]\): timeout: expected seconds above 0 and at most 60 .*, got 'soon'; job skipped$/ },
    { what: 'a fraction for whole seconds', job: `  - name: bad\n    socket_activity_every: 1.5`, line: /job 'bad' \(jobs\[1\]\): socket_activity_every: expected a whole number of seconds from 1 to 3600 .*, got 1\.5; job skipped$/ },
    { what: 'a mapping for a boolean', job: `  - name: bad\n    aggregate_instances: {a: 1}`, line: /job 'bad' \(jobs\[1\]\): aggregate_instances: expected true or false, got a mapping; job skipped$/ },
    { what: 'a flapping threshold of 0', job: `  - name: bad\n    flapping_threshold: 0`, line: /job 'bad' \(jobs\[1\]\): flapping_threshold: expected a whole number from 1 to 1000000, got 0; job skipped$/ },
    { what: 'update_every 0', job: `  - name: bad\n    update_every: 0`, line: /job 'bad' \(jobs\[1\]\): update_every: expected a whole number of seconds from 1 to 3600, got 0; job skipped$/ },
    { what: 'an empty key', job: `  - name: bad\n    exclude:`, line: /job 'bad' \(jobs\[1\]\): exclude: expected a list .*, got nothing \(leave the key out for the default\); job skipped$/ },
    { what: 'an empty pattern', job: `  - name: bad\n    include: ['']`, line: /job 'bad' \(jobs\[1\]\): include: '': an empty pattern matches no unit; job skipped$/ },
    { what: 'an empty include list', job: `  - name: bad\n    include: []`, line: /job 'bad' \(jobs\[1\]\): include: the list is empty: name at least one pattern, or leave the key out for the default; job skipped$/ },
    { what: 'an unclosed bracket', job: `  - name: bad\n    include: ['web[12.socket']`, line: /job 'bad' \(jobs\[1\]\): include: 'web\[12\.socket': the '\[' at position 4 is never closed; job skipped$/ },
    { what: 'a space in a pattern', job: `  - name: bad\n    exclude: ['my app.service']`, line: /job 'bad' \(jobs\[1\]\): exclude: 'my app\.service': ' ' appears in no unit name .*; job skipped$/ },
    { what: 'a misspelt unit type', job: `  - name: bad\n    include: ['*.sokcet']`, line: /job 'bad' \(jobs\[1\]\): include: '\*\.sokcet': '\.sokcet' is not a unit type \(did you mean 'socket'\?\); job skipped$/ },
    { what: 'no unit type', job: `  - name: bad\n    include: ['nginx']`, line: /job 'bad' \(jobs\[1\]\): include: 'nginx': no unit type: unit names end in \.service, \.socket…; job skipped$/ },
    { what: 'a key given twice', job: `  - name: bad\n    timeout: 1\n    timeout: 2`, line: /job 'bad' \(jobs\[1\]\): timeout: the key is given twice \(line 6, column 5\); job skipped$/ },
    { what: 'a duplicate job name', job: `  - name: good1\n    include: ['*.timer']`, line: /job 'good1' \(jobs\[1\]\): name: 'good1' is already the name of jobs\[0\]; job skipped$/ },
    { what: 'a name with a space', job: `  - name: 'has space'`, line: /job 'has space' \(jobs\[1\]\): name: expected letters, digits, _ and - only \(at most 64\), got 'has space'; job skipped$/ },
    { what: 'no name', job: `  - include: ['*.socket']`, line: /job \(jobs\[1\]\): name: required; job skipped$/ },
    { what: 'a job that is not a mapping', job: `  - just-a-string`, line: /job \(jobs\[1\]\): expected a mapping of keys \(name, include…\), got 'just-a-string'; job skipped$/ },
  ];
  for (const c of BAD_JOBS) {
    it(`skips a job with ${c.what} in one line naming file, job and key; the others run`, () => {
      const text = `jobs:\n  - name: good1\n    include: ['*.socket']\n${c.job}\n  - name: good2\n    include: ['*.service']\n`;
      const { config, problems } = parseConfig(text, SRC, 1);
      expect(config.jobs.map((j) => j.name)).toEqual(['good1', 'good2']);
      expect(problems, problems.join('\n')).toHaveLength(1);
      expect(problems[0]!.startsWith(`${SRC}: job `)).toBe(true);
      expect(problems[0]).toMatch(c.line);
      expect(problems[0]).not.toMatch(/[\n\r]/);
    });
  }

  it('reports every problem of a job, one line each', () => {
    const { config, problems } = parseConfig(`jobs:\n  - name: a\n    include: 5\n    timeout: x\n    typo: 1\n  - name: b\n`, SRC, 1);
    expect(config.jobs.map((j) => j.name)).toEqual(['b']);
    expect(problems.map((p) => p.replace(/^.*?\(jobs\[0\]\): /, '').split(':')[0])).toEqual(['typo', 'include', 'timeout']);
  });

  // Nothing can run: one line says why and ends in "disabling the plugin"; main then prints DISABLE.
  const NO_JOB: { what: string; text: string; lines: RegExp[] }[] = [
    { what: 'a YAML syntax error', text: `jobs:\n  - name: web\n    include: ['*.socket'\n  - name: b\n`, lines: [/: job 'web' \(jobs\[0\]\): include: not valid YAML at line 4, column 3: .*; disabling the plugin$/] },
    { what: 'a tab as indentation', text: `jobs:\n\t- name: a\n`, lines: [/: not valid YAML at line 2, column 1: Tabs are not allowed as indentation.*; disabling the plugin$/] },
    { what: 'a top-level key given twice', text: `jobs: []\njobs:\n  - name: a\n`, lines: [/: not valid YAML at line 2, column 1: Map keys must be unique.*; disabling the plugin$/] },
    { what: 'an unresolved alias', text: `jobs:\n  - name: a\n    include: *nope\n`, lines: [/: job 'a' \(jobs\[0\]\): include: not valid YAML at line 3, column 14: the alias '\*nope' names no anchor \(&nope\) before it; a glob starting with '\*' must be quoted; disabling the plugin$/] },
    {
      what: 'an unquoted glob in a flow list',
      text: `jobs:\n  - name: a\n    include: ['*.service', *.socket]\n`,
      lines: [/: job 'a' \(jobs\[0\]\): include: not valid YAML at line 3, column 28: '\*\.socket' starts with '\*', which YAML reads as an alias: quote the glob, as in \['\*\.socket'\]; disabling the plugin$/],
    },
    {
      what: 'an unquoted glob in a block list',
      text: `jobs:\n  - name: a\n    exclude:\n      - user@*.service\n      - *.socket\n`,
      lines: [/: job 'a' \(jobs\[0\]\): exclude: not valid YAML at line 5, column 9: '\*\.socket' starts with '\*', which YAML reads as an alias: quote the glob, as in \['\*\.socket'\]; disabling the plugin$/],
    },
    { what: 'a list at the top', text: `- a\n- b\n`, lines: [/: expected a mapping with a 'jobs' list at the top, got a list; disabling the plugin$/] },
    { what: 'jobs that is not a list', text: `jobs: web\n`, lines: [/: jobs: expected a list of jobs, got 'web'; disabling the plugin$/] },
    { what: 'an empty jobs list', text: `jobs: []\n`, lines: [/: jobs: the list is empty; disabling the plugin$/] },
    {
      what: 'only bad jobs',
      text: `jobs:\n  - name: a\n    include: 5\n  - name: a b\n`,
      lines: [/job 'a' \(jobs\[0\]\): include: /, /job 'a b' \(jobs\[1\]\): name: /, /: no valid job \(2 skipped\); disabling the plugin$/],
    },
  ];
  for (const c of NO_JOB) {
    it(`runs no job for ${c.what}, and says so in one line`, () => {
      const { config, problems } = parseConfig(c.text, SRC, 1);
      expect(config.jobs).toEqual([]);
      expect(problems, problems.join('\n')).toHaveLength(c.lines.length);
      problems.forEach((p, i) => {
        expect(p.startsWith(`${SRC}: `)).toBe(true);
        expect(p).toMatch(c.lines[i]!);
        expect(p).not.toMatch(/[\n\r]/);
      });
    });
  }

  it('reports an unknown top-level key and runs the jobs anyway', () => {
    const { config, problems } = parseConfig(`update_evrey: 5\njobs:\n  - name: a\n`, SRC, 1);
    expect(config.jobs.map((j) => j.name)).toEqual(['a']);
    expect(problems).toEqual([`${SRC}: update_evrey: unknown top-level key, ignored (did you mean 'update_every'?)`]);
    const bad = parseConfig(`update_every: fast\njobs:\n  - name: a\n`, SRC, 2);
    expect(bad.config.jobs[0]!.updateEvery).toBe(2);
    expect(bad.problems).toEqual([`${SRC}: update_every: expected a whole number of seconds from 1 to 3600, got 'fast'; using 2`]);
  });

  it('takes context_prefix at the top (every job’s default) and per job, and refuses what is not one lowercase word', () => {
    const { config, problems } = parseConfig(`context_prefix: systemdunits\njobs:\n  - name: a\n  - name: b\n    context_prefix: mine_2\n`, SRC, 1);
    expect(problems).toEqual([]);
    expect(config.jobs.map((j) => [j.name, j.contextPrefix])).toEqual([['a', 'systemdunits'], ['b', 'mine_2']]);
    expect(parseConfig('context_prefix: systemdunits\n', SRC, 1).config.jobs.map((j) => j.contextPrefix)).toEqual(['systemdunits']);
    expect(parseConfig('jobs:\n  - name: a\n', SRC, 1).config.jobs[0]!.contextPrefix).toBe('systemd');
    for (const bad of ['systemd.units', 'Systemd', '1st', '', 'a b', 'x'.repeat(33), '[a]']) {
      const job = parseConfig(`jobs:\n  - name: a\n    context_prefix: '${bad}'\n  - name: ok\n`, SRC, 1);
      expect(job.config.jobs.map((j) => j.name), bad).toEqual(['ok']);
      expect(job.problems, bad).toEqual([expect.stringMatching(/^\/etc\/netdata\/systemdunits.conf: job 'a' \(jobs\[0\]\): context_prefix: expected a lowercase letter, then lowercase letters, digits and _ only \(at most 32\), got .*; job skipped$/)]);
      const top = parseConfig(`context_prefix: '${bad}'\njobs:\n  - name: a\n`, SRC, 1);
      expect(top.config.jobs.map((j) => j.contextPrefix), bad).toEqual(['systemd']);
      expect(top.problems, bad).toEqual([expect.stringMatching(/^\/etc\/netdata\/systemdunits.conf: context_prefix: expected .*; using systemd$/)]);
    }
  });

  it('uses the built-in job when there is no file, or the file has no jobs key', () => {
    const d = loadConfig(undefined, 3);
    expect(d.problems).toEqual([]);
    expect(d.config).toEqual({ source: BUILT_IN, jobs: [defaultJob(3)] });
    expect(parseConfig('', SRC, 1)).toEqual({ config: { source: SRC, jobs: [defaultJob(1)] }, problems: [] });
    expect(parseConfig('update_every: 5\n', SRC, 1).config.jobs).toEqual([{ ...defaultJob(1), updateEvery: 5 }]);
  });

  it('runs no job when the named file cannot be read', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sdu-conf-'));
    const missing = join(dir, 'nope.conf');
    expect(loadConfig(missing, 1)).toEqual({ config: { jobs: [], source: missing }, problems: [`${missing}: cannot read the config (no such file); disabling the plugin`] });
    const asDir = loadConfig(dir, 1);
    expect(asDir.config.jobs).toEqual([]);
    expect(asDir.problems).toHaveLength(1);
    expect(asDir.problems[0]).toMatch(new RegExp(`^${dir}: cannot read the config \\(.*\\); disabling the plugin$`));
  });

  // Issue 10: /dev/zero ate 4-10 GB, a FIFO blocked for good, 100 MB of YAML took 3 GB. Each is
  // refused in one line naming the file, having read at most the cap.
  describe('refuses what is not a config file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sdu-conf-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    const refused = (file: string, reason: RegExp) => {
      const r = loadConfig(file, 1);
      expect(r.config.jobs).toEqual([]);
      expect(r.problems, r.problems.join('\n')).toHaveLength(1);
      expect(r.problems[0]!.startsWith(`${file}: `)).toBe(true);
      expect(r.problems[0]).toMatch(reason);
      expect(r.problems[0]).toMatch(/; disabling the plugin$/);
    };
    it('a character device', () => refused('/dev/zero', /cannot read the config \(a character device, not a regular file\)/));
    it('a symlink to one', () => {
      const link = join(dir, 'zero.conf');
      symlinkSync('/dev/zero', link);
      refused(link, /\(a character device, not a regular file\)/);
    });
    it('a FIFO with no writer, without blocking', () => {
      const fifo = join(dir, 'fifo.conf');
      execFileSync('mkfifo', [fifo]);
      refused(fifo, /\(a FIFO, not a regular file\)/);
    });
    it('a file over the cap, even a sparse one', () => {
      const big = join(dir, 'big.conf');
      writeFileSync(big, 'jobs:\n');
      truncateSync(big, 100 * 1024 * 1024);
      refused(big, /refusing the config \(104857600 bytes, over the 32 KiB limit: a config is a few KB\)/);
    });
    it('but reads a file of exactly the cap', () => {
      const full = join(dir, 'full.conf');
      const head = 'jobs:\n  - name: a\n';
      writeFileSync(full, head + '#'.repeat(MAX_CONFIG_BYTES - head.length - 1) + '\n');
      expect(loadConfig(full, 1)).toMatchObject({ config: { jobs: [{ name: 'a' }] }, problems: [] });
      writeFileSync(full, head + '#'.repeat(MAX_CONFIG_BYTES - head.length) + '\n');
      refused(full, /over the 32 KiB limit/);
    });
  });

  describe('bounds what a file may ask for', () => {
    it('nesting', () => {
      const { config, problems } = parseConfig(`jobs:\n  - name: a\n    include: ${'['.repeat(5000)}${']'.repeat(5000)}\n`, SRC, 1);
      expect(config.jobs).toEqual([]);
      expect(problems).toEqual([`${SRC}: too complex for a config: nested more than 32 deep at line 3, column 46; disabling the plugin`]);
    });
    it('aliases', () => {
      const { config, problems } = parseConfig(`x: &a ['*.socket']\ny: [${'*a, '.repeat(200)}*a]\njobs:\n  - name: a\n`, SRC, 1);
      expect(config.jobs).toEqual([]);
      expect(problems).toEqual([`${SRC}: too complex for a config: more than 100 aliases (*name); disabling the plugin`]);
    });
    it('jobs', () => {
      const jobs = (n: number) => `jobs:\n${Array.from({ length: n }, (_, i) => `  - name: j${i}\n`).join('')}`;
      expect(parseConfig(jobs(MAX_JOBS), SRC, 1).config.jobs).toHaveLength(MAX_JOBS);
      expect(parseConfig(jobs(MAX_JOBS + 1), SRC, 1)).toEqual({
        config: { jobs: [], source: SRC },
        problems: [`${SRC}: jobs: ${MAX_JOBS + 1} jobs, more than the ${MAX_JOBS} allowed; disabling the plugin`],
      });
    });
    it('patterns per list', () => {
      const list = (n: number) => `[${Array.from({ length: n }, (_, i) => `'u${i}.service'`).join(', ')}]`;
      const { config, problems } = parseConfig(`jobs:\n  - name: a\n    exclude: ${list(MAX_PATTERNS)}\n  - name: b\n    include: ${list(MAX_PATTERNS + 1)}\n`, SRC, 1);
      expect(config.jobs.map((j) => j.name)).toEqual(['a']);
      expect(problems).toEqual([`${SRC}: job 'b' (jobs[1]): include: ${MAX_PATTERNS + 1} patterns, more than the ${MAX_PATTERNS} allowed; job skipped`]);
    });
    it('lines said about one file', () => {
      const { problems } = parseConfig(`jobs:\n  - name: a\n${Array.from({ length: 500 }, (_, i) => `    k${i}: 1\n`).join('')}`, SRC, 1);
      expect(problems).toHaveLength(20);
      expect(problems[18]).toBe(`${SRC}: 482 more problems not shown`);
      expect(problems[19]).toBe(`${SRC}: no valid job (1 skipped); disabling the plugin`);
    });
    it('finds a key given twice among thousands, in a job and at the top', () => {
      const keys = Array.from({ length: 3000 }, (_, i) => `    k${i}: 1\n`).join('');
      const job = parseConfig(`jobs:\n  - name: a\n${keys}    name: b\n`, SRC, 1).problems;
      expect(job[0]).toBe(`${SRC}: job 'b' (jobs[0]): name: the key is given twice (line 3003, column 5); job skipped`);
      const top = parseConfig(`${keys.replace(/^ +/gm, '')}k7: 2\njobs:\n  - name: a\n`, SRC, 1).problems;
      expect(top.at(-1)).toBe(`${SRC}: not valid YAML at line 3001, column 1: Map keys must be unique; disabling the plugin`);
    });
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

  it("falls back to the agents' usual dirs only when the agent named no user config dir", () => {
    const user = mkdtempSync(join(tmpdir(), 'sdu-user-'));
    const etc = mkdtempSync(join(tmpdir(), 'sdu-etc-'));
    const opt = mkdtempSync(join(tmpdir(), 'sdu-opt-'));
    onTestFinished(() => [user, etc, opt].forEach((d) => rmSync(d, { recursive: true, force: true })));
    writeFileSync(join(opt, 'systemdunits.conf'), 'jobs: []');
    expect(findConfigFile(undefined, {}, [etc, opt])).toBe(join(opt, 'systemdunits.conf'));
    writeFileSync(join(etc, 'systemdunits.conf'), 'jobs: []');
    expect(findConfigFile(undefined, {}, [etc, opt])).toBe(join(etc, 'systemdunits.conf'));
    // Under the agent, its dirs only: what it set is what it meant.
    expect(findConfigFile(undefined, { NETDATA_USER_CONFIG_DIR: user }, [etc, opt])).toBeUndefined();
    expect(findConfigFile(undefined, {})).toBeUndefined();
  });
});

describe('unit-name patterns', () => {
  it('accepts what systemctl list-units accepts for real unit names', () => {
    for (const g of ['*', '*.socket', 'nginx*', 'my\\x2dapp@*.socket', 'web[12].s?cket', 'sys-devices-*.device', 'user@[!0]*.service', '-.mount', 'a:b.service', '*.*']) {
      expect(globProblem(g), g).toBeUndefined();
    }
  });
  it('refuses patterns no unit name can match', () => {
    for (const g of ['', 'a b.service', 'x/y.service', '*.sockets', 'foo', 'web[1.socket', 'é.service', "it's.service", 'web[!].socket']) {
      expect(globProblem(g), g).toBeDefined();
    }
  });
});

describe('unit-name patterns', () => {
  it("refuses a range the wrong way round (a RegExp of it would not even compile)", () => {
    expect(globProblem('tty[9-1].service')).toBe("the range '9-1' is the wrong way round and matches nothing");
    expect(globProblem('tty[1-9].service')).toBeUndefined();
  });

  it("accepts a pattern for every unit type the plugin charts, and only those (systemd's types: the two lists must agree)", () => {
    const charted = UNIT_STATE_CHARTS.map((k) => k.unitType);
    for (const t of charted) expect(globProblem(`*.${t}`), t).toBeUndefined();
    expect([...UNIT_TYPES].sort()).toEqual([...charted].sort());
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

  it('accepts the same longest interval as the config: the agent\'s 3600 s', () => {
    expect(parseArgs(['3600'], {}).updateEvery).toBe(3600);
    const a = parseArgs(['3601'], { NETDATA_UPDATE_EVERY: '2' });
    expect(a.updateEvery).toBe(2);
    expect(a.problems).toEqual(["ignoring update_every '3601': expected a whole number of seconds from 1 to 3600"]);
    expect(parseConfig('update_every: 3600\n', SRC, 1).config.jobs[0]!.updateEvery).toBe(3600);
    expect(parseConfig('update_every: 3601\n', SRC, 1).problems).toEqual([`${SRC}: update_every: expected a whole number of seconds from 1 to 3600, got 3601; using 1`]);
  });

  it('tolerates the words the agent appends and reads --config', () => {
    const a = parseArgs(['1', '[plugin:systemdunits]', '--config', '/etc/x.conf'], {});
    expect(a).toMatchObject({ action: 'run', updateEvery: 1, config: '/etc/x.conf', problems: [] });
  });

  it('says so when an option is unknown or --config has no file, and runs anyway', () => {
    expect(parseArgs(['1', '--bogus', '-x', '--colour=red'], {})).toMatchObject({
      action: 'run',
      updateEvery: 1,
      problems: ['ignoring unknown option --bogus (see --help)', 'ignoring unknown option -x (see --help)', 'ignoring unknown option --colour (see --help)'],
    });
    for (const argv of [['1', '--config'], ['1', '--config', '--debug'], ['1', '--config=']]) {
      const a = parseArgs(argv, {});
      expect(a, argv.join(' ')).toMatchObject({ action: 'run', config: undefined, problems: ['ignoring --config without a file name (see --help)'] });
    }
  });

  it('reads --help, --version and --check-config', () => {
    expect(parseArgs(['--help'], {})).toMatchObject({ action: 'help', problems: [] });
    expect(parseArgs(['--version'], {})).toMatchObject({ action: 'version', problems: [] });
    expect(parseArgs(['--check-config', '--config', '/x.conf'], {})).toMatchObject({ action: 'check-config', config: '/x.conf', problems: [] });
    expect(VERSION).toBe(JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version);
  });

  it('has a help text with whole words, every option, and lines that fit a terminal', () => {
    const lines = HELP.trimEnd().split('\n');
    for (const l of lines) expect(l.length, l).toBeLessThanOrEqual(80);
    // Lines break between words only: the old help cut 'sys' / 'temd'.
    const flat = HELP.replace(/\s+/g, ' ');
    expect(flat).toContain('Netdata external plugin: systemd unit states over D-Bus.');
    expect(flat).toContain('check the config the agent would use, print what it would chart, and exit');
    const usage = HELP.slice(0, HELP.indexOf('\n\n'));
    for (const o of ['--config FILE', '--debug', '--check-config', '--version', '--help']) {
      expect(usage, o).toContain(o);
      expect(HELP.slice(usage.length), o).toMatch(new RegExp(`^  ${o}`, 'm'));
    }
  });
});
