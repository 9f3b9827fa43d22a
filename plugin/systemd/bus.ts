// The D-Bus connection: the only module that imports dbus-next. It knows nothing about units.
//
// dbus-next has no call timeout and no disconnect event (pending calls never settle when the
// daemon goes away), so this wraps every call in a timeout, caps the calls in flight well below
// dbus-daemon's 128 pending replies per connection (a call that timed out here keeps its slot
// until its late answer: the daemon still counts it), watches the socket for `close`, and sends
// AddMatch itself (the library's own match bookkeeping is per object and leaks rules).

import dbus from 'dbus-next';
import DBusBuffer from 'dbus-next/lib/dbus-buffer.js';
import { EventEmitter } from 'node:events';
import { Readable } from 'node:stream';
import { debugFor, errorText } from '../log.js';
import { RawBody } from './listing.js';
import { canMarshal, marshalCall } from './marshal.js';
import { guardSocket } from './stream-guard.js';

const debug = debugFor('bus');

/**
 * Reply bodies handed over undecoded (a RawBody, see listing.ts): systemd's unit listings, whose
 * generic decoding cost most of a resync. dbus-next has no option for it, but its reader decodes
 * every body with one call, DBusBuffer.prototype.read(signature), right after the header fields:
 * for these signatures the body's bytes are returned instead, shaped as a one-field struct in a
 * one-element array ([[[raw]]]), which the library's second pass (messageToJsFmt) passes through
 * untouched. Nothing else has these signatures; every other body is decoded as before.
 */
export const RAW_SIGNATURES: ReadonlySet<string> = new Set(['a(ssssssouso)']);
{
  interface Reader {
    buffer: Buffer;
    pos: number;
    endian: number;
  }
  const proto = DBusBuffer.prototype as { read(this: Reader, signature: string): unknown[] };
  const generic = proto.read;
  proto.read = function read(this: Reader, signature: string): unknown[] {
    if (!RAW_SIGNATURES.has(signature)) return generic.call(this, signature);
    const raw = new RawBody(this.buffer.subarray(this.pos), this.endian === 0x6c);
    this.pos = this.buffer.length;
    return [[[raw]]];
  };
}

export interface CallSpec {
  readonly destination: string;
  readonly path: string;
  readonly interface: string;
  readonly member: string;
  readonly signature?: string;
  readonly body?: unknown[];
}

/**
 * Where a message stands in the order the connection received it. dbus-next hands over every
 * message of a read synchronously, before any awaiting code resumes, so "after the reply" cannot
 * be told by when code runs: a signal and a reply are compared by their `seq` instead.
 */
export type Seq = number;

/** A signal as the rest of the plugin sees it: plain fields, no library types. */
export interface Signal {
  readonly seq: Seq;
  readonly sender: string;
  readonly path: string;
  readonly interface: string;
  readonly member: string;
  readonly body: unknown[];
}

/** A method's answer, and where it arrived among the signals. */
export interface Reply {
  readonly body: unknown[];
  readonly seq: Seq;
}

export class BusCallError extends Error {
  constructor(
    message: string,
    /** The D-Bus error name (`org.freedesktop.DBus.Error.ServiceUnknown`…), or a local one. */
    readonly dbusName: string,
  ) {
    super(message);
  }
}

export const TIMEOUT_ERROR = 'systemdunits.Timeout';
const BUS_DAEMON = 'org.freedesktop.DBus';
export const CLOSED_ERROR = 'systemdunits.Closed';

export interface BusOptions {
  readonly address: string;
  readonly callTimeoutMs: number;
  /** Calls sent and not yet answered, counting those that timed out here (dbus-daemon still does). */
  readonly maxInFlight: number;
  /**
   * Close the connection once this many calls went unanswered past their timeout (default: every
   * slot). Late answers free slots by themselves (a frozen systemd answers once it runs again, and
   * dbus-daemon answers NoReply for a peer that leaves), so only a connection left with no slot
   * at all is replaced: it could not even ask whether systemd is back.
   */
  readonly maxUnanswered?: number;
}

interface Waiter {
  resolve: () => void;
}

/**
 * One connection to a bus. Emits `signal` (Signal) and `close` (once). After close every pending
 * and future call fails with CLOSED_ERROR; make a new Bus to reconnect.
 */
export class Bus extends EventEmitter {
  private readonly bus: dbus.MessageBus;
  private inFlight = 0;
  /** Calls that timed out here and still hold their slot, awaiting a late answer. */
  private unanswered = 0;
  private readonly queue: Waiter[] = [];
  private readonly pending = new Set<(err: Error) => void>();
  private closed = false;
  /** Messages sent on this connection; serials never wrap in dbus-next, so callers reconnect early. */
  sent = 0;
  /** When this connection was made (Date.now()). */
  readonly openedAt = Date.now();
  /**
   * When a call to a peer (not the bus daemon) was last answered, Date.now(); 0 before any. Here
   * the peer is systemd: its answers prove it alive as its signals do (see watchdog.ts).
   */
  answeredAt = 0;
  /** Messages received so far: the `seq` of the latest one. */
  private received: Seq = 0;
  /** Arrival `seq` of replies, by the serial of the call they answer, until the call takes it. */
  private readonly replySeq = new Map<number, Seq>();
  /** dbus-next's socket: the calls marshalled here are written to it (see send). */
  private stream: (NodeJS.WritableStream & { writable: boolean }) | undefined;

