// Writes the files made from the project's single sources (npm run generate):
//   health.d/systemdunits.conf            from health.d/alarms.ts
//   plugin/config/config_schema.json      from plugin/config/schema.ts
//   README.md's key table                 from plugin/config/schema.ts
//   metadata.yaml                         from the three, and charts/
// `--check` writes nothing and exits 1 naming each file that differs from what would be written
// (test/unit/generated.test.ts runs it); `--root DIR` reads and writes under DIR instead.

import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderHealth } from '../../health.d/alarms.js';
import { renderConfigSchema } from './config-schema.js';
import { withKeyTable } from './readme-table.js';
import { renderMetadata } from './metadata.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const args = process.argv.slice(2);
const check = args.includes('--check');
const rootAt = args.indexOf('--root');
const root = rootAt >= 0 ? args[rootAt + 1] : repo;
if (!root) {
  console.error('generate: --root needs a directory');
  process.exit(2);
}

const read = (rel: string) => (existsSync(join(root, rel)) ? readFileSync(join(root, rel), 'utf8') : '');
const alertDocs = new Set(readdirSync(join(repo, 'docs/alerts')).filter((f) => f.endsWith('.md')).map((f) => f.slice(0, -3)));

const outputs: [string, () => string][] = [
  ['health.d/systemdunits.conf', () => renderHealth()],
  ['plugin/config/config_schema.json', renderConfigSchema],
  ['README.md', () => withKeyTable(read('README.md'))],
  ['metadata.yaml', () => renderMetadata(alertDocs)],
];

let stale = 0;
for (const [rel, render] of outputs) {
  let text: string;
  try {
    text = render();
  } catch (err) {
    console.error(`generate: ${rel}: ${(err as Error).message}`);
    stale++;
    continue;
  }
  if (read(rel) === text) continue;
  if (check) {
    console.error(`generate: ${rel} is stale: run npm run generate`);
    stale++;
  } else {
    writeFileSync(join(root, rel), text);
    console.log(`generate: wrote ${rel}`);
  }
}
process.exit(stale > 0 ? 1 : 0);
