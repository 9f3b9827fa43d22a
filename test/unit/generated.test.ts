// The generated files against their sources: each is what `npm run generate` would write now
// (health.d/systemdunits.conf, plugin/config/config_schema.json, README.md's key table,
// metadata.yaml); the per-agent-version forms of the health file are what the installer's sed
// makes of it; and config_schema.json offers exactly what the plugin's validation accepts.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ALARMS, renderHealth, type AgentForm } from '../../health.d/alarms.js';
import { JOB_SCHEMA, MAX_UPDATE_EVERY, parseConfig } from '../../plugin/config/index.js';
import { repoRoot } from '../../harness/run.js';

const GENERATED = ['health.d/systemdunits.conf', 'plugin/config/config_schema.json', 'README.md', 'metadata.yaml'];
const tsx = join(repoRoot, 'node_modules/.bin/tsx');
const generate = (...args: string[]) => spawnSync(tsx, [join(repoRoot, 'scripts/build/generate.mts'), '--check', ...args], { encoding: 'utf8' });

describe('generated files', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'generated-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('are what npm run generate writes from their sources', () => {
    const run = generate();
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
  });

  it('are reported stale, each by name, when they differ from their sources', () => {
    for (const rel of GENERATED) {
      mkdirSync(dirname(join(tmp, rel)), { recursive: true });
      cpSync(join(repoRoot, rel), join(tmp, rel));
    }
    expect(generate('--root', tmp).status).toBe(0);
    const edit = (rel: string, change: (t: string) => string) => writeFileSync(join(tmp, rel), change(readFileSync(join(tmp, rel), 'utf8')));
    edit('health.d/systemdunits.conf', (t) => t.replace('warn: $this > 0', 'warn: $this > 1'));
    edit('plugin/config/config_schema.json', (t) => t.replace('"maximum": 60', '"maximum": 61'));
    edit('README.md', (t) => t.replace('| `timeout` | `2` |', '| `timeout` | `3` |'));
    edit('metadata.yaml', (t) => t.replace('unit: state', 'unit: status'));
    const run = generate('--root', tmp);
    expect(run.status).toBe(1);
    expect(run.stderr.trim().split('\n')).toEqual(GENERATED.map((rel) => `generate: ${rel} is stale: run npm run generate`));
  });
});

