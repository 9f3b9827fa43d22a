// Command line: `systemdunits.plugin [UPDATE_EVERY] [--config FILE] [--debug]`, as the agent runs
// it. The agent may append words of its own ("[plugin:NAME] command options"), so unknown
// arguments are tolerated rather than fatal (a non-zero exit would get the plugin disabled).

import yargs from 'yargs';

export interface Args {
  readonly updateEvery: number;
  readonly config: string | undefined;
  readonly debug: boolean;
  /** One line each, for stderr. */
  readonly problems: readonly string[];
}

const MAX_UPDATE_EVERY = 86400;

export function parseUpdateEvery(value: unknown): number | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const text = String(value).trim();
  if (!/^\d+$/.test(text)) return undefined;
  const n = Number(text);
  return n >= 1 && n <= MAX_UPDATE_EVERY ? n : undefined;
}

export function parseArgs(argv: readonly string[], env: NodeJS.ProcessEnv): Args {
  const parsed = yargs([...argv])
    .scriptName('systemdunits.plugin')
    .usage('$0 [UPDATE_EVERY] [--config FILE]\n\nNetdata external plugin: systemd unit states over D-Bus.')
    .option('config', { type: 'string', describe: 'config file (default: systemdunits.conf in the Netdata config dirs)' })
    .option('debug', { type: 'boolean', default: false, describe: 'log details to stderr (same as DEBUG=systemdunits:*)' })
    .parserConfiguration({ 'parse-positional-numbers': false })
    .help()
    .version(false)
    .parseSync();
  const problems: string[] = [];
  const positional = parsed._.map(String);
  let updateEvery = parseUpdateEvery(positional[0]);
  if (positional[0] !== undefined && updateEvery === undefined) {
    problems.push(`ignoring update_every '${positional[0]}': expected a whole number of seconds from 1 to ${MAX_UPDATE_EVERY}`);
  }
  updateEvery ??= parseUpdateEvery(env.NETDATA_UPDATE_EVERY) ?? 1;
  return { updateEvery, config: parsed.config, debug: parsed.debug, problems };
}
