// systemdunits.conf: load, validate, and fall back to the built-in default job.
//
// The file uses go.d's layout and job keys, so a go.d `systemdunits` job can be reused as it is:
//   update_every: 1            # optional module-level default for every job
//   jobs:
//     - name: service_units
//       include: ['*.service', '*.socket']
//       exclude: ['user@*.service']
//       skip_transient: false
//       timeout: 2
//       aggregate_instances: true  # this plugin's own keys: Accept=yes instances, flapping alarm
//       flapping_threshold: 20
// Every problem is reported in one line naming the file, the job and the key. A bad job is skipped;
// a file that cannot be read or parsed, or has no usable job, falls back to the built-in default,
// so a typo never leaves the operator without monitoring.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';

export interface JobConfig {
  readonly name: string;
  readonly updateEvery: number;
  readonly include: readonly string[];
  readonly exclude: readonly string[];
  readonly skipTransient: boolean;
  /** Seconds each D-Bus call may take. */
  readonly timeout: number;
  /** Whether to chart connection counters of the job's Accept=yes socket units. */
  readonly socketActivity: boolean;
  /** Seconds between reads of those counters. */
  readonly socketActivityEvery: number;
  /** One dimension per template for Accept=yes per-connection instances (see plugin/units/instances.ts). */
  readonly aggregateInstances: boolean;
  /** State transitions of one unit type in 5 minutes above which the flapping alarm warns. */
  readonly flappingThreshold: number;
}

export interface PluginConfig {
  readonly jobs: readonly JobConfig[];
  /** Where the jobs came from: a file path or `built-in defaults`. */
  readonly source: string;
}

export interface LoadedConfig {
  readonly config: PluginConfig;
  /** One line each, ready for stderr. */
  readonly problems: readonly string[];
}

export const CONFIG_FILE_NAME = 'systemdunits.conf';
export const BUILT_IN = 'built-in defaults';

export const DEFAULT_INCLUDE: readonly string[] = [
  '*.service',
  '*.socket',
  '*.timer',
  '*.mount',
  '*.path',
  '*.target',
  '*.automount',
  '*.swap',
];

const DEFAULT_TIMEOUT = 2;
/** Socket counters are never signalled and must be read: every 10 s by default, not every second. */
const DEFAULT_SOCKET_ACTIVITY_EVERY = 10;
export const DEFAULT_FLAPPING_THRESHOLD = 20;
const MAX_UPDATE_EVERY = 3600;

/** go.d keys we read but do not act on: accepted silently so go.d files load cleanly. */
const GO_D_MODULE_KEYS = new Set(['autodetection_retry', 'priority']);
const GO_D_JOB_KEYS = new Set(['autodetection_retry', 'priority']);
/** go.d options of other features: accepted with a note that they do nothing here. */
const UNSUPPORTED_JOB_KEYS = new Set(['collect_unit_files', 'collect_unit_files_every', 'include_unit_files']);
const JOB_KEYS = new Set(['name', 'update_every', 'include', 'exclude', 'skip_transient', 'timeout', 'socket_activity', 'socket_activity_every', 'aggregate_instances', 'flapping_threshold']);

export function defaultJob(updateEvery: number): JobConfig {
  return {
    name: 'service_units',
    updateEvery,
    include: DEFAULT_INCLUDE,
    exclude: [],
    skipTransient: false,
    timeout: DEFAULT_TIMEOUT,
    socketActivity: false,
    socketActivityEvery: DEFAULT_SOCKET_ACTIVITY_EVERY,
    aggregateInstances: true,
    flappingThreshold: DEFAULT_FLAPPING_THRESHOLD,
  };
}

/** The config file to use: `--config`, then the user config dir, then the stock config dir. */
export function findConfigFile(explicit: string | undefined, env: NodeJS.ProcessEnv): string | undefined {
  if (explicit) return explicit;
  for (const dir of [env.NETDATA_USER_CONFIG_DIR, env.NETDATA_STOCK_CONFIG_DIR]) {
    if (!dir) continue;
    const file = join(dir, CONFIG_FILE_NAME);
    if (existsSync(file)) return file;
  }
  return undefined;
}

