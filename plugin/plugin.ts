// The plugin assembled: systemd readers (the sync of unit states, socket Accept and counters,
// failure details) write the unit model; chart writers read it and write through the protocol
// writer; the sample loop (sampler.ts) says when; Functions read systemd on demand. Also its
// start (no systemd: DISABLE) and its stop (stdout drained, but never lingering).
//
//   systemd → UnitSync / SocketAcceptIndex / SocketPoller / FailureReporter → UnitTable
//           → Job, SocketActivityCharts → netdata/chart.ts → ProtocolWriter → stdout

import type { Readable, Writable } from 'node:stream';
import type { JobConfig } from './config/index.js';
import { socketUnitsFunction } from './functions/socket-units.js';
import { debugFor } from './log.js';
import { FunctionRouter } from './netdata/functions.js';
import { ProtocolWriter } from './netdata/protocol.js';
import { readRequests } from './netdata/requests.js';
import { Sampler } from './sampler.js';
import { FailureReporter } from './systemd/reasons.js';
import { SocketAcceptIndex } from './systemd/socket-counters.js';
import { SocketPoller } from './systemd/socket-poller.js';
import { busPort } from './systemd/port.js';
import { NoSystemdError, UnitSync } from './systemd/sync.js';
import { UnitTable } from './units/table.js';
import { Job } from './writers/job.js';
import { SocketActivityCharts } from './writers/socket-activity.js';
import { logError } from './log.js';

const debug = debugFor('main');

/** At stdin's EOF, the longest wait for the answers to calls already taken. */
const EOF_ANSWER_GRACE_MS = 15_000;

export interface PluginOptions {
  readonly jobs: readonly JobConfig[];
  /** The system bus. */
  readonly address: string;
  /** For tests of the connection replacement only (the default, 2^31, is never reached in practice). */
  readonly maxMessagesPerConnection?: number;
  /** The safety resync's interval (default 5 min; SYSTEMDUNITS_RESYNC_EVERY, for the bench). */
  readonly resyncEveryMs?: number;
  readonly stdin: Readable;
  readonly stdout: Writable;
  /** Ends the process (the plugin's last word). */
  readonly exit: (code: number) => void;
}

export class Plugin {
  private readonly writer: ProtocolWriter;
  private stopping = false;
  private stopParts: (() => void) | undefined;

  constructor(private readonly options: PluginOptions) {
    // The agent closing our stdout means it is gone: exit quietly, as every plugin does.
    this.writer = new ProtocolWriter(options.stdout, () => options.exit(0));
  }

  /** Runs until stopped; resolves once sampling has started (or the plugin disabled itself). */
  async start(): Promise<void> {
    const { jobs: configs, exit } = this.options;
    const writer = this.writer;
    if (configs.length === 0) {
      // The config said why on stderr; DISABLE keeps the agent from restarting us into the same error.
      writer.disable();
      await writer.drained();
      return exit(0);
    }

    const table = new UnitTable();
    const jobs = configs.map((j) => new Job(j, table, writer));
    let sampler: Sampler | undefined;
    const address = this.options.address;
    const sync = new UnitSync(table, {
      port: busPort({ address, callTimeoutMs: Math.max(...configs.map((j) => j.timeout)) * 1000, maxInFlight: 64 }),
      address,
      patterns: [...new Set(configs.flatMap((j) => j.include))],
      wants: (name) => jobs.some((j) => j.matchesName(name)),
      needTransient: configs.some((j) => j.skipTransient),
      onSnapshot: () => sampler?.compactSoon(),
      maxMessagesPerConnection: this.options.maxMessagesPerConnection,
      resyncEveryMs: this.options.resyncEveryMs,
    });
    const accept = new SocketAcceptIndex(table, sync);
    const reporter = new FailureReporter(table, (u) => jobs.some((j) => j.selects(u)), sync);
    const functions = new FunctionRouter(writer);
    functions.register(socketUnitsFunction({ table, systemd: (deadline) => sync.whenInStep(deadline), accept }));
    sampler = new Sampler({
      link: sync,
      writer,
      jobs,
      activity: configs.filter((j) => j.socketActivity).map((j) => ({ charts: new SocketActivityCharts(j, table, writer), poller: new SocketPoller(sync, table, j.name, { maxSockets: j.socketActivityMaxSockets }) })),
      accept,
      functions,
      reasons: reporter,
      watchdog: sync,
    });
    // stdin waits while stdout has a backlog: a burst of calls cannot pile answers up in memory.
    const requests = readRequests(
      this.options.stdin,
      {
        // At EOF the calls already asked are answered first (a request piped in by hand), within
        // their deadlines and EOF_ANSWER_GRACE_MS; SIGTERM and QUIT stop at once.
        onQuit: (reason) => {
          if (reason !== 'eof') return this.stop('QUIT');
          const grace = new Promise((resolve) => setTimeout(resolve, EOF_ANSWER_GRACE_MS).unref());
          void Promise.race([functions.idle(), grace]).then(() => this.stop('stdin closed (the agent is gone)'));
        },
        onFunction: (call) => functions.handle(call),
        onCancel: (transaction) => functions.cancel(transaction),
      },
      { ready: () => writer.drained() },
    );
    this.stopParts = () => {
      sampler!.stop();
      sync.stop();
      reporter.stop();
      requests.stop();
      functions.stop();
    };

    try {
      await sync.start();
    } catch (err) {
      if (this.stopping) return;
      if (!(err instanceof NoSystemdError)) throw err;
      logError(`${err.message}; disabling the plugin`);
      writer.disable();
      await writer.drained();
      return exit(0);
    }
    if (this.stopping) return;
    debug('watching %d units for %d job(s)', table.size, jobs.length);
    sampler.start();
  }

  stop(why: string): void {
    if (this.stopping) return;
    this.stopping = true;
    debug('stopping: %s', why);
    this.stopParts?.();
    // Let stdout drain, but never linger: the agent may SIGKILL a plugin that does not go.
    const exit = (): void => this.options.exit(0);
    setTimeout(exit, 500).unref();
    this.writer.drained().then(exit, exit);
  }
}
