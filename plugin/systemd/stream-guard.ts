// Guards dbus-next's reader against a connection that stops making sense.
//
// dbus-next decodes the bus's bytes inside the socket's 'readable' handler: an error there is
// thrown out of an event handler (an uncaught exception, and the connection stays half-read for
// good), and the length a message header announces goes straight to socket.read(n), which buffers
// that many bytes (up to 1 GiB; past that Node throws a RangeError). The guard sees the bytes as
// they arrive, before dbus-next does: it checks every message header against the D-Bus framing
// and a cap on the size, bounds the handshake, and turns a throw from the reader into a fault. On
// a fault the socket is destroyed and the caller drops the connection (and makes a new one).

import type { Readable } from 'node:stream';
import { errorText } from '../log.js';

/**
 * The most one message may announce: dbus-daemon's own default max_message_size (32 MiB), so
 * nothing a default system bus relays is refused. systemd's answers to this plugin are far smaller
 * (the listing of 10,000 units is 1.7 MB); the D-Bus spec's ceiling (128 MiB) would let a broken
 * peer make the plugin hold 4 times more for a message no default bus carries.
 */
export const MAX_MESSAGE_BYTES = 32 * 1024 * 1024;

/** The handshake is a few short lines (`OK <guid>`); a bus that sends more is not speaking D-Bus. */
export const MAX_HANDSHAKE_BYTES = 16 * 1024;

const HEADER_BYTES = 16;
const EMPTY: Buffer = Buffer.alloc(0);

/** The library's error messages quote the bytes they choked on: keep the log line plain and short. */
function printable(text: string): string {
  const plain = text.replace(/[^\x20-\x7e]/g, '?');
  return plain.length > 160 ? `${plain.slice(0, 160)}…` : plain;
}

/** Bytes after the fixed 16-byte header of a message whose header is sound, or what is wrong with it. */
export function checkHeader(h: Buffer): { rest: number } | { problem: string } {
  const endian = h[0];
  // Every message starts with 'l' or 'B', one of the four message types, and protocol version 1.
  if ((endian !== 0x6c && endian !== 0x42) || h[1] === 0 || h[1]! > 4 || h[3] !== 1) {
    return { problem: `bytes that are not D-Bus (a message header of ${h.toString('hex')})` };
  }
  const le = endian === 0x6c;
  const body = le ? h.readUInt32LE(4) : h.readUInt32BE(4);
  const fields = le ? h.readUInt32LE(12) : h.readUInt32BE(12);
  // Every message type has required header fields; dbus-next would wait for ever on a read of 0.
  if (fields === 0) return { problem: 'a message header without header fields' };
  const rest = Math.ceil(fields / 8) * 8 + body;
  if (HEADER_BYTES + rest > MAX_MESSAGE_BYTES) {
    return { problem: `a message header that announces a message of ${HEADER_BYTES + rest} bytes (over the ${MAX_MESSAGE_BYTES >> 20} MiB a message may have)` };
  }
  return { rest };
}

/**
 * Follows the bytes a bus sends to a client: the handshake's lines up to `OK`, then messages. Says
 * what is wrong as soon as something is, before those bytes reach the reader.
 */
export class FrameChecker {
  private handshakeBytes = 0;
  /** Handshake lines still to come after OK: one more when unix fds are negotiated. */
  private linesAfterOk: number;
  private okSeen = false;
  /** The first bytes of the handshake line under way (enough to tell `OK `). */
  private lineStart = '';
  private header: Buffer = EMPTY;
  /** Bytes left of the message under way, after its header. */
  private left = 0;

  constructor(negotiatesUnixFd = false) {
    this.linesAfterOk = negotiatesUnixFd ? 1 : 0;
  }

  /** Takes the next bytes from the bus; returns what is wrong with them, or undefined. */
  feed(chunk: Buffer): string | undefined {
    let i = 0;
    while (i < chunk.length) {
      if (!this.okSeen || this.linesAfterOk > 0) {
        const nl = chunk.indexOf(0x0a, i);
        const end = nl < 0 ? chunk.length : nl + 1;
        this.handshakeBytes += end - i;
        if (this.handshakeBytes > MAX_HANDSHAKE_BYTES) return `over ${MAX_HANDSHAKE_BYTES} bytes of handshake`;
        if (this.lineStart.length < 3) this.lineStart += chunk.toString('latin1', i, Math.min(end, i + 3 - this.lineStart.length));
        i = end;
        if (nl < 0) continue;
        if (this.okSeen) this.linesAfterOk--;
        else this.okSeen = this.lineStart === 'OK ';
        this.lineStart = '';
        continue;
      }
      if (this.left > 0) {
        const n = Math.min(this.left, chunk.length - i);
        this.left -= n;
        i += n;
        continue;
      }
      const take = Math.min(HEADER_BYTES - this.header.length, chunk.length - i);
      this.header = this.header.length === 0 && take === HEADER_BYTES ? chunk.subarray(i, i + take) : Buffer.concat([this.header, chunk.subarray(i, i + take)]);
      i += take;
      if (this.header.length < HEADER_BYTES) continue;
      const checked = checkHeader(this.header);
      if ('problem' in checked) return checked.problem;
      this.left = checked.rest;
      this.header = EMPTY;
    }
    return undefined;
  }
}

/**
 * Checks what arrives on dbus-next's socket before dbus-next reads it, and catches what its reader
 * throws. `onFault` is called once, with a one-line reason; the socket is destroyed after it.
 */
export function guardSocket(socket: Readable & { supportsUnixFd?: boolean }, onFault: (reason: string) => void): void {
  const checker = new FrameChecker(Boolean(socket.supportsUnixFd));
  let failed = false;
  const fault = (reason: string): void => {
    if (failed) return;
    failed = true;
    onFault(reason);
    socket.destroy();
  };
  // Incoming bytes enter the socket's buffer through push(): checked there, before any read(n)
  // sized by a header could make the buffer grow.
  const push = socket.push.bind(socket);
  socket.push = (chunk: unknown, encoding?: BufferEncoding): boolean => {
    if (failed) return false;
    if (Buffer.isBuffer(chunk) || typeof chunk === 'string') {
      const problem = checker.feed(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk, encoding));
      if (problem !== undefined) {
        fault(`bad data on the connection: ${problem}`);
        return false;
      }
    }
    return push(chunk, encoding);
  };
  // dbus-next decodes in its 'readable' handler: what it throws would escape as uncaught.
  const emit = socket.emit.bind(socket) as (event: string | symbol, ...args: unknown[]) => boolean;
  socket.emit = ((event: string | symbol, ...args: unknown[]): boolean => {
    if (event !== 'readable') return emit(event, ...args);
    try {
      return emit(event, ...args);
    } catch (err) {
      fault(`cannot decode a message from the bus: ${printable(errorText(err))}`);
      return true;
    }
  }) as typeof socket.emit;
}
