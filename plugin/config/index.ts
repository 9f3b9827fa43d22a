// The config's public API, under the names the rest of the plugin has always used.

export {
  CONFIG_FILE_NAME,
  DEFAULT_FLAPPING_THRESHOLD,
  DEFAULT_INCLUDE,
  defaultJob,
  JOB_SCHEMA,
  MAX_JOBS,
  MAX_PATTERNS,
  MAX_UPDATE_EVERY,
  type JobConfig,
  type KeySpec,
} from './schema.js';
export { AGENT_CONFIG_DIRS, BUILT_IN, DISABLING, findConfigFile, loadConfig, MAX_CONFIG_BYTES, parseConfig, type LoadedConfig, type PluginConfig } from './load.js';
export { globProblem } from './validate.js';
export { checkConfig, describeJobs, type CheckResult } from './check.js';
