// Netdata Functions: the plugin declares them once and answers the calls that arrive on stdin with
// FUNCTION_RESULT_BEGIN … FUNCTION_RESULT_END. A call for a name nobody registered gets a 404.
//
// Calls are bounded (DEFAULT_LIMITS): one runs at a time, a few wait (holding only the words of
// the request), and any more get a 503 at once. Every call whose transaction can be echoed gets
// exactly one answer, by its deadline: a call still waiting then gets a 503, a run that has not
// finished a 504. A burst of calls therefore costs a bounded amount of memory and work, and the
// answers to it are written in one piece per slice of stdin.

import { debugFor, errorText, logError } from '../log.js';
import { canEchoTransaction, MAX_TRANSACTION_BYTES, type ProtocolWriter } from './protocol.js';
import type { FunctionCall } from './requests.js';

const debug = debugFor('functions');

export interface FunctionAnswer {
  readonly status: number;
  /** Serialised by the router as JSON. */
  readonly body: unknown;
}

export interface FunctionSpec {
  /** Letters, digits and `-`: the agent's function names. */
  readonly name: string;
  /** Seconds the agent waits for an answer; also the timeout of a call that gives none. */
  readonly timeoutSec: number;
  readonly help: string;
  /** v2 agents: tags, and who may call it (`member`: signed-in users of the same space). */
  readonly tags?: string;
  readonly access?: 'any' | 'member' | 'admin';
  /** `args` are the words after the name (`info`, `after:…`); `deadline` is monotonic ms. */
  readonly run: (args: readonly string[], deadline: number) => Promise<FunctionAnswer>;
}

export interface RouterLimits {
  /** Calls running at once. */
  readonly maxRunning: number;
  /** Calls waiting for a free slot; beyond them a call is refused with a 503. */
  readonly maxQueued: number;
}

/**
 * One call at a time reads systemd: socket-units keeps about 30 bus calls in flight, and the bus
 * allows 64, which the unit lookups behind the state charts need too. A few more wait their turn.
 */
export const DEFAULT_LIMITS: RouterLimits = { maxRunning: 1, maxQueued: 16 };

/** Time kept back from the caller's timeout for writing the answer. */
const ANSWER_MARGIN_MS = 500;
/** How long after its deadline a run that has not answered is answered 504 for (within the margin). */
const OVERRUN_MS = 250;
/** A caller's timeout is clamped to this: a call never holds a slot or a queue place longer. */
export const MAX_TIMEOUT_SEC = 120;
/** How often stderr may say that calls could not be answered. */
const UNANSWERABLE_SAY_EVERY_MS = 60_000;
/** A queued call started with less time than this left is answered 503 instead. */
const MIN_RUN_MS = 100;

/** A call that is owed exactly one answer. */
interface Owed {
  readonly transaction: string;
  answered: boolean;
}

interface Pending extends Owed {
  readonly spec: FunctionSpec;
  readonly args: readonly string[];
  /** Monotonic ms: the run's deadline, and when a call still queued is answered. */
  readonly answerBy: number;
}

const error = (status: number, message: string): FunctionAnswer => ({ status, body: { status, error_message: message } });