export function loadConfig(file: string | undefined, pluginUpdateEvery: number): LoadedConfig {
  const fallback = (problems: string[]): LoadedConfig => ({
    config: { jobs: [defaultJob(pluginUpdateEvery)], source: BUILT_IN },
    problems,
  });
  if (file === undefined) return fallback([]);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message;
    return fallback([`${file}: cannot read the config (${reason}); using the built-in default job`]);
  }
  const parsed = parseConfig(text, file, pluginUpdateEvery);
  if (parsed.config.jobs.length === 0) {
    return fallback([...parsed.problems, `${file}: no usable job; using the built-in default job`]);
  }
  return parsed;
}

/** Parses and validates the text of a config file. Jobs with errors are left out. */
export function parseConfig(text: string, source: string, pluginUpdateEvery: number): LoadedConfig {
  const problems: string[] = [];
  let doc: unknown;
  try {
    doc = parseYaml(text, { uniqueKeys: true, prettyErrors: false });
  } catch (err) {
    const msg = (err as Error).message.split('\n')[0];
    return { config: { jobs: [], source }, problems: [`${source}: not valid YAML: ${msg}`] };
  }
  if (doc === null || doc === undefined) doc = {};
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    return { config: { jobs: [], source }, problems: [`${source}: expected a mapping with a 'jobs' list at the top`] };
  }
  const top = doc as Record<string, unknown>;
  for (const key of Object.keys(top)) {
    if (key !== 'jobs' && key !== 'update_every' && !GO_D_MODULE_KEYS.has(key)) {
      problems.push(`${source}: unknown key '${key}' ignored (known: update_every, jobs)`);
    }
  }
  let moduleEvery = pluginUpdateEvery;
  if (top.update_every !== undefined) {
    const v = updateEvery(top.update_every, pluginUpdateEvery);
    if (typeof v === 'string') problems.push(`${source}: update_every: ${v}; using ${pluginUpdateEvery}`);
    else moduleEvery = v;
  }
  if (top.jobs === undefined) return { config: { jobs: [], source }, problems: [...problems, `${source}: no 'jobs' list`] };
  if (!Array.isArray(top.jobs)) {
    return { config: { jobs: [], source }, problems: [...problems, `${source}: jobs: must be a list of jobs`] };
  }
  const jobs: JobConfig[] = [];
  const names = new Set<string>();
  top.jobs.forEach((raw: unknown, index: number) => {
    const where = (name?: string) => `${source}: job ${name ? `'${name}' ` : ''}(jobs[${index}])`;
    const result = parseJob(raw, moduleEvery, pluginUpdateEvery);
    if (typeof result === 'string') {
      const name = raw && typeof raw === 'object' && typeof (raw as { name?: unknown }).name === 'string' ? (raw as { name: string }).name : undefined;
      problems.push(`${where(name)}: ${result}; job skipped`);
      return;
    }
    for (const note of result.notes) problems.push(`${where(result.job.name)}: ${note}`);
    if (names.has(result.job.name)) {
      problems.push(`${where(result.job.name)}: name: duplicate job name; job skipped`);
      return;
    }
    names.add(result.job.name);
    jobs.push(result.job);
  });
  return { config: { jobs, source }, problems };
}

