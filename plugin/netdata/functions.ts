// Netdata Functions: the plugin declares them once (`FUNCTION GLOBAL "name" timeout "help"`, the
// form agents from 1.37 to v2 all accept) and answers the calls that arrive on stdin with
// FUNCTION_RESULT_BEGIN … FUNCTION_RESULT_END. A call for a name nobody registered gets a 404.

import { debugFor, errorText, logError } from '../log.js';
import type { ProtocolWriter } from './protocol.js';
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
  /** Seconds the agent waits for an answer. */
  readonly timeoutSec: number;
  readonly help: string;
  /** `args` are the words after the name (`info`, `after:…`); `deadline` is monotonic ms. */
  readonly run: (args: readonly string[], deadline: number) => Promise<FunctionAnswer>;
}

/** Time kept back from the agent's timeout for writing the answer. */
const ANSWER_MARGIN_MS = 500;

export class FunctionRouter {
  private readonly functions = new Map<string, FunctionSpec>();

  constructor(private readonly writer: ProtocolWriter) {}

  register(spec: FunctionSpec): void {
    this.functions.set(spec.name, spec);
  }

  /** Writes every declaration (the caller flushes): once at start-up is enough. */
  declareAll(): void {
    for (const f of this.functions.values()) this.writer.functionDeclaration(f.name, f.timeoutSec, f.help);
  }

  /** Answers one call; the answer is written and flushed in one piece when it is ready. */
  async handle(call: FunctionCall): Promise<void> {
    const [name = '', ...args] = call.command.split(/\s+/).filter((w) => w !== '');
    const spec = this.functions.get(name);
    let answer: FunctionAnswer;
    if (!spec) {
      answer = { status: 404, body: { status: 404, error_message: `systemdunits.plugin has no function '${name}'` } };
    } else {
      const budgetMs = Math.max(1, call.timeoutSec || spec.timeoutSec) * 1000;
      const deadline = performance.now() + Math.max(budgetMs - ANSWER_MARGIN_MS, budgetMs / 2);
      try {
        answer = await spec.run(args, deadline);
      } catch (err) {
        logError(`function ${name}: ${errorText(err)}`);
        answer = { status: 500, body: { status: 500, error_message: `internal error: ${errorText(err)}` } };
      }
    }
    debug('%s %s → %d', call.transaction, name, answer.status);
    this.writer.functionResult({
      transaction: call.transaction,
      status: answer.status,
      expires: 0,
      json: answer.body,
    });
    this.writer.flush();
  }
}

