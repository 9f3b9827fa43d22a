// The one table of config keys: for each key its name in the file, its kind and bounds (which the
// checks in validate.ts read), its default, and its words. Validation, config_schema.json and the
// README's key table (scripts/build/config-schema.ts, readme-table.ts) are all made from it, so a
// key added here is checked, offered in the agent's config UI and documented at once.
//
// To add a job key: add a field to JobConfig and its entry to JOB_SCHEMA (the compiler insists),
// then `npm run generate` (test/unit/generated.test.ts fails until you do).

import { UNIT_TYPE_NAMES } from '../units/types.js';

export interface JobConfig {
  readonly name: string;
  readonly updateEvery: number;
  readonly include: readonly string[];
  readonly exclude: readonly string[];
  readonly skipTransient: boolean;
  /** Seconds each D-Bus call may take. */
  readonly timeout: number;
  /** Chart sockets' connection counters (read, not signalled: polled every socketActivityEvery s). */
  readonly socketActivity: boolean;
  readonly socketActivityEvery: number;
  /** Sockets whose counters one round reads at most; more stretch their charts' interval (socket-poller.ts). */
  readonly socketActivityMaxSockets: number;
  /** One dimension per template for Accept=yes per-connection instances (see plugin/units/instances.ts). */
  readonly aggregateInstances: boolean;
  /** State transitions of one unit type in 5 minutes above which the flapping alarm warns. */
  readonly flappingThreshold: number;
  /** The first part of every chart context (`<prefix>.<type>_unit_state`): `systemd`, or another beside go.d's. */
  readonly contextPrefix: string;
  /** Restarts of one service within restartLoopWindow seconds above which the restart loop alarm warns. */
  readonly restartLoopThreshold: number;
  readonly restartLoopWindow: number;
}

export const CONFIG_FILE_NAME = 'systemdunits.conf';

/**
 * The longest interval: the agent's own bound (UPDATE_EVERY_MAX in Netdata's database/rrd.h, 3600
 * from v1.0 to v2), so a value the plugin accepts is one the agent can chart. The command line
 * (args.ts) and the config use this one value.
 */
export const MAX_UPDATE_EVERY = 3600;
/** More jobs than anyone runs: each has its own charts and alarms. */
export const MAX_JOBS = 64;
/** Patterns in one include or exclude list; every unit name is tested against each. */
export const MAX_PATTERNS = 256;
export const DEFAULT_FLAPPING_THRESHOLD = 20;
/**
 * More than 3 restarts of one service in a minute: a crash loop, not a service restarted now and
 * then. Faster loops of a service with systemd's default start limit (5 starts in 10 s) end in
 * failed anyway; this catches the loops that never do (StartLimitIntervalSec=0, a long RestartSec),
 * and a 200 ms loop within 3 s (its 4th restart ~0.9 s after the start, then one sample and the
 * agent's health loop).
 */
export const DEFAULT_RESTART_LOOP_THRESHOLD = 3;
export const DEFAULT_RESTART_LOOP_WINDOW = 60;
/** Socket counters are never signalled and must be read: every 10 s by default, not every second. */
export const DEFAULT_SOCKET_ACTIVITY_EVERY = 10;
/** The context namespace of go.d's systemdunits collector and of this plugin by default. */
export const DEFAULT_CONTEXT_PREFIX = 'systemd';
/**
 * Sockets read per round by default: about 0.1 % of a core at the default 10 s (each costs 3 calls,
 * ~0.25 ms of the plugin's CPU), so the default job stays within issue 4's budget on any host.
 */
export const DEFAULT_SOCKET_ACTIVITY_MAX_SOCKETS = 40;

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

/** systemd's unit types (the one list, units/types.ts): a pattern whose type suffix is none of these can match nothing. */
export const UNIT_TYPES: readonly string[] = UNIT_TYPE_NAMES;

export interface Context {
  /** The interval the agent runs the plugin at (argv[1]). */
  readonly pluginEvery: number;
  /** The file's top-level update_every, else pluginEvery. */
  readonly moduleEvery: number;
  /** The file's top-level context_prefix, else the default. */
  readonly modulePrefix?: string;
}

/** What a value must be; validate.ts checks it, scripts/build/config-schema.ts describes it. */
export type KeyKind =
  /** A job name: it becomes part of the chart type, so a safe alphabet. */
  | { readonly kind: 'name'; readonly maxLength: number }
  /** Whole seconds as a number, never below the plugin's own interval. */
  | { readonly kind: 'interval'; readonly min: number; readonly max: number }
  /** Seconds as go.d writes them: 2, '2s', '500ms', '1m'; `whole` ones are raised to the plugin's interval. */
  | { readonly kind: 'duration'; readonly min: number; readonly max: number; readonly whole: boolean }
  /** Unit-name globs, one string or a list. */
  | { readonly kind: 'globs'; readonly mayBeEmpty: boolean; readonly maxItems: number }
  | { readonly kind: 'boolean' }
  | { readonly kind: 'count'; readonly min: number; readonly max: number }
  /** A lowercase word (a letter, then letters, digits, `_`): one part of a dotted context. */
  | { readonly kind: 'word'; readonly maxLength: number };

