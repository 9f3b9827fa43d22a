// Wiring only: arguments and config → bus → unit table → jobs → scheduler, and shutdown.
// Data flows one way: systemd → UnitSync → UnitTable → Job → ProtocolWriter → stdout.

import createDebug from 'debug';
import { HELP, parseArgs, VERSION } from './args.js';
import { checkConfig } from './check-config.js';
import { findConfigFile, loadConfig } from './config.js';
import { socketUnitsFunction } from './functions/socket-units.js';
import { SocketActivityJob } from './jobs/activity.js';
import { Job } from './jobs/job.js';
import { debugFor, errorText, logError, useTimestamps, wantsTimestamps } from './log.js';
import { releaseMemorySoon } from './memory.js';
import { FunctionRouter } from './netdata/functions.js';
import { ProtocolWriter } from './netdata/protocol.js';
import { readRequests } from './netdata/requests.js';
import { Scheduler } from './scheduler.js';
import { SocketAcceptIndex } from './systemd/socket-counters.js';
import { FailureReporter } from './systemd/reasons.js';
import { busPort } from './systemd/port.js';
import { NoSystemdError, UnitSync } from './systemd/sync.js';
import { UnitSelector } from './jobs/selector.js';
import { UnitTable } from './units/table.js';

const debug = debugFor('main');
const DEFAULT_BUS = 'unix:path=/var/run/dbus/system_bus_socket';
/** How long a sample waits for the reason of a unit that failed just before it. */
const REASON_WAIT_MS = 300;
/** At stdin's EOF, the longest wait for the answers to calls already taken. */
const EOF_ANSWER_GRACE_MS = 15_000;

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

  const writer = new ProtocolWriter(process.stdout);
  const configFile = findConfigFile(args.config, process.env);
  const { config, problems } = loadConfig(configFile, args.updateEvery);
  problems.forEach((p) => logError(p));
  debug('config from %s: %o', config.source, config.jobs);
  if (config.jobs.length === 0) {
    // The config said why on stderr; DISABLE keeps the agent from restarting us into the same error.
    writer.disable();
    await writer.drained();
    process.exit(0);
  }

  const table = new UnitTable();
  let compactAfterSample = false;
  const address = process.env.DBUS_SYSTEM_BUS_ADDRESS || DEFAULT_BUS;
  const sync = new UnitSync(table, {
    port: busPort({ address, callTimeoutMs: Math.max(...config.jobs.map((j) => j.timeout)) * 1000, maxInFlight: 64 }),
    address,
    patterns: [...new Set(config.jobs.flatMap((j) => j.include))],
    wants: (name) => jobs.some((j) => j.matchesName(name)),
    needTransient: config.jobs.some((j) => j.skipTransient),
    // The snapshot's garbage, and the chart definitions the next sample writes, then go at once.
    onSnapshot: () => (compactAfterSample = true),
    // For tests of the connection replacement only (the default, 2^31, is never reached in practice).
    maxMessagesPerConnection: positiveInt(process.env.SYSTEMDUNITS_MAX_MESSAGES_PER_CONNECTION),
  });
  const jobs: Job[] = config.jobs.map((j) => new Job(j, table, writer, sync));
  const systemd = () => sync.systemd;
  const accept = new SocketAcceptIndex(table, systemd, () => sync.generation);
  const activity = config.jobs.filter((j) => j.socketActivity).map((j) => new SocketActivityJob(j, table, writer, accept, systemd, sync));
  const functions = new FunctionRouter(writer);
  functions.register(socketUnitsFunction({ table, systemd: (deadline) => sync.whenInStep(deadline), accept }));
  // Declared with the first batch, not before: a plugin that disables itself (no systemd)
  // must print nothing but DISABLE.
  let declared = false;
  const selectors = config.jobs.map((j) => new UnitSelector(j));
  const reporter = new FailureReporter(table, (u) => selectors.some((s) => s.selects(u)), systemd);
  let stopping = false;
  const sample = (job: Job, nowUs: number): void => {
    if (stopping) return;
    if (sync.inStep && !declared) {
      declared = true;
      functions.declareAll();
    }
    job.sample(nowUs);
    // While systemd is out of reach nothing is sampled; an empty line keeps the agent from
    // taking the silence for a hang.
    if (!sync.inStep) writer.heartbeat();
    writer.flush();
    if (compactAfterSample && sync.inStep) {
      compactAfterSample = false;
      releaseMemorySoon();
    }
    // Socket counters start after the first batch, so they never delay the state charts.
    if (sync.inStep) activity.forEach((a) => a.start());
  };
  const schedulers = jobs.map(
    (job) =>
      new Scheduler(job.config.updateEvery, (nowUs) => {
        // A unit that failed just now: its reason first (a few ms, at most REASON_WAIT_MS), so the
        // alarm's notification carries it.
        const reasons = reporter.settled(REASON_WAIT_MS);
        if (!reasons) sample(job, nowUs);
        else void reasons.then(() => sample(job, Math.round(performance.now() * 1000)));
      }),
  );

  const stop = (why: string): void => {
    if (stopping) return;
    stopping = true;
    debug('stopping: %s', why);
    schedulers.forEach((s) => s.stop());
    activity.forEach((a) => a.stop());
    sync.stop();
    reporter.stop();
    requests.stop();
    functions.stop();
    // Let stdout drain, but never linger: the agent may SIGKILL a plugin that does not go.
    const exit = (): never => process.exit(0);
    setTimeout(exit, 500).unref();
    writer.drained().then(exit, exit);
  };
  // SIGTERM keeps its default action: the kernel ends the plugin at once, even with the event loop
  // busy. Agents count a plugin killed by SIGTERM as a clean end (1.37.1: restarted like an exit 0;
  // v2: exit code 0). A JavaScript handler and Node's own exit took 10-50 ms, and a v2 agent
  // stopped by systemd (SIGTERM to all its processes at once) cancels the plugin's thread 15-130 ms
  // into its shutdown: a plugin not reaped by then is SIGKILLed and logged "exited abnormally".
  process.on('SIGINT', () => stop('SIGINT'));
  // No SIGPIPE handler: installing one un-ignores the signal for every socket, so a write to the
  // D-Bus socket just as dbus-daemon goes away stopped the plugin. A closed stdout is seen as EPIPE
  // by the protocol writer, which exits then.
  // stdin waits while stdout has a backlog: a burst of calls cannot pile answers up in memory.
  const requests = readRequests(
    process.stdin,
    {
      // At EOF the calls already asked are answered first (a request piped in by hand), within
      // their deadlines and EOF_ANSWER_GRACE_MS; SIGTERM and QUIT stop at once.
      onQuit: (reason) => {
        if (reason !== 'eof') return stop('QUIT');
        const grace = new Promise((resolve) => setTimeout(resolve, EOF_ANSWER_GRACE_MS).unref());
        void Promise.race([functions.idle(), grace]).then(() => stop('stdin closed (the agent is gone)'));
      },
      onFunction: (call) => functions.handle(call),
      onCancel: (transaction) => functions.cancel(transaction),
    },
    { ready: () => writer.drained() },
  );

  try {
    await sync.start();
  } catch (err) {
    if (stopping) return;
    if (!(err instanceof NoSystemdError)) throw err;
    logError(`${err.message}; disabling the plugin`);
    writer.disable();
    await writer.drained();
    process.exit(0);
  }
  if (stopping) return;
  debug('watching %d units for %d job(s)', table.size, jobs.length);
  schedulers.forEach((s) => s.start());
}

function positiveInt(text: string | undefined): number | undefined {
  const n = Number(text);
  return text && Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

main().catch((err) => {
  logError(`cannot start: ${errorText(err)}`);
  process.exit(1);
});
