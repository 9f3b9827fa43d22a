// plugin/config/config_schema.json in go.d's format ({"jsonSchema", "uiSchema"}: what the agent's
// config UI renders for a go.d module's job), made from JOB_SCHEMA. The file sits beside the schema,
// as go.d's sits beside each module's code (which embeds it): where a dynamic-config handler would
// serve it from. Written by scripts/build/generate.mts.

import { defaultJob, JOB_SCHEMA, type JobConfig, type KeyKind, type KeySpec } from '../../plugin/config/schema.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** The markdown of a description, without the README's own anchors (the UI has no such page). */
function plain(markdown: string): string {
  return markdown.replace(/\[([^\]]+)\]\(#[^)]*\)/g, '$1');
}

function typeOf(type: KeyKind): { [key: string]: Json } {
  switch (type.kind) {
    case 'name':
      return { type: 'string', pattern: '^[A-Za-z0-9_-]+$', minLength: 1, maxLength: type.maxLength };
    case 'interval':
      return { type: 'integer', minimum: type.min, maximum: type.max };
    case 'duration':
      return { type: type.whole ? 'integer' : 'number', minimum: type.min, maximum: type.max };
    case 'globs':
      return { type: 'array', ...(type.mayBeEmpty ? {} : { minItems: 1 }), maxItems: type.maxItems, items: { title: 'Unit name pattern', type: 'string', minLength: 1 } };
    case 'boolean':
      return { type: 'boolean' };
    case 'count':
      return { type: 'integer', minimum: type.min, maximum: type.max };
    case 'word':
      return { type: 'string', pattern: '^[a-z][a-z0-9_]*$', minLength: 1, maxLength: type.maxLength };
  }
}

export function configJsonSchema(): Json {
  // Defaults as the UI shows them: those of a job under an agent running the plugin every second.
  const defaults = defaultJob(1);
  const specs = Object.entries(JOB_SCHEMA) as [keyof JobConfig, KeySpec<unknown>][];
  const properties: { [key: string]: Json } = {};
  const ui: { [key: string]: Json } = {};
  for (const [field, spec] of specs) {
    // go.d's UI names the job itself: `name` is allowed, not offered as a field.
    if (spec.default === 'required') continue;
    properties[spec.key] = {
      title: spec.title,
      description: plain(spec.description),
      ...typeOf(spec.type),
      default: defaults[field] as Json,
      examples: [spec.example as Json],
    };
    if (spec.type.kind === 'globs') ui[spec.key] = { 'ui:listFlavour': 'list' };
    if (spec.type.kind === 'duration' && !spec.type.whole) ui[spec.key] = { 'ui:help': 'Accepts decimals (0.5 for half a second).' };
  }
  const groups = [...new Set(specs.map(([, s]) => s.group))];
  return {
    jsonSchema: {
      $schema: 'http://json-schema.org/draft-07/schema#',
      title: 'systemdunits.plugin job configuration.',
      type: 'object',
      properties,
      required: specs.filter(([, s]) => s.default === 'required' && s.key !== 'name').map(([, s]) => s.key),
      additionalProperties: false,
      patternProperties: { '^name$': {} },
    },
    uiSchema: {
      uiOptions: { fullPage: true },
      'ui:flavour': 'tabs',
      'ui:options': {
        tabs: groups.map((g) => ({ title: g, fields: specs.filter(([, s]) => s.group === g && s.key in properties).map(([, s]) => s.key) })),
      },
      ...ui,
    },
  };
}

/** The file as written: two-space JSON and a final newline. */
export function renderConfigSchema(): string {
  return `${JSON.stringify(configJsonSchema(), null, 2)}\n`;
}