  private constructor(private readonly options: BusOptions) {
    super();
    this.bus = dbus.sessionBus({ busAddress: options.address });
    // An 'error' without a listener would crash the process; every error ends this connection.
    this.bus.on('error', (err: unknown) => this.close(errorText(err)));
    const stream = (this.bus as unknown as { _connection?: { stream?: EventEmitter } })._connection?.stream;
    if (stream instanceof Readable) this.stream = stream as unknown as NodeJS.WritableStream & { writable: boolean };
    // Bytes that are not D-Bus, an absurd length or a decode error end this connection, not the plugin.
    if (stream instanceof Readable) guardSocket(stream, (reason) => this.close(reason));
    stream?.on('close', () => this.close('connection closed'));
    stream?.on('end', () => this.close('connection ended'));
    this.bus.on('message', (msg: dbus.Message) => {
      // A throwing handler here would make dbus-next drop the reply it carries: never throw.
      const seq = ++this.received;
      if (msg.type !== dbus.MessageType.SIGNAL) {
        // Only for calls still awaited: a late answer to a timed-out call would never be taken.
        const serial = Number(msg.replySerial);
        if (this.replyHandlers()[serial] !== undefined) this.replySeq.set(serial, seq);
        return;
      }
      try {
        this.emit('signal', {
          seq,
          sender: msg.sender ?? '',
          path: msg.path ?? '',
          interface: msg.interface ?? '',
          member: msg.member ?? '',
          body: msg.body ?? [],
        } satisfies Signal);
      } catch (err) {
        debug('signal handler failed: %s', errorText(err));
      }
    });
  }

