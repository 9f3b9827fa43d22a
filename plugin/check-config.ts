// Moved to plugin/config/check.ts (issue 11): kept for main.ts's import until the merge rewrites it.
export { checkConfig, describeJobs, type CheckResult } from './config/index.js';
