// The floor the plugin's steady CPU is held against (issue 14): a Node process that does the least a
// plugin at update_every 1 must do, run by scripts/perf/bench.mts with the launcher's node flags.
//   node floor.mjs FILE    writes FILE's bytes (one second of the plugin's stdout, captured in the same
//                          sitting: the same charts and SET lines) to stdout once a second, in one write
//   node floor.mjs --idle  wakes once a second and does nothing
// Plain JavaScript, no imports of the project: nothing loaded that the figure would then include.
import { readFileSync } from 'node:fs';

const arg = process.argv[2];
if (arg === undefined) {
  process.stderr.write('usage: node floor.mjs FILE | --idle\n');
  process.exit(2);
}
const batch = arg === '--idle' ? undefined : readFileSync(arg);
if (batch !== undefined && batch.length === 0) {
  process.stderr.write(`floor.mjs: ${arg} is empty\n`);
  process.exit(2);
}
setInterval(() => {
  if (batch !== undefined) process.stdout.write(batch);
}, 1000);
process.on('SIGTERM', () => process.exit(0));
