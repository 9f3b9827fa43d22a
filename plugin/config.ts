// Moved to plugin/config/ (issue 11): this path stays only so that importers on other branches
// keep building until the merge rewrites them to './config/index.js'; then delete this file.
export * from './config/index.js';
