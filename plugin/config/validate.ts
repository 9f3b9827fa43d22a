// Checks a job's keys against JOB_SCHEMA: each value by the kind and bounds its entry gives. A
// refusal is the reason only; the caller puts the file, the job and the key before it.

import { bracketAt, reversedRange } from '../units/glob.js';
import { IGNORED_JOB_KEYS, JOB_KEYS, JOB_SCHEMA, UNIT_TYPES, type Context, type JobConfig, type KeyKind, type KeySpec } from './schema.js';
import { describe, isRecord, oneLine, suggest } from './words.js';

/** A value a check refuses, with the reason (said after `key: `). */
export class Refused {
  constructor(readonly reason: string) {}
}

/** The value of a key as the job will use it, or why it is refused. */
export function checkValue(type: KeyKind, value: unknown, ctx: Context): unknown {
  switch (type.kind) {
    case 'name':
      return jobName(value, type.maxLength);
    case 'interval':
      return interval(value, type.min, type.max, ctx);
    case 'duration': {
      const s = seconds(value, type);
      // A whole-second period is never shorter than the agent runs the plugin.
      return s instanceof Refused || !type.whole ? s : Math.max(s, ctx.pluginEvery);
    }
    case 'globs':
      return globList(value, type.mayBeEmpty, type.maxItems);
    case 'boolean':
      return bool(value);
    case 'count':
      return wholeCount(value, type.min, type.max);
    case 'word':
      return word(value, type.maxLength);
  }
}

export function parseJob(raw: unknown, ctx: Context): { job: JobConfig | undefined; errors: string[]; notes: string[] } {
  const errors: string[] = [];
  const notes: string[] = [];
  if (!isRecord(raw)) return { job: undefined, errors: [`expected a mapping of keys (name, include…), got ${describe(raw)}`], notes };
  for (const key of Object.keys(raw)) {
    if (JOB_KEYS.includes(key)) continue;
    if (IGNORED_JOB_KEYS.has(key)) {
      const note = IGNORED_JOB_KEYS.get(key);
      if (note) notes.push(`${key}: ${note}`);
      continue;
    }
    errors.push(`${oneLine(key)}: unknown key${suggest(key, JOB_KEYS, ` (known: ${JOB_KEYS.join(', ')})`)}`);
  }
  const job: Record<string, unknown> = {};
  for (const [field, spec] of Object.entries(JOB_SCHEMA) as [keyof JobConfig, KeySpec<unknown>][]) {
    const value = raw[spec.key];
    if (value === undefined) {
      if (spec.default === 'required') errors.push(`${spec.key}: required`);
      else job[field] = spec.default(ctx, job as Partial<JobConfig>);
      continue;
    }
    const v = checkValue(spec.type, value, ctx);
    if (v instanceof Refused) errors.push(`${spec.key}: ${v.reason}`);
    else job[field] = v;
  }
  return { job: errors.length === 0 ? (job as unknown as JobConfig) : undefined, errors, notes };
}

function jobName(value: unknown, maxLength: number): string | Refused {
  // The name becomes part of the chart type (systemdunits_NAME): keep it to a safe alphabet.
  if (typeof value !== 'string' || value.length > maxLength || !/^[A-Za-z0-9_-]+$/.test(value)) {
    return new Refused(`expected letters, digits, _ and - only (at most ${maxLength}), got ${describe(value)}`);
  }
  return value;
}

function word(value: unknown, maxLength: number): string | Refused {
  // It becomes part of chart contexts and of the alarms' `on:` lines: no dot, space or capital.
  if (typeof value !== 'string' || value.length > maxLength || !/^[a-z][a-z0-9_]*$/.test(value)) {
    return new Refused(`expected a lowercase letter, then lowercase letters, digits and _ only (at most ${maxLength}), got ${describe(value)}`);
  }
  return value;
}

function interval(value: unknown, min: number, max: number, ctx: Context): number | Refused {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    return new Refused(`expected a whole number of seconds from ${min} to ${max}, got ${describe(value)}`);
  }
  // A job cannot sample faster than the agent runs the plugin.
  return Math.max(value, ctx.pluginEvery);
}

