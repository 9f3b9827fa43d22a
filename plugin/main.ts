// Wiring only: arguments → config → the plugin (plugin.ts), signals and last-resort error handling.

import createDebug from 'debug';
import { HELP, parseArgs, VERSION } from './args.js';
import { checkConfig, findConfigFile, loadConfig } from './config/index.js';
import { debugFor, errorText, logError, useTimestamps, wantsTimestamps } from './log.js';
import { Plugin } from './plugin.js';
import { resyncEveryFromEnv } from './systemd/sync.js';

const debug = debugFor('main');
const DEFAULT_BUS = 'unix:path=/var/run/dbus/system_bus_socket';

async function main(): Promise<void> {
  // A bug must not become a crash loop under the agent: say it in one line and carry on.
  process.on('uncaughtException', (err) => logError(`internal error: ${err.stack ?? err.message}`));
  process.on('unhandledRejection', (err) => logError(`internal error (promise): ${errorText(err)}`));

  const args = parseArgs(process.argv.slice(2), process.env);
  if (args.debug) createDebug.enable('systemdunits:*');
  // Help, version and --check-config are for a person at a terminal: no timestamps, no protocol.
  if (args.action === 'run') useTimestamps(wantsTimestamps(process.env));
  args.problems.forEach((p) => logError(p));
  if (args.action !== 'run') {
    if (args.action === 'help') process.stdout.write(HELP);
    else if (args.action === 'version') process.stdout.write(`systemdunits.plugin ${VERSION}\n`);
    else {
      const check = checkConfig(args.config, process.env, args.updateEvery);
      check.problems.forEach((p) => logError(p));
      process.stdout.write(check.report.map((l) => `${l}\n`).join(''));
      process.exitCode = check.status;
    }
    return;
  }

  const configFile = findConfigFile(args.config, process.env);
  const { config, problems } = loadConfig(configFile, args.updateEvery);
  problems.forEach((p) => logError(p));
  debug('config from %s: %o', config.source, config.jobs);

  const resyncEvery = resyncEveryFromEnv(process.env.SYSTEMDUNITS_RESYNC_EVERY);
  if (resyncEvery.problem) logError(resyncEvery.problem);
  const plugin = new Plugin({
    jobs: config.jobs,
    address: process.env.DBUS_SYSTEM_BUS_ADDRESS || DEFAULT_BUS,
    maxMessagesPerConnection: positiveInt(process.env.SYSTEMDUNITS_MAX_MESSAGES_PER_CONNECTION),
    resyncEveryMs: resyncEvery.ms,
    stdin: process.stdin,
    stdout: process.stdout,
    exit: (code) => process.exit(code),
  });
  // SIGTERM keeps its default action: the kernel ends the plugin at once, even with the event loop
  // busy. Agents count a plugin killed by SIGTERM as a clean end (1.37.1: restarted like an exit 0;
  // v2: exit code 0). A JavaScript handler and Node's own exit took 10-50 ms, and a v2 agent
  // stopped by systemd (SIGTERM to all its processes at once) cancels the plugin's thread 15-130 ms
  // into its shutdown: a plugin not reaped by then is SIGKILLed and logged "exited abnormally".
  process.on('SIGINT', () => plugin.stop('SIGINT'));
  // No SIGPIPE handler: installing one un-ignores the signal for every socket, so a write to the
  // D-Bus socket just as dbus-daemon goes away stopped the plugin. A closed stdout is seen as EPIPE
  // by the protocol writer, and the plugin exits then.
  await plugin.start();
}

function positiveInt(text: string | undefined): number | undefined {
  const n = Number(text);
  return text && Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

main().catch((err) => {
  logError(`cannot start: ${errorText(err)}`);
  process.exit(1);
});
