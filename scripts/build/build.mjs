// Builds the plugin into ONE file, dist/systemdunits.mjs, with its runtime dependencies inside.
// Why a bundle: the agent starts the plugin on every restart, and a single minified file with no
// node_modules lookups starts faster and holds less memory than the compiled tree plus packages
// (figures in README, "Performance"); it also makes the install a copy of one file.
import { build } from 'esbuild';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
// --cjs: a CommonJS bundle, for the standalone executable (scripts/build/release.sh): Node's
// single-executable applications run one CommonJS script.
const args = process.argv.slice(2);
const cjs = args.includes('--cjs');
const outfile = args.find((a) => !a.startsWith('--')) ?? path.join(root, 'dist/systemdunits.mjs');

const result = await build({
  entryPoints: [path.join(root, 'plugin/main.ts')],
  outfile,
  bundle: true,
  platform: 'node',
  // The oldest Node the bundle is tested on (README, "Requirements").
  target: 'node18',
  format: cjs ? 'cjs' : 'esm',
  minify: true,
  legalComments: 'eof',
  // dbus-next is CommonJS and requires Node's built-ins at run time: give the ES module a require.
  // (A CommonJS bundle has its own require.)
  banner: cjs ? {} : { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  alias: { xml2js: path.join(root, 'scripts/build/xml2js-unused.cjs') },
  // Optional transports of dbus-next the plugin never uses (X11 bus discovery, native usocket).
  external: ['x11', 'usocket'],
  logLevel: 'warning',
  metafile: true,
});

// The bundle carries third-party code, so it ships their licences beside it: one file listing each
// package that ended up inside, with its LICENSE text.
const packages = new Map();
for (const input of Object.keys(result.metafile.inputs)) {
  const m = /(?:^|\/)node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input);
  if (!m) continue;
  const dir = path.join(root, input.slice(0, m.index + m[0].length));
  packages.set(m[1], dir);
}
const sections = [...packages].sort(([a], [b]) => a.localeCompare(b)).map(([name, dir]) => {
  const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8'));
  const licenceFile = readdirSync(dir).find((f) => /^(licen[cs]e|copying)/i.test(f));
  const text = licenceFile ? readFileSync(path.join(dir, licenceFile), 'utf8').trim() : `(no licence file; package.json says ${pkg.license})`;
  const licence = typeof pkg.license === 'object' ? pkg.license?.type : pkg.license;
  return `${name}@${pkg.version} (${licence ?? 'see below'})\n\n${text}\n`;
});
writeFileSync(
  path.join(path.dirname(outfile), 'THIRD-PARTY-LICENSES.txt'),
  `Third-party packages bundled into ${path.basename(outfile)}:\n\n${sections.join('\n' + '-'.repeat(78) + '\n\n')}`,
);
