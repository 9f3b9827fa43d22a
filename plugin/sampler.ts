// The sample loop: what runs on each tick, in which order. Per job, on its update_every grid:
// wait (briefly) for the reason of a unit that failed just before, declare the Functions with the
// first batch, sample the job's charts while the model is in step (a heartbeat while it is not),
// flush, release the garbage of a new listing, and start the socket counters after the first
// batch. Per job with socket activity, on its own grid: a round that brings the socket counters
// up to date (reading only those that may have moved), then the socket charts of that round.

import { debugFor, logError } from './log.js';
import { releaseMemorySoon } from './memory.js';
import type { ProtocolWriter } from './netdata/protocol.js';
import { Scheduler } from './scheduler.js';
import type { SystemdLink } from './systemd/link.js';
import type { SocketPoller } from './systemd/socket-poller.js';
import type { Unit } from './units/table.js';

const debug = debugFor('activity');

/** How long a sample waits for the reason of a unit that failed just before it. */
export const REASON_WAIT_MS = 300;

/**
 * The most output the agent may leave unread before samples are skipped. An agent that stops
 * reading (stopped, hung on its disk) would otherwise make the plugin hold every sample it cannot
 * take: ~450 KB a second at 10,000 units, without bound. Its charts show a gap instead, which is
 * what happened; a tick's output and the first definitions (~3 MB at 20,000 dimensions) fit well
 * below this.
 */
export const MAX_BACKLOG_BYTES = 8 * 1024 * 1024;

export interface SampledJob {
  readonly config: { readonly updateEvery: number };
  sample(nowUs: number): void;
}

export interface ActivityJob {
  readonly charts: {
    readonly config: { readonly name: string; readonly socketActivityEvery: number };
    select(): Unit[];
    sample(readAtUs: number): void;
  };
  readonly poller: Pick<SocketPoller, 'poll'>;
}

export interface SamplerParts {
  readonly link: Pick<SystemdLink, 'inStep' | 'systemd'>;
  readonly writer: ProtocolWriter;
  readonly jobs: readonly SampledJob[];
  readonly activity: readonly ActivityJob[];
  /** Socket Accept values, read in the background (which sockets have activity charts). */
  readonly accept: { refresh(): Promise<void> };
  /** The Functions, declared with the first batch. */
  readonly functions: { declareAll(): void };
  /** Failure details: a promise while a failure's reason is still being read. */
  readonly reasons: { settled(maxMs: number): Promise<void> | undefined };
  /** systemd's watchdog, checked in each tick rather than on a timer of its own. */
  readonly watchdog?: { tick(): void };
}

export class Sampler {
  private readonly schedulers: Scheduler[];
  private readonly activity: ActivityLoop[];
  private declared = false;
  private compactAfterSample = false;
  private activityStarted = false;
  private stopped = false;
  /** Since when (ms) samples are skipped because the agent does not read stdout. */
  private blockedSince: number | undefined;

  constructor(private readonly parts: SamplerParts) {
    this.schedulers = parts.jobs.map((job) => new Scheduler(job.config.updateEvery, (nowUs) => this.tick(job, nowUs)));
    this.activity = parts.activity.map((a) => new ActivityLoop(a, parts));
  }

  start(): void {
    this.schedulers.forEach((s) => s.start());
  }

  stop(): void {
    this.stopped = true;
    this.schedulers.forEach((s) => s.stop());
    this.activity.forEach((a) => a.stop());
  }

  /** A new listing replaced the model: its garbage, and the definitions the next sample writes, go at once after it. */
  compactSoon(): void {
    this.compactAfterSample = true;
  }

  private tick(job: SampledJob, nowUs: number): void {
    // A unit that failed just now: its reason first (a few ms, at most REASON_WAIT_MS), so the
    // alarm's notification carries it.
    const reasons = this.parts.reasons.settled(REASON_WAIT_MS);
    if (!reasons) this.sample(job, nowUs);
    else void reasons.then(() => this.sample(job, Math.round(performance.now() * 1000)));
    // After the sample: a ping it sends is answered in a wake-up of its own either way.
    this.parts.watchdog?.tick();
  }

  /** Whether the agent has left too much unread: then nothing is written (said once on stderr, and when it reads again). */
  private agentBehind(writer: ProtocolWriter): boolean {
    const backlog = writer.backlog;
    if (backlog > MAX_BACKLOG_BYTES) {
      if (this.blockedSince === undefined) {
        this.blockedSince = Date.now();
        logError(`stdout: the agent has left ${(backlog / 1048576).toFixed(1)} MB unread; samples are skipped until it reads again (its charts show a gap)`);
      }
      return true;
    }
    if (this.blockedSince !== undefined) {
      logError(`stdout: the agent reads again after ${((Date.now() - this.blockedSince) / 1000).toFixed(0)} s; samples resume`);
      this.blockedSince = undefined;
    }
    return false;
  }

  private sample(job: SampledJob, nowUs: number): void {
    if (this.stopped) return;
    const { link, writer } = this.parts;
    if (this.agentBehind(writer)) return;
    const inStep = link.inStep;
    // Declared with the first batch, not before: a plugin that disables itself (no systemd) must
    // print nothing but DISABLE.
    if (inStep && !this.declared) {
      this.declared = true;
      this.parts.functions.declareAll();
    }
    // Out of step nothing is sampled (the agent shows a gap rather than stale values); an empty
    // line keeps the agent from taking the silence for a hang.
    if (inStep) job.sample(nowUs);
    else writer.heartbeat();
    writer.flush();
    if (!inStep) return;
    if (this.compactAfterSample) {
      this.compactAfterSample = false;
      releaseMemorySoon();
    }
    // Socket counters start after the first batch, so they never delay the state charts.
    if (!this.activityStarted) {
      this.activityStarted = true;
      if (this.activity.length > 0) void this.parts.accept.refresh();
      this.activity.forEach((a) => a.start());
    }
  }
}

/** One job's socket activity: a round of counter updates each tick, then that round's charts. */
class ActivityLoop {
  private scheduler: Scheduler | undefined;
  private round: Promise<void> | undefined;
  /** Ticks skipped because the previous round was still running. */
  private skipped = 0;

  constructor(
    private readonly job: ActivityJob,
    private readonly parts: SamplerParts,
  ) {}

  start(): void {
    this.scheduler = new Scheduler(this.job.charts.config.socketActivityEvery, (nowUs) => this.tick(nowUs));
    this.scheduler.start();
  }

  stop(): void {
    this.scheduler?.stop();
  }

  private tick(nowUs: number): void {
    const { charts, poller } = this.job;
    const { link, writer, accept } = this.parts;
    if (this.round) {
      this.skipped++;
      debug('%s: previous round still running; tick skipped (%d so far)', charts.config.name, this.skipped);
      return;
    }
    if (!link.systemd) return; // out of reach: nothing read, a gap on the charts
    if (writer.backlog > MAX_BACKLOG_BYTES) return; // the agent does not read (see Sampler.agentBehind)
    void accept.refresh(); // new sockets, or everything again after a reload
    const sockets = charts.select();
    writer.flush();
    if (sockets.length === 0) return;
    const everyMs = charts.config.socketActivityEvery * 1000;
    this.round = poller
      .poll(sockets, nowUs, everyMs)
      .then(() => {
        if (!link.inStep || writer.backlog > MAX_BACKLOG_BYTES) return; // lost systemd meanwhile: no half-true batch
        charts.sample(nowUs);
        writer.flush();
      })
      .finally(() => (this.round = undefined));
  }
}
