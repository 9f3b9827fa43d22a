// `--check-config`: the config the agent would use, checked as the plugin checks it, and what it
// would chart. For a person at a terminal (not the agent): the report goes to stdout, problems to
// stderr, and the exit status says whether there was any.

import { AGENT_CONFIG_DIRS, findConfigFile, loadConfig, type LoadedConfig } from './load.js';
import { DEFAULT_CONTEXT_PREFIX, type JobConfig } from './schema.js';

export interface CheckResult {
  /** For stdout. */
  readonly report: string[];
  /** For stderr, one line each (the lines the plugin would log). */
  readonly problems: readonly string[];
  /** 0: no problem; 1: problems (some jobs may still run). */
  readonly status: 0 | 1;
}

export function checkConfig(explicit: string | undefined, env: NodeJS.ProcessEnv, updateEvery: number, agentDirs = AGENT_CONFIG_DIRS): CheckResult {
  const file = findConfigFile(explicit, env, agentDirs);
  const loaded = loadConfig(file, updateEvery);
  const report: string[] = [];
  if (file === undefined) {
    const looked = [env.NETDATA_USER_CONFIG_DIR, env.NETDATA_STOCK_CONFIG_DIR, ...(env.NETDATA_USER_CONFIG_DIR ? [] : agentDirs)].filter(Boolean);
    report.push(`no systemdunits.conf in ${looked.join(', ')}: the built-in job would run`);
  } else report.push(`config: ${file}`);
  report.push(...describeJobs(loaded));
  const { jobs } = loaded.config;
  const n = loaded.problems.length;
  const outcome = jobs.length === 0 ? 'no job would run: the plugin would disable itself' : `${jobs.length} job${jobs.length > 1 ? 's' : ''} would run`;
  report.push(n === 0 ? `OK: ${outcome}` : `${n} problem${n > 1 ? 's' : ''} (on stderr); ${outcome}`);
  return { report, problems: loaded.problems, status: n === 0 ? 0 : 1 };
}

/** What each job would chart, in the config's own words. */
export function describeJobs({ config }: LoadedConfig): string[] {
  return config.jobs.flatMap((j: JobConfig) => [
    `job '${j.name}': every ${j.updateEvery} s, charts systemdunits_${j.name}.<type>_unit_state (and _units_by_state, _unit_state_transitions, _units_by_load_state) for each unit type with units`,
    `  include: ${globs(j.include)}`,
    `  exclude: ${j.exclude.length > 0 ? globs(j.exclude) : '(none)'}`,
    `  skip_transient: ${j.skipTransient}, timeout: ${j.timeout} s, aggregate_instances: ${j.aggregateInstances}, flapping_threshold: ${j.flappingThreshold}`,
    `  socket_activity: ${j.socketActivity ? `every ${j.socketActivityEvery} s, at most ${j.socketActivityMaxSockets} sockets a round` : 'off'}`,
    `  restart loops: systemdunits_${j.name}.service_unit_restarts, warns above ${j.restartLoopThreshold} restarts of one service in ${j.restartLoopWindow} s`,
    // Said only when it is not the default, where it moves every context (and the alarms must follow).
    ...(j.contextPrefix === DEFAULT_CONTEXT_PREFIX ? [] : [`  context_prefix: ${j.contextPrefix} (contexts ${j.contextPrefix}.<type>_unit_state…, apart from go.d's systemd.*)`]),
  ]);
}

function globs(list: readonly string[]): string {
  return list.map((g) => `'${g}'`).join(', ');
}
