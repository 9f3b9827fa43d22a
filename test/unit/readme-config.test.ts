// The README's Configuration section against the code: its example parses without a problem, its
// key table names every key with the default the schema really has, and the built-in job it
// describes is the one the plugin runs. The shipped sample config is that job too.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DEFAULT_INCLUDE, defaultJob, JOB_SCHEMA, parseConfig } from '../../plugin/config/index.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const section = readme.slice(readme.indexOf('\n## Configuration\n'), readme.indexOf('\n## ', readme.indexOf('\n## Configuration\n') + 5));
const example = /```yaml\n([\s\S]*?)```/.exec(section)![1]!;
/** key → default cell of the key table. */
const table = new Map([...section.matchAll(/^\| `([a-z_]+)` \| ([^|]*) \|/gm)].map((m) => [m[1]!, m[2]!.trim()]));

describe("the README's Configuration section", () => {
  it('has an example that parses without a problem', () => {
    const { config, problems } = parseConfig(example, 'README.md', 1);
    expect(problems).toEqual([]);
    expect(config.jobs.length).toBeGreaterThan(0);
  });

  it('documents every job key, and only those', () => {
    expect([...table.keys()].sort()).toEqual(Object.values(JOB_SCHEMA).map((s) => s.key).sort());
  });

  it('gives the defaults the schema has', () => {
    const job = defaultJob(1);
    const fields = Object.entries(JOB_SCHEMA) as [keyof typeof job, { key: string }][];
    for (const [field, spec] of fields) {
      if (field === 'updateEvery') continue; // the agent's: checked below
      const cell = table.get(spec.key)!;
      const value = job[field];
      if (typeof value === 'boolean' || typeof value === 'number') {
        expect(/^`([^`]*)`/.exec(cell)?.[1], spec.key).toBe(String(value));
      }
    }
    expect(table.get('name')).toBe('(required)');
    expect(table.get('update_every')).toBe("the agent's");
    expect(defaultJob(7).updateEvery).toBe(7);
    expect(table.get('exclude')).toBe('none');
    expect(job.exclude).toEqual([]);
    expect(table.get('include')).toBe(`the ${DEFAULT_INCLUDE.length} types above`);
    // `10`, or `update_every` if larger
    expect(table.get('socket_activity_every')).toMatch(/^`10`, or `update_every` if larger$/);
    expect(defaultJob(30).socketActivityEvery).toBe(30);
  });

  it("describes the built-in job as its example's first job", () => {
    expect(section).toMatch(/built-in job above\s+\(`service_units`\)/);
    const first = parseConfig(example, 'README.md', 1).config.jobs[0]!;
    expect(first).toEqual(defaultJob(1));
  });
});

describe('the shipped systemdunits.conf', () => {
  it('is the built-in job, without a problem', () => {
    const text = readFileSync(new URL('../../systemdunits.conf', import.meta.url), 'utf8');
    expect(parseConfig(text, 'systemdunits.conf', 1)).toEqual({ config: { jobs: [defaultJob(1)], source: 'systemdunits.conf' }, problems: [] });
  });
});