/** go.d reads YAML 1.1, where yes/no/on/off are booleans too: accept them so its files load as they are. */
const YAML11_BOOLS: ReadonlyMap<string, boolean> = new Map([
  ['yes', true], ['on', true], ['true', true], ['no', false], ['off', false], ['false', false],
]);

function wholeCount(value: unknown, min: number, max: number): number | Refused {
  if (typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max) return value;
  return new Refused(`expected a whole number from ${min} to ${max}, got ${describe(value)}`);
}

function bool(value: unknown): boolean | Refused {
  if (typeof value === 'boolean') return value;
  const b = typeof value === 'string' ? YAML11_BOOLS.get(value.toLowerCase()) : undefined;
  return b ?? new Refused(`expected true or false, got ${describe(value)}`);
}

/** go.d writes durations as numbers of seconds or strings like `2s`, `500ms`, `1m`. */
function seconds(value: unknown, limits: { min: number; max: number; whole: boolean }): number | Refused {
  const n = typeof value === 'number' ? value : typeof value === 'string' ? parseDurationSeconds(value) : undefined;
  if (n === undefined || !Number.isFinite(n) || n < limits.min || n > limits.max || (limits.whole && !Number.isInteger(n))) {
    const range = limits.whole ? `a whole number of seconds from ${limits.min} to ${limits.max}` : `seconds above 0 and at most ${limits.max}`;
    return new Refused(`expected ${range} (2, '2s', '500ms'), got ${describe(value)}`);
  }
  return n;
}

function parseDurationSeconds(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$/.exec(text);
  if (!m) return undefined;
  const n = Number(m[1]);
  return m[2] === 'ms' ? n / 1000 : m[2] === 'm' ? n * 60 : n;
}

function globList(value: unknown, mayBeEmpty: boolean, maxItems: number): readonly string[] | Refused {
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list)) return new Refused(`expected a list of unit-name globs such as ['*.socket'], got ${describe(value)}`);
  if (list.length === 0 && !mayBeEmpty) return new Refused('the list is empty: name at least one pattern, or leave the key out for the default');
  if (list.length > maxItems) return new Refused(`${list.length} patterns, more than the ${maxItems} allowed`);
  const bad: string[] = [];
  for (const item of list) {
    if (typeof item !== 'string') bad.push(`expected unit-name globs such as '*.socket', got ${describe(item)}`);
    else {
      const problem = globProblem(item.trim());
      if (problem) bad.push(`${describe(item)}: ${problem}`);
    }
  }
  if (bad.length > 0) return new Refused(bad[0]! + (bad.length > 1 ? ` (and ${bad.length - 1} more bad pattern${bad.length > 2 ? 's' : ''})` : ''));
  return (list as string[]).map((g) => g.trim());
}

/**
 * Why a glob can match no unit, or undefined. Unit names are letters, digits and `:-_.@\`
 * (systemd's unit_name_is_valid), at most 255 long, and end in `.TYPE`.
 */
export function globProblem(glob: string): string | undefined {
  if (glob === '') return 'an empty pattern matches no unit';
  if (glob.length > 1024) return 'longer than any pattern that could match a unit name';
  let outside = '';
  for (let i = 0; i < glob.length; i++) {
    if (glob[i] !== '[') {
      outside += glob[i];
      continue;
    }
    const bracket = bracketAt(glob, i);
    if (!bracket) return `the '[' at position ${i + 1} is never closed`;
    const reversed = reversedRange(bracket.body);
    if (reversed) return `the range '${oneLine(reversed)}' is the wrong way round and matches nothing`;
    outside += '?'; // a bracket expression matches one character
    i = bracket.end;
  }
  const bad = /[^A-Za-z0-9:_.@\\*?-]/.exec(outside);
  if (bad) return `${describe(bad[0])} appears in no unit name (they have letters, digits and : - _ . @ \\ only)`;
  const dot = outside.lastIndexOf('.');
  const suffix = dot < 0 ? undefined : outside.slice(dot + 1);
  if (suffix === undefined && !/[*?]/.test(outside)) return 'no unit type: unit names end in .service, .socket…';
  if (suffix !== undefined && !/[*?]/.test(suffix) && !UNIT_TYPES.includes(suffix)) {
    return `'.${suffix}' is not a unit type${suggest(suffix, UNIT_TYPES, ` (${UNIT_TYPES.join(', ')})`)}`;
  }
  return undefined;
}