  /** Connects and completes the Hello handshake, or rejects within the call timeout. */
  static async connect(options: BusOptions): Promise<Bus> {
    // dbus-next would run a program for a `unixexec:` address (or fall back to one after `;`):
    // this plugin only ever opens a socket.
    if (!/^unix:path=[^;]+$/.test(options.address)) {
      throw new BusCallError('only a unix:path= address is supported', CLOSED_ERROR);
    }
    const bus = new Bus(options);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        bus.close('handshake timed out');
        reject(new BusCallError(`no answer within ${options.callTimeoutMs} ms`, TIMEOUT_ERROR));
      }, options.callTimeoutMs);
      bus.bus.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
      bus.once('close', (reason: string) => {
        clearTimeout(timer);
        reject(new BusCallError(reason, CLOSED_ERROR));
      });
    });
    debug('connected to %s as %s', options.address, (bus.bus as unknown as { name?: string }).name);
    return bus;
  }

  async call(spec: CallSpec, timeoutMs = this.options.callTimeoutMs): Promise<Reply> {
    await this.slot(spec, timeoutMs);
    return this.callNow(spec, timeoutMs);
  }

  async addMatch(rule: string): Promise<void> {
    await this.call({
      destination: BUS_DAEMON,
      path: '/org/freedesktop/DBus',
      interface: 'org.freedesktop.DBus',
      member: 'AddMatch',
      signature: 's',
      body: [rule],
    });
  }

  async removeMatch(rule: string): Promise<void> {
    await this.call({
      destination: BUS_DAEMON,
      path: '/org/freedesktop/DBus',
      interface: 'org.freedesktop.DBus',
      member: 'RemoveMatch',
      signature: 's',
      body: [rule],
    });
  }

  close(reason = 'closed by the plugin'): void {
    if (this.closed) return;
    this.closed = true;
    debug('connection closed: %s', reason);
    for (const fail of this.pending) fail(new BusCallError(`D-Bus connection lost (${reason})`, CLOSED_ERROR));
    this.pending.clear();
    for (const w of this.queue.splice(0)) w.resolve();
    try {
      this.bus.disconnect();
    } catch {
      // already gone
    }
    this.emit('close', reason);
  }

  /**
   * Sends a call in the slot `call` took. The slot stays taken until an answer comes, however
   * late, or the connection ends: a call that timed out here may still be pending at dbus-daemon,
   * which refuses calls past 128 pending replies per connection (then every listing fails).
   */
  private callNow(spec: CallSpec, timeoutMs: number): Promise<Reply> {
    let held = true;
    const free = (): void => {
      if (!held) return;
      held = false;
      this.release();
    };
    if (this.closed) {
      free();
      return Promise.reject(new BusCallError('D-Bus connection is closed', CLOSED_ERROR));
    }
    return new Promise((resolve, reject) => {
      let reply: Promise<dbus.Message | null>;
      let serial: number | undefined;
      let unanswered = false;
      const fail = (err: Error): void => {
        clearTimeout(timer);
        this.pending.delete(fail);
        reject(err);
      };
      const answered = (): void => {
        if (unanswered) {
          unanswered = false;
          this.unanswered--;
        }
        free();
      };
      const timer = setTimeout(() => {
        // dbus-next keeps its reply handler, and this call its slot, until the answer comes: the
        // slots cap what a hung peer can make pile up, here and at dbus-daemon alike.
        unanswered = true;
        this.unanswered++;
        debug('%s on %s timed out after %d ms (%d calls pending, %d queued)', spec.member, spec.path, timeoutMs, this.pending.size, this.queue.length);
        fail(new BusCallError(`${spec.member} on ${spec.path}: no answer within ${timeoutMs} ms`, TIMEOUT_ERROR));
        if (this.unanswered >= this.maxUnanswered) {
          // No slot left to ask anything: only a new connection frees what dbus-daemon still holds.
          this.close(`${this.unanswered} calls still unanswered after their timeout`);
        }
      }, timeoutMs);
      this.pending.add(fail);
      this.sent++;
      try {
        ({ serial, reply } = this.send(spec));
      } catch (err) {
        free();
        return fail(new BusCallError(`${spec.member}: ${errorText(err)}`, CLOSED_ERROR));
      }
      reply.then(
        (msg) => {
          answered();
          const seq = this.replySeq.get(serial ?? -1) ?? this.received;
          this.replySeq.delete(serial ?? -1);
          if (spec.destination !== BUS_DAEMON) this.answeredAt = Date.now();
          if (!this.pending.has(fail)) return; // timed out or closed already
          clearTimeout(timer);
          this.pending.delete(fail);
          resolve({ body: msg?.body ?? [], seq });
        },
        (err: unknown) => {
          answered();
          this.replySeq.delete(serial ?? -1);
          const name = (err as { type?: string }).type ?? 'org.freedesktop.DBus.Error.Failed';
          fail(new BusCallError(`${spec.member}: ${errorText(err)}`, name));
        },
      );
    });
  }

  /**
   * Writes a call: marshalled here (marshal.ts) when its body is strings, else by dbus-next. Its
   * answer comes back through dbus-next's table of reply handlers either way (the library reads
   * every message); the serial is the library's, so the numbering stays one sequence.
   */
  private send(spec: CallSpec): { serial: number | undefined; reply: Promise<dbus.Message | null> } {
    const stream = this.stream;
    if (!stream || !canMarshal(spec.signature)) {
      const request = new dbus.Message({ type: dbus.MessageType.METHOD_CALL, ...spec });
      const reply = this.bus.call(request); // sets request.serial
      return { serial: request.serial ?? undefined, reply };
    }
    if (!stream.writable) throw new Error('Cannot send message, stream is closed');
    const serial = this.bus.newSerial();
    const bytes = marshalCall(spec, serial); // throws before anything is registered or written
    const reply = new Promise<dbus.Message>((resolve, reject) => {
      // As dbus-next's own call() registers it: taken (and deleted) by the library's reader.
      this.replyHandlers()[serial] = (msg: dbus.Message): void => {
        if (msg.type !== dbus.MessageType.ERROR) return resolve(msg);
        const text = typeof msg.body?.[0] === 'string' ? msg.body[0] : '';
        reject(Object.assign(new Error(text || (msg.errorName ?? 'error')), { type: msg.errorName }));
      };
    });
    stream.write(bytes);
    return { serial, reply };
  }

  /** Calls sent and not yet answered, plus calls waiting for a slot: what a hung peer piles up. */
  get outstanding(): number {
    return this.pending.size + this.queue.length;
  }

  /** dbus-next's reply handlers by serial (private to the library; see callNow). */
  private replyHandlers(): Record<number, unknown> {
    return (this.bus as unknown as { _methodReturnHandlers?: Record<number, unknown> })._methodReturnHandlers ?? {};
  }

  private get maxUnanswered(): number {
    return this.options.maxUnanswered ?? this.options.maxInFlight;
  }

  /** Timed-out calls still waiting for their answer (each holds its slot meanwhile). */
  get stuck(): number {
    return this.unanswered;
  }

  /** Takes a slot, waiting at most `timeoutMs` for one (slots held by hung calls may never free). */
  private async slot(spec: CallSpec, timeoutMs: number): Promise<void> {
    if (this.closed) throw new BusCallError('D-Bus connection is closed', CLOSED_ERROR);
    if (this.inFlight < this.options.maxInFlight) {
      this.inFlight++;
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      const timer = setTimeout(() => {
        const i = this.queue.indexOf(waiter);
        if (i >= 0) this.queue.splice(i, 1);
        reject(new BusCallError(`${spec.member} on ${spec.path}: no free call slot within ${timeoutMs} ms (${this.unanswered} calls unanswered)`, TIMEOUT_ERROR));
      }, timeoutMs);
      this.queue.push(waiter);
    });
    this.inFlight++;
  }

  private release(): void {
    this.inFlight--;
    this.queue.shift()?.resolve();
  }
}
