// Command line: `systemdunits.plugin [UPDATE_EVERY] [--config FILE] [--debug] [--check-config]`,
// as the agent runs it. The agent may append words of its own ("[plugin:NAME] command options"),
// so nothing on the command line is fatal (a non-zero exit would get the plugin disabled): a
// mistake is said on stderr, for the person at a terminal, and ignored.

import { loadYargs } from './args-parser.js';
import pkg from '../package.json' with { type: 'json' };
import { MAX_UPDATE_EVERY } from './config/schema.js';

export const VERSION: string = pkg.version;

export interface Args {
  /** `run` under the agent; the others print and exit (see main). */
  readonly action: 'run' | 'help' | 'version' | 'check-config';
  readonly updateEvery: number;
  readonly config: string | undefined;
  readonly debug: boolean;
  /** One line each, for stderr. */
  readonly problems: readonly string[];
}

/** Written by hand, under 80 columns: a generated one broke words across lines. */
export const HELP = `Usage: systemdunits.plugin [UPDATE_EVERY] [--config FILE] [--debug]
                           [--check-config | --version | --help]

Netdata external plugin: systemd unit states over D-Bus. The Netdata agent
runs it with UPDATE_EVERY, the seconds between samples (default:
$NETDATA_UPDATE_EVERY, else 1).

Options:
  --config FILE    the config file (default: systemdunits.conf in
                   $NETDATA_USER_CONFIG_DIR, then $NETDATA_STOCK_CONFIG_DIR)
  --check-config   check the config the agent would use, print what it would
                   chart, and exit (non-zero when the config has problems)
  --debug          log details to stderr (same as DEBUG=systemdunits:*)
  --version        print the version and exit
  --help           print this help and exit
`;

const OPTIONS = ['config', 'debug', 'check-config', 'version', 'help'];

export function parseUpdateEvery(value: unknown): number | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const text = String(value).trim();
  if (!/^\d+$/.test(text)) return undefined;
  const n = Number(text);
  return n >= 1 && n <= MAX_UPDATE_EVERY ? n : undefined;
}

export function parseArgs(argv: readonly string[], env: NodeJS.ProcessEnv): Args {
  // help and version off first: yargs reserves both names, and must not print or exit by itself.
  const parsed = loadYargs()([...argv])
    .help(false)
    .version(false)
    .option('config', { type: 'string' })
    .option('debug', { type: 'boolean', default: false })
    .option('check-config', { type: 'boolean', default: false })
    .option('version', { type: 'boolean', default: false })
    .option('help', { type: 'boolean', default: false })
    .parserConfiguration({ 'parse-positional-numbers': false, 'camel-case-expansion': false })
    .exitProcess(false)
    .parseSync();
  const problems: string[] = [];
  for (const key of Object.keys(parsed)) {
    if (key === '_' || key === '$0' || OPTIONS.includes(key)) continue;
    problems.push(`ignoring unknown option ${key.length === 1 ? '-' : '--'}${oneLine(key)} (see --help)`);
  }
  let config: string | undefined = parsed.config;
  // `--config` last, or `--config ''`: no file named; say so rather than quietly use the default.
  if (argv.includes('--config') || argv.some((a) => a.startsWith('--config='))) {
    if (Array.isArray(config)) config = config[config.length - 1];
    if (!config) {
      problems.push('ignoring --config without a file name (see --help)');
      config = undefined;
    }
  }
  const positional = parsed._.map(String);
  let updateEvery = parseUpdateEvery(positional[0]);
  if (positional[0] !== undefined && updateEvery === undefined) {
    problems.push(`ignoring update_every '${oneLine(positional[0])}': expected a whole number of seconds from 1 to ${MAX_UPDATE_EVERY}`);
  }
  updateEvery ??= parseUpdateEvery(env.NETDATA_UPDATE_EVERY) ?? 1;
  const action = parsed.help ? 'help' : parsed.version ? 'version' : parsed['check-config'] ? 'check-config' : 'run';
  return { action, updateEvery, config, debug: parsed.debug, problems };
}

function oneLine(text: string): string {
  const t = text.replace(/[\x00-\x1f\x7f]/g, ' ');
  return t.length > 60 ? `${t.slice(0, 57)}...` : t;
}