function parseJob(raw: unknown, moduleEvery: number, pluginEvery: number): string | { job: JobConfig; notes: string[] } {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return 'must be a mapping of keys (name, include…)';
  const r = raw as Record<string, unknown>;
  const notes: string[] = [];
  for (const key of Object.keys(r)) {
    if (UNSUPPORTED_JOB_KEYS.has(key)) notes.push(`${key}: not supported by this plugin; ignored`);
    else if (!JOB_KEYS.has(key) && !GO_D_JOB_KEYS.has(key)) notes.push(`unknown key '${key}' ignored`);
  }
  if (typeof r.name !== 'string' || r.name.trim() === '') return 'name: required, a non-empty string';
  // The name becomes part of the chart type (systemdunits_NAME): keep it to a safe alphabet.
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(r.name)) return 'name: use letters, digits, _ and - only (at most 64)';
  let every = moduleEvery;
  if (r.update_every !== undefined) {
    const v = updateEvery(r.update_every, pluginEvery);
    if (typeof v === 'string') return `update_every: ${v}`;
    every = v;
  }
  const include = r.include === undefined ? DEFAULT_INCLUDE : globs(r.include);
  if (typeof include === 'string') return `include: ${include}`;
  if (include.length === 0) return 'include: must name at least one pattern';
  const exclude = r.exclude === undefined ? [] : globs(r.exclude);
  if (typeof exclude === 'string') return `exclude: ${exclude}`;
  // go.d's default. true costs one D-Bus call per unit at start (ListUnits does not carry it).
  let skipTransient = false;
  if (r.skip_transient !== undefined) {
    if (typeof r.skip_transient !== 'boolean') return 'skip_transient: must be true or false';
    skipTransient = r.skip_transient;
  }
  let timeout = DEFAULT_TIMEOUT;
  if (r.timeout !== undefined) {
    const t = typeof r.timeout === 'string' ? parseDurationSeconds(r.timeout) : r.timeout;
    if (typeof t !== 'number' || !Number.isFinite(t) || t <= 0 || t > 60) return 'timeout: must be a number of seconds, above 0 and at most 60';
    timeout = t;
  }
  let socketActivity = false;
  if (r.socket_activity !== undefined) {
    if (typeof r.socket_activity !== 'boolean') return 'socket_activity: must be true or false';
    socketActivity = r.socket_activity;
  }
  let socketActivityEvery = Math.max(DEFAULT_SOCKET_ACTIVITY_EVERY, every);
  if (r.socket_activity_every !== undefined) {
    const v = updateEvery(r.socket_activity_every, pluginEvery);
    if (typeof v === 'string') return `socket_activity_every: ${v}`;
    socketActivityEvery = v;
  }
  let aggregateInstances = true;
  if (r.aggregate_instances !== undefined) {
    if (typeof r.aggregate_instances !== 'boolean') return 'aggregate_instances: must be true or false';
    aggregateInstances = r.aggregate_instances;
  }
  let flappingThreshold = DEFAULT_FLAPPING_THRESHOLD;
  if (r.flapping_threshold !== undefined) {
    const t = r.flapping_threshold;
    if (typeof t !== 'number' || !Number.isInteger(t) || t < 1 || t > 1_000_000) return 'flapping_threshold: must be a whole number of transitions from 1 to 1000000';
    flappingThreshold = t;
  }
  return {
    job: { name: r.name, updateEvery: every, include, exclude, skipTransient, timeout, socketActivity, socketActivityEvery, aggregateInstances, flappingThreshold },
    notes,
  };
}

function updateEvery(value: unknown, pluginEvery: number): number | string {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_UPDATE_EVERY) {
    return `must be a whole number of seconds from 1 to ${MAX_UPDATE_EVERY}`;
  }
  // A job cannot sample faster than the agent runs the plugin.
  return Math.max(value, pluginEvery);
}

function globs(value: unknown): readonly string[] | string {
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list) || !list.every((g) => typeof g === 'string' && g.trim() !== '')) {
    return 'must be a list of unit-name globs such as "*.socket"';
  }
  return list.map((g: string) => g.trim());
}

/** go.d writes durations as numbers of seconds or strings like `2s`, `500ms`. */
function parseDurationSeconds(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$/.exec(text);
  if (!m) return undefined;
  const n = Number(m[1]);
  return m[2] === 'ms' ? n / 1000 : m[2] === 'm' ? n * 60 : n;
}
