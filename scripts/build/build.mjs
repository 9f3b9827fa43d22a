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

// Libraries needed only at start-up (the argument parser, the YAML parser): bundled like the rest,
// they stay reachable from the bundle's top-level scope, with everything they made, for as long as
// the plugin runs (~1 MB each). Instead each is bundled apart into source text, and the file that
// hands it out (its loader) evaluates that text on each call: once the plugin is done with it, the
// library is garbage. Tests and tsx import the loaders as they are, with the library itself.
const RELEASED = {
  // As the rest of the bundle imports them (yargs' ES module, yaml's CommonJS one for Node).
  [path.join(root, 'plugin/args-parser.ts')]: { entry: "export { default } from 'yargs';", loader: 'loadYargs', value: 'module.exports.default' },
  [path.join(root, 'plugin/config/yaml.ts')]: { entry: "module.exports = require('yaml');", loader: 'loadYaml', value: 'module.exports' },
};
const releasedInputs = {};
const released = {
  name: 'released-after-use',
  setup(b) {
    b.onLoad({ filter: /\.ts$/ }, async (args) => {
      const spec = RELEASED[args.path];
      if (!spec) return undefined;
      const lib = await build({
        stdin: { contents: spec.entry, resolveDir: root, loader: 'js' },
        write: false,
        bundle: true,
        platform: 'node',
        target: 'node18',
        format: 'cjs',
        minify: true,
        legalComments: 'eof',
        logLevel: 'warning',
        metafile: true,
        // yargs' ES module finds its files from import.meta.url: the bundle's, handed in.
        define: { 'import.meta.url': '__importMetaUrl' },
      });
      Object.assign(releasedInputs, lib.metafile.inputs);
      // A CommonJS module's function, given the bundle's require (for Node's built-ins) and URL.
      const source = JSON.stringify(lib.outputFiles[0].text);
      const url = cjs ? "require('node:url').pathToFileURL(__filename).href" : 'import.meta.url';
      return {
        loader: 'js',
        contents:
          `export function ${spec.loader}() {\n` +
          `  const module = { exports: {} };\n` +
          `  new Function('module', 'exports', 'require', '__importMetaUrl', ${source})(module, module.exports, require, ${url});\n` +
          `  return ${spec.value};\n}\n`,
      };
    });
  },
};

// dbus-next's handshake loads Node's crypto for the one auth that uses it: see crypto-on-demand.cjs.
const cryptoOnDemand = {
  name: 'crypto-on-demand',
  setup(b) {
    b.onResolve({ filter: /^(node:)?crypto$/ }, (args) =>
      /[\\/]dbus-next[\\/]lib[\\/]handshake\.js$/.test(args.importer) ? { path: path.join(root, 'scripts/build/crypto-on-demand.cjs') } : undefined,
    );
  },
};

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
  // (crypto for dbus-next: see cryptoOnDemand.)
  // Optional transports of dbus-next the plugin never uses (X11 bus discovery, native usocket).
  external: ['x11', 'usocket'],
  logLevel: 'warning',
  metafile: true,
  plugins: [released, cryptoOnDemand],
});

// The bundle carries third-party code, so it ships their licences beside it: one file listing each
// package that ended up inside, with its LICENSE text.
const packages = new Map();
for (const input of [...Object.keys(result.metafile.inputs), ...Object.keys(releasedInputs)]) {
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