export class FunctionRouter {
  private readonly functions = new Map<string, FunctionSpec>();
  private readonly queue: Pending[] = [];
  private running = 0;
  private expiry: NodeJS.Timeout | undefined;
  private flushQueued = false;
  private stopped = false;
  /** Calls that could not be answered since stderr last said so, and when it did. */
  private unanswerable = 0;
  private unanswerableSaidAt = -Infinity;
  /** Told once no call is running or waiting (see idle). */
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly writer: ProtocolWriter,
    private readonly limits: RouterLimits = DEFAULT_LIMITS,
  ) {}

  register(spec: FunctionSpec): void {
    this.functions.set(spec.name, spec);
  }

  /** Writes every declaration (the caller flushes): once at start-up is enough. */
  declareAll(): void {
    for (const f of this.functions.values()) {
      this.writer.functionDeclaration(f.name, f.timeoutSec, f.help, f.access ? { tags: f.tags ?? '', access: f.access } : undefined);
    }
  }

  /** Calls running and waiting, for tests and debugging. */
  get load(): { running: number; queued: number } {
    return { running: this.running, queued: this.queue.length };
  }

  /**
   * Resolves once every call taken has been answered (each by its deadline): at stdin's EOF the
   * calls already asked are still answered, as when a request is piped in by hand.
   */
  idle(): Promise<void> {
    if (this.running === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private checkIdle(): void {
    if (this.running > 0 || this.queue.length > 0 || this.idleWaiters.length === 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    waiters.forEach((w) => w());
  }

  /** Takes one call: answers it now (404, 400, 503), starts it, or queues it. */
  handle(call: FunctionCall): void {
    if (this.stopped) return;
    if (!canEchoTransaction(call.transaction)) {
      // No answer can reach the caller; the agent times it out on its side. Said once a minute.
      this.unanswerable++;
      const now = performance.now();
      if (now - this.unanswerableSaidAt >= UNANSWERABLE_SAY_EVERY_MS) {
        logError(
          `cannot answer ${this.unanswerable} function call(s): a transaction id that cannot be written back on the protocol ` +
            `(blanks, quotes, '=', control characters or over ${MAX_TRANSACTION_BYTES} bytes), e.g. ${JSON.stringify(call.transaction.slice(0, 40))}`,
        );
        this.unanswerable = 0;
        this.unanswerableSaidAt = now;
      }
      return;
    }
    const [name = '', ...args] = call.command.split(/\s+/).filter((w) => w !== '');
    const spec = this.functions.get(name);
    if (name === '') return this.answerNow(call.transaction, error(400, 'no function name in the request'));
    if (!spec) return this.answerNow(call.transaction, error(404, `systemdunits.plugin has no function '${name.slice(0, 100)}'`));
    const timeoutSec = Math.min(call.timeoutSec ?? spec.timeoutSec, MAX_TIMEOUT_SEC);
    const budgetMs = Math.max(1, timeoutSec) * 1000;
    const answerBy = performance.now() + Math.max(budgetMs - ANSWER_MARGIN_MS, budgetMs / 2);
    const p: Pending = { transaction: call.transaction, spec, args, answerBy, answered: false };
    if (this.running < this.limits.maxRunning) this.start(p);
    else if (this.queue.length < this.limits.maxQueued) {
      this.queue.push(p);
      this.armExpiry();
    } else {
      debug('%s refused: %d running, %d queued', call.transaction, this.running, this.queue.length);
      this.answer(p, error(503, 'too many calls of systemdunits.plugin functions at once; try again shortly'));
    }
  }

  /** The agent gave up on a call: a queued one is answered and dropped, a running one runs out. */
  cancel(transaction: string): void {
    const i = this.queue.findIndex((p) => p.transaction === transaction);
    if (i < 0) return;
    const [p] = this.queue.splice(i, 1);
    this.answer(p!, error(499, 'cancelled'));
    this.checkIdle();
  }

  /** At shutdown: nothing more is started or answered. */
  stop(): void {
    this.stopped = true;
    this.queue.length = 0;
    clearTimeout(this.expiry);
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    waiters.forEach((w) => w());
  }

  private start(p: Pending): void {
    this.running++;
    let guard: NodeJS.Timeout | undefined;
    const done = (answer: FunctionAnswer): void => {
      clearTimeout(guard);
      if (p.answered) return;
      this.answer(p, answer);
      this.running--;
      this.next();
    };
    // The run is given the deadline and keeps to it; this answers for it if it does not.
    guard = setTimeout(() => done(error(504, `${p.spec.name} did not finish in time`)), Math.max(0, p.answerBy + OVERRUN_MS - performance.now()));
    let running: Promise<FunctionAnswer>;
    try {
      running = p.spec.run(p.args, p.answerBy);
    } catch (err) {
      running = Promise.reject(err);
    }
    running.then(done, (err: unknown) => {
      logError(`function ${p.spec.name}: ${errorText(err)}`);
      done(error(500, `internal error: ${errorText(err)}`));
    });
  }

  private next(): void {
    while (!this.stopped && this.running < this.limits.maxRunning && this.queue.length) {
      const p = this.queue.shift()!;
      if (p.answerBy - performance.now() < MIN_RUN_MS) this.answer(p, error(503, 'too many calls of systemdunits.plugin functions at once; try again shortly'));
      else this.start(p);
    }
    this.armExpiry();
    this.checkIdle();
  }

  /** One timer for the queue: the earliest answer-by time of a waiting call. */
  private armExpiry(): void {
    clearTimeout(this.expiry);
    this.expiry = undefined;
    if (this.queue.length === 0 || this.stopped) return;
    const first = Math.min(...this.queue.map((p) => p.answerBy));
    this.expiry = setTimeout(() => {
      const now = performance.now();
      for (let i = this.queue.length - 1; i >= 0; i--) {
        const p = this.queue[i]!;
        if (p.answerBy <= now + 1) {
          this.queue.splice(i, 1);
          this.answer(p, error(503, 'too many calls of systemdunits.plugin functions at once; waited in vain for a turn'));
        }
      }
      this.armExpiry();
      this.checkIdle();
    }, Math.max(0, first - performance.now()));
  }

  private answerNow(transaction: string, answer: FunctionAnswer): void {
    this.answer({ transaction, answered: false }, answer);
  }

  /** Writes the answer once; answers given in one turn of the event loop go out in one write. */
  private answer(p: Owed, answer: FunctionAnswer): void {
    if (p.answered || this.stopped) return;
    p.answered = true;
    debug('%s → %d', p.transaction, answer.status);
    this.writer.functionResult({ transaction: p.transaction, status: answer.status, expires: 0, json: answer.body });
    if (this.flushQueued) return;
    this.flushQueued = true;
    queueMicrotask(() => {
      this.flushQueued = false;
      this.writer.flush();
    });
  }
}
