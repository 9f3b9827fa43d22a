// The README's table of job keys, made from JOB_SCHEMA. It goes between the markers below in the
// README's Configuration section (`npm run generate` puts it there).

import { defaultJob, JOB_SCHEMA, type JobConfig, type KeySpec } from '../../plugin/config/schema.js';

export const TABLE_START = '<!-- config-keys:start: generated from plugin/config/schema.ts by `npm run generate`; edit there -->';
export const TABLE_END = '<!-- config-keys:end -->';

/** Markdown: one row per job key, its default as the README says it, and what it does. */
export function configKeyTable(): string {
  const defaults = defaultJob(1);
  const rows = (Object.entries(JOB_SCHEMA) as [keyof JobConfig, KeySpec<unknown>][]).map(([field, spec]) => {
    const cell = spec.defaultText ?? `\`${String(defaults[field])}\``;
    return `| \`${spec.key}\` | ${cell} | ${spec.description} |`;
  });
  return ['| key | default | meaning |', '|---|---|---|', ...rows].join('\n');
}

/** `readme` with the text between the markers replaced by the table; throws when a marker is missing. */
export function withKeyTable(readme: string): string {
  const start = readme.indexOf(TABLE_START);
  const end = readme.indexOf(TABLE_END);
  if (start < 0 || end < start) throw new Error(`README.md: the markers ${TABLE_START} … ${TABLE_END} are missing`);
  return `${readme.slice(0, start + TABLE_START.length)}\n\n${configKeyTable()}\n\n${readme.slice(end)}`;
}
