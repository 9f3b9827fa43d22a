// The plugin's method calls, marshalled here into the bytes of a D-Bus message. Every call it makes
// has a body of strings and arrays of strings (Ping none; Get `ss`; AddMatch `s`;
// ListUnitsByPatterns `asas`), and dbus-next's generic marshaller (a Message with its name checks,
// the signature parsed, the body and the header fields converted twice, then written through
// generic type code) cost about half of a Ping's CPU: the watchdog pings every 5 s of quiet, and a
// reload makes the socket counters read every socket's Accept. This writes the same bytes directly.
//
// What it writes goes to dbus-daemon, which drops a connection that sends a malformed message:
// every name and string is checked first, and a call that does not fit throws a MarshalError.

/** A method call as bus.ts sends it. */
export interface MethodCall {
  readonly destination: string;
  readonly path: string;
  readonly interface: string;
  readonly member: string;
  readonly signature?: string;
  readonly body?: readonly unknown[];
}

export class MarshalError extends Error {}

/** Bodies written here: any sequence of strings and arrays of strings. */
const SIGNATURE = /^(?:s|as)*$/;
/** The most one call may take (its patterns): far below dbus-daemon's 128 MiB message limit. */
const MAX_CALL_BYTES = 1 << 24;
const OBJECT_PATH = /^\/(?:[A-Za-z0-9_]+(?:\/[A-Za-z0-9_]+)*)?$/;
const ELEMENT = '[A-Za-z_][A-Za-z0-9_]*';
const INTERFACE = new RegExp(`^${ELEMENT}(?:\\.${ELEMENT})+$`);
const MEMBER = /^[A-Za-z_][A-Za-z0-9_]*$/;
const BUS_NAME = /^(?::[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)+|[A-Za-z_-][A-Za-z0-9_-]*(?:\.[A-Za-z_-][A-Za-z0-9_-]*)+)$/;

/** Whether marshalCall writes a body of this signature. */
export function canMarshal(signature: string | undefined): boolean {
  return SIGNATURE.test(signature ?? '');
}

/** A little-endian D-Bus METHOD_CALL message, numbered `serial`, expecting a reply. */
export function marshalCall(call: MethodCall, serial: number): Buffer {
  const signature = call.signature ?? '';
  const body = call.body ?? [];
  if (!canMarshal(signature)) throw new MarshalError(`cannot marshal a body of signature '${signature}'`);
  const types = signature.match(/as|s/g) ?? [];
  if (types.length !== body.length) throw new MarshalError(`${call.member}: ${body.length} arguments for the signature '${signature}'`);
  check(call.path.length <= 255 * 1024 && OBJECT_PATH.test(call.path), 'object path', call.path);
  check(call.interface.length <= 255 && INTERFACE.test(call.interface), 'interface', call.interface);
  check(call.member.length <= 255 && MEMBER.test(call.member), 'member', call.member);
  check(call.destination.length <= 255 && BUS_NAME.test(call.destination), 'bus name', call.destination);
  if (!Number.isInteger(serial) || serial < 1 || serial > 0xffffffff) throw new MarshalError(`serial ${serial} out of range`);

  const w = new Writer();
  // Fixed header; the body's length is filled in at the end.
  w.byte(0x6c); // 'l': little endian
  w.byte(1); // METHOD_CALL
  w.byte(0); // flags: a reply is expected
  w.byte(1); // protocol version
  w.u32(0);
  w.u32(serial);
  // Header fields a(yv): code, then a variant (its signature, then the value).
  const fieldsAt = w.reserve();
  const fieldsStart = w.length;
  const field = (code: number, type: 'o' | 's' | 'g', value: string): void => {
    w.align(8);
    w.byte(code);
    w.signature(type);
    if (type === 'g') w.signature(value);
    else w.string(value);
  };
  field(1, 'o', call.path);
  field(2, 's', call.interface);
  field(3, 's', call.member);
  field(6, 's', call.destination);
  if (signature) field(8, 'g', signature);
  w.setU32(fieldsAt, w.length - fieldsStart);
  w.align(8);
  const bodyStart = w.length;
  types.forEach((type, i) => {
    const value = body[i];
    if (type === 's') return w.string(text(value, call.member));
    if (!Array.isArray(value)) throw new MarshalError(`${call.member}: argument ${i + 1} is not an array of strings`);
    const lengthAt = w.reserve();
    const start = w.length; // strings are 4-aligned: no padding before the first element
    for (const item of value) w.string(text(item, call.member));
    w.setU32(lengthAt, w.length - start);
  });
  w.setU32(4, w.length - bodyStart);
  if (w.length > MAX_CALL_BYTES) throw new MarshalError(`${call.member}: a call of ${w.length} bytes`);
  return w.bytes();
}

function check(ok: boolean, what: string, value: string): void {
  if (!ok) throw new MarshalError(`not a valid D-Bus ${what}: '${value.slice(0, 80)}'`);
}

/** A D-Bus string holds no NUL (the bus checks UTF-8 too: Buffer.from writes only valid UTF-8). */
function text(value: unknown, member: string): string {
  if (typeof value !== 'string' || value.includes('\0')) throw new MarshalError(`${member}: an argument that is not a string without NUL`);
  return value;
}

/** A growing little-endian buffer. */
class Writer {
  private buf = Buffer.alloc(256);
  length = 0;

  private room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const bigger = Buffer.alloc(Math.max(this.buf.length * 2, this.length + n));
    this.buf.copy(bigger, 0, 0, this.length);
    this.buf = bigger;
  }

  byte(v: number): void {
    this.room(1);
    this.buf[this.length++] = v;
  }

  align(n: number): void {
    const to = (this.length + n - 1) & ~(n - 1);
    this.room(to - this.length);
    this.buf.fill(0, this.length, to);
    this.length = to;
  }

  u32(v: number): void {
    this.align(4);
    this.room(4);
    this.buf.writeUInt32LE(v, this.length);
    this.length += 4;
  }

  /** Room for a u32 written later (an array's length); returns where it is. */
  reserve(): number {
    this.u32(0);
    return this.length - 4;
  }

  setU32(at: number, v: number): void {
    this.buf.writeUInt32LE(v, at);
  }

  string(s: string): void {
    const n = Buffer.byteLength(s);
    this.u32(n);
    this.room(n + 1);
    this.buf.write(s, this.length, 'utf8');
    this.buf[this.length + n] = 0;
    this.length += n + 1;
  }

  /** A signature: one length byte (a signature is at most 255 bytes), no alignment. */
  signature(s: string): void {
    if (s.length > 255) throw new MarshalError(`a signature of ${s.length} characters`);
    this.byte(s.length);
    this.room(s.length + 1);
    this.buf.write(s, this.length, 'latin1');
    this.buf[this.length + s.length] = 0;
    this.length += s.length + 1;
  }

  bytes(): Buffer {
    return this.buf.subarray(0, this.length);
  }
}