describe('the health file for each agent version', () => {
  const shipped = readFileSync(join(repoRoot, 'health.d/systemdunits.conf'), 'utf8');
  const sed = (version: string) =>
    execFileSync('bash', ['-c', `source "${repoRoot}/scripts/install/lib/netdata-layout.sh"; nd_health_for_version "$1"`, 'sh', version], { input: shipped, encoding: 'utf8' });
  const forms: [string, AgentForm][] = [['1.37.1', 'before-1.38'], ['1.41.0', 'before-1.42'], ['1.42.0', 'current'], ['2.10.4', 'current']];

  it.each(forms)('%s: the installer makes of the shipped file what alarms.ts renders for that agent (%s)', (version, form) => {
    expect(sed(version)).toBe(renderHealth(form));
  });

  it.each(forms)('%s, beside go.d (context_prefix systemdunits): the installer makes the same as alarms.ts', (version, form) => {
    const script = 'source "$1/scripts/install/lib/netdata-layout.sh"; nd_health_for_version "$2" | nd_health_for_prefix systemdunits';
    const installed = execFileSync('bash', ['-c', script, 'sh', repoRoot, version], { input: shipped, encoding: 'utf8' });
    const rendered = renderHealth(form, 'systemdunits');
    expect(installed).toBe(rendered);
    // Every template on the prefix, none left on go.d's systemd.* contexts; the names stay.
    const on = [...rendered.matchAll(/^ *on: (.*)$/gm)].map((m) => m[1]!);
    expect(on).toHaveLength(ALARMS.length);
    expect(on.filter((c) => !c.startsWith('systemdunits.'))).toEqual([]);
    expect(on).toEqual(ALARMS.map((a) => a.on.replace(/^systemd\./, 'systemdunits.')));
    expect([...rendered.matchAll(/^ *template: (.*)$/gm)].map((m) => m[1])).toEqual(ALARMS.map((a) => a.template));
  });

  it('drops summary: and rewrites ${label:…} only where an agent needs it', () => {
    expect(renderHealth('before-1.42')).not.toMatch(/summary:/);
    expect(renderHealth('before-1.38')).not.toMatch(/^[^#].*\$\{label:/m); // the header comment still names both forms
    expect(renderHealth('before-1.38')).toContain('$label:failure_summary - $label:failure_advice');
    expect(renderHealth('current').match(/^ *summary:/gm)).toHaveLength(ALARMS.length);
  });
});

describe('metadata.yaml', () => {
  const meta = parse(readFileSync(join(repoRoot, 'metadata.yaml'), 'utf8'));
  const mod = meta.modules[0];

  it("parses, in the shape of Netdata's integrations", () => {
    expect(meta.plugin_name).toBe('systemdunits.plugin');
    expect(Object.keys(mod)).toEqual(['meta', 'overview', 'setup', 'troubleshooting', 'alerts', 'metrics']);
    expect(mod.meta).toMatchObject({ plugin_name: 'systemdunits.plugin', module_name: 'systemdunits' });
    // The keys netdata/netdata's integrations/schemas/collector.json requires.
    expect(Object.keys(mod.meta)).toEqual(expect.arrayContaining(['plugin_name', 'module_name', 'monitored_instance', 'keywords', 'related_resources', 'info_provided_to_referring_integrations']));
    expect(Object.keys(mod.overview)).toEqual(expect.arrayContaining(['data_collection', 'supported_platforms', 'multi_instance', 'additional_permissions', 'default_behavior']));
    for (const a of mod.alerts) expect(Object.keys(a).sort()).toEqual(['info', 'link', 'metric', 'name']);
    for (const scope of mod.metrics.scopes) {
      for (const m of scope.metrics) {
        expect(['line', 'area', 'stacked', 'heatmap'], m.name).toContain(m.chart_type);
        expect(m.dimensions.length, m.name).toBeGreaterThan(0);
      }
    }
    for (const ex of mod.setup.configuration.examples.list) expect(parseConfig(ex.config, ex.name, 1).problems).toEqual([]);
  });

  it('names every alarm of the health file, with a page that exists', () => {
    const templates = [...readFileSync(join(repoRoot, 'health.d/systemdunits.conf'), 'utf8').matchAll(/^ template: (\S+)$/gm)].map((m) => m[1]);
    expect(mod.alerts.map((a: { name: string }) => a.name)).toEqual(templates);
    for (const a of mod.alerts) expect(() => readFileSync(join(repoRoot, a.link)), a.link).not.toThrow();
  });
});

describe('config_schema.json', () => {
  const schema = JSON.parse(readFileSync(join(repoRoot, 'plugin/config/config_schema.json'), 'utf8'));
  const props: Record<string, { type: string; default: unknown; examples: unknown[]; minimum?: number; maximum?: number; minItems?: number; maxItems?: number }> =
    schema.jsonSchema.properties;
  const job = (key: string, value: unknown) => parseConfig(JSON.stringify({ jobs: [{ name: 'j', [key]: value }] }), 'schema', 1);

  it("offers every job key but the name, which go.d's UI asks for itself", () => {
    expect(Object.keys(props).sort()).toEqual(Object.values(JOB_SCHEMA).map((s) => s.key).filter((k) => k !== 'name').sort());
    expect(Object.keys(schema)).toEqual(['jsonSchema', 'uiSchema']);
    expect(schema.uiSchema['ui:options'].tabs.flatMap((t: { fields: string[] }) => t.fields).sort()).toEqual(Object.keys(props).sort());
  });

  it('has defaults and examples the plugin accepts, and bounds where the plugin draws them', () => {
    for (const [key, p] of Object.entries(props)) {
      expect(job(key, p.default).problems, `${key} default`).toEqual([]);
      expect(job(key, p.examples[0]).problems, `${key} example`).toEqual([]);
      if (p.maximum !== undefined) {
        expect(job(key, p.maximum).problems, `${key} maximum`).toEqual([]);
        const over = p.type === 'integer' ? p.maximum + 1 : p.maximum * 1.5;
        expect(job(key, over).problems.join('\n'), `${key} over the maximum`).toMatch(new RegExp(`jobs\\[0\\]\\): ${key}: expected`));
      }
      if (p.minimum !== undefined) {
        expect(job(key, p.minimum).problems, `${key} minimum`).toEqual([]);
        expect(job(key, p.minimum / 2).problems.join('\n'), `${key} under the minimum`).toMatch(new RegExp(`${key}: expected`));
      }
      if (p.type === 'integer') expect(job(key, (p.minimum ?? 1) + 0.5).problems.join('\n'), `${key} a fraction`).toMatch(new RegExp(`${key}: expected`));
      if (p.minItems === 1) expect(job(key, []).problems.join('\n'), `${key} empty`).toMatch(new RegExp(`${key}: the list is empty`));
      if (p.maxItems !== undefined) {
        expect(job(key, Array(p.maxItems).fill('*.service')).problems, `${key} maxItems`).toEqual([]);
        expect(job(key, Array(p.maxItems + 1).fill('*.service')).problems.join('\n'), `${key} over maxItems`).toMatch(/more than the \d+ allowed/);
      }
    }
    expect(props.update_every!.maximum).toBe(MAX_UPDATE_EVERY);
  });
});