export interface KeySpec<T> {
  /** The key as written in the file. */
  readonly key: string;
  readonly type: KeyKind;
  /** The value when the key is absent (`job`: the keys before it in the schema); `required` when it must be given. */
  readonly default: ((ctx: Context, job: Partial<JobConfig>) => T) | 'required';
  /** The README's default cell when the value alone would mislead (it depends on something else). */
  readonly defaultText?: string;
  /** A short name, for the config UI. */
  readonly title: string;
  /** What it does (markdown: the README's meaning cell, and the config UI's description). */
  readonly description: string;
  /** A value other than the default, as someone would write it. */
  readonly example: T;
  /** The config UI's tab. */
  readonly group: 'Base' | 'Socket activity' | 'Alarms';
}

export const JOB_SCHEMA: { readonly [F in keyof JobConfig]: KeySpec<JobConfig[F]> } = {
  name: {
    key: 'name',
    type: { kind: 'name', maxLength: 64 },
    default: 'required',
    defaultText: '(required)',
    title: 'Name',
    description: 'job name; letters, digits, `_`, `-`; charts get type `systemdunits_<name>`',
    example: 'web',
    group: 'Base',
  },
  updateEvery: {
    key: 'update_every',
    type: { kind: 'interval', min: 1, max: MAX_UPDATE_EVERY },
    default: (c) => c.moduleEvery,
    defaultText: "the agent's",
    title: 'Update every',
    description: 'seconds between samples; never faster than the agent runs the plugin',
    example: 5,
    group: 'Base',
  },
  include: {
    key: 'include',
    type: { kind: 'globs', mayBeEmpty: false, maxItems: MAX_PATTERNS },
    default: () => DEFAULT_INCLUDE,
    defaultText: `the ${DEFAULT_INCLUDE.length} types above`,
    title: 'Include',
    description: `unit-name globs (\`*\`, \`?\`, \`[...]\`, as \`systemctl list-units PATTERN\`; a backslash is literal, as in \`my\\x2dapp@*.socket\`); at most ${MAX_PATTERNS}`,
    example: ['nginx*.socket', 'nginx*.service'],
    group: 'Base',
  },
  exclude: {
    key: 'exclude',
    type: { kind: 'globs', mayBeEmpty: true, maxItems: MAX_PATTERNS },
    default: () => [],
    defaultText: 'none',
    title: 'Exclude',
    description: 'unit-name globs to leave out',
    example: ['user@*.service'],
    group: 'Base',
  },
  // go.d's default. true costs one D-Bus call per unit at start (ListUnits does not carry it).
  skipTransient: {
    key: 'skip_transient',
    type: { kind: 'boolean' },
    default: () => false,
    title: 'Skip transient units',
    description:
      "leave out units created at run time (`systemd-run`, `systemd-mount`); as in go.d. `true` costs one D-Bus call per unit when the plugin starts (about 1 s per 10,000 units), since systemd's unit listing does not say which units are transient",
    example: true,
    group: 'Base',
  },
  timeout: {
    key: 'timeout',
    type: { kind: 'duration', min: 0.001, max: 60, whole: false },
    default: () => 2,
    title: 'Timeout',
    description: "seconds each D-Bus call may take (`2`, `2s`, `500ms`)",
    example: 5,
    group: 'Base',
  },
  socketActivity: {
    key: 'socket_activity',
    type: { kind: 'boolean' },
    default: () => true,
    title: 'Socket activity',
    description: "chart the connection counters of the job's `Accept=yes` socket units (see [Socket activity](#socket-activity)); `false` reads none",
    example: false,
    group: 'Socket activity',
  },
  socketActivityEvery: {
    key: 'socket_activity_every',
    type: { kind: 'duration', min: 1, max: MAX_UPDATE_EVERY, whole: true },
    default: (c, job) => Math.max(DEFAULT_SOCKET_ACTIVITY_EVERY, job.updateEvery ?? c.moduleEvery),
    defaultText: `\`${DEFAULT_SOCKET_ACTIVITY_EVERY}\`, or \`update_every\` if larger`,
    title: 'Socket activity every',
    description: 'seconds between rounds of those charts, each reading the counters that may have moved (whole seconds, never faster than the agent runs the plugin)',
    example: 30,
    group: 'Socket activity',
  },
  socketActivityMaxSockets: {
    key: 'socket_activity_max_sockets',
    type: { kind: 'count', min: 1, max: 100_000 },
    default: () => DEFAULT_SOCKET_ACTIVITY_MAX_SOCKETS,
    title: 'Socket activity max sockets',
    description:
      'sockets whose counters one round reads at most (only those whose counters may have moved are read); more wait for the next rounds, their charts showing a gap meanwhile (see [Cost of socket activity](#cost-of-socket-activity))',
    example: 200,
    group: 'Socket activity',
  },
  aggregateInstances: {
    key: 'aggregate_instances',
    type: { kind: 'boolean' },
    default: () => true,
    title: 'Aggregate instances',
    description:
      'chart the per-connection service instances of an `Accept=yes` socket as one dimension per template (see [Accept=yes sockets](#acceptyes-sockets-one-dimension-per-template)); `false`: one dimension per instance',
    example: false,
    group: 'Base',
  },
  flappingThreshold: {
    key: 'flapping_threshold',
    type: { kind: 'count', min: 1, max: 1_000_000 },
    default: () => DEFAULT_FLAPPING_THRESHOLD,
    title: 'Flapping threshold',
    description: "state changes of one unit type in 5 minutes above which the job's flapping alarms warn (a whole number from 1)",
    example: 5,
    group: 'Alarms',
  },
  contextPrefix: {
    key: 'context_prefix',
    type: { kind: 'word', maxLength: 32 },
    default: (c) => c.modulePrefix ?? DEFAULT_CONTEXT_PREFIX,
    defaultText: '`systemd`, or the top-level one',
    title: 'Context prefix',
    description:
      "first part of the job's chart contexts (`<prefix>.socket_unit_state`…); `systemdunits` keeps them apart from go.d's `systemd.*` charts (see [v2 agents and go.d](#v2-agents-and-god-systemdunits-collector)); the alarms follow the top-level one",
    example: 'systemdunits',
    group: 'Base',
  },
  restartLoopThreshold: {
    key: 'restart_loop_threshold',
    type: { kind: 'count', min: 1, max: 1_000_000 },
    default: () => DEFAULT_RESTART_LOOP_THRESHOLD,
    title: 'Restart loop threshold',
    description: "restarts of one service within restart_loop_window seconds above which the job's restart loop alarm warns (a whole number from 1)",
    example: 3,
    group: 'Alarms',
  },
  restartLoopWindow: {
    key: 'restart_loop_window',
    type: { kind: 'count', min: 1, max: 86_400 },
    default: () => DEFAULT_RESTART_LOOP_WINDOW,
    title: 'Restart loop window',
    description: 'seconds over which the restarts of one service are counted for the restart loop alarm (a whole number from 1 to 86400)',
    example: 300,
    group: 'Alarms',
  },
};

