// The YAML library, needed only while the config is read at start-up. The bundle evaluates it
// anew from its source text on each call (scripts/build/build.mjs, RELEASED), so that it is
// garbage once the config is read rather than kept for as long as the plugin runs (~1 MB).
// Tests and tsx run this file as it is.

import * as yaml from 'yaml';

export type Yaml = typeof yaml;

export function loadYaml(): Yaml {
  return yaml;
}