/** go.d keys that load without complaint but do nothing here (a note says so when it matters). */
export const IGNORED_JOB_KEYS: ReadonlyMap<string, string | undefined> = new Map([
  ['autodetection_retry', undefined],
  ['priority', undefined],
  ['collect_unit_files', 'not supported by this plugin; ignored'],
  ['collect_unit_files_every', 'not supported by this plugin; ignored'],
  ['include_unit_files', 'not supported by this plugin; ignored'],
]);

/** Top-level keys besides `jobs`. */
export const MODULE_SCHEMA = {
  updateEvery: {
    ...JOB_SCHEMA.updateEvery,
    default: (c: Context) => c.pluginEvery,
    description: 'the default `update_every` of every job',
  } satisfies KeySpec<number>,
  contextPrefix: {
    ...JOB_SCHEMA.contextPrefix,
    default: () => DEFAULT_CONTEXT_PREFIX,
    description: 'the default `context_prefix` of every job, and the one the installed alarms use',
  } satisfies KeySpec<string>,
};
export const IGNORED_MODULE_KEYS: ReadonlySet<string> = new Set(['autodetection_retry', 'priority']);

export const JOB_KEYS: readonly string[] = Object.values(JOB_SCHEMA).map((s) => s.key);

/** The job each default takes: what runs without a config file. */
export function defaultJob(updateEvery: number): JobConfig {
  const ctx = { pluginEvery: updateEvery, moduleEvery: updateEvery };
  const job: Record<string, unknown> = { name: 'service_units' };
  for (const [field, spec] of Object.entries(JOB_SCHEMA) as [keyof JobConfig, KeySpec<unknown>][]) {
    if (spec.default !== 'required') job[field] = spec.default(ctx, job as Partial<JobConfig>);
  }
  return job as unknown as JobConfig;
}
