// The guard on dbus-next's reader (plugin/systemd/stream-guard.ts): real messages, as dbus-next
// itself marshals them, pass however the bytes are split; garbage, absurd lengths and an endless
// handshake are said as soon as their bytes arrive; a throw from the reader becomes one fault.
// The same faults through a real bus connection: test/integration/bus-faults.test.ts.
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer, connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import dbus from 'dbus-next';
import { describe, expect, it } from 'vitest';
import { checkHeader, FrameChecker, guardSocket, MAX_HANDSHAKE_BYTES, MAX_MESSAGE_BYTES } from '../../plugin/systemd/stream-guard.js';

const { marshallMessage } = createRequire(import.meta.url)('dbus-next/lib/marshall-compat.js') as {
  marshallMessage: (m: dbus.Message) => [Buffer, unknown[]];
};

/** A message as dbus-next puts it on the wire. (Its types say replySerial is a string; its marshaller wants a number.) */
function wire(m: Record<string, unknown>, serial: number): Buffer {
  const msg = new dbus.Message(m as unknown as ConstructorParameters<typeof dbus.Message>[0]);
  msg.serial = serial;
  return marshallMessage(msg)[0];
}

/** What a bus sends a client: the handshake's OK, then a few messages like systemd's. */
const HANDSHAKE = Buffer.from('OK 0123456789abcdef0123456789abcdef\r\n', 'latin1');
const MESSAGES = Buffer.concat([
  wire({ type: dbus.MessageType.METHOD_RETURN, replySerial: 1, destination: ':1.7', sender: 'org.freedesktop.DBus', signature: 's', body: [':1.7'] }, 1),
  wire(
    {
      type: dbus.MessageType.SIGNAL,
      path: '/org/freedesktop/systemd1/unit/probe_2esocket',
      interface: 'org.freedesktop.DBus.Properties',
      member: 'PropertiesChanged',
      sender: ':1.0',
      signature: 'sa{sv}as',
      body: ['org.freedesktop.systemd1.Unit', { ActiveState: new dbus.Variant('s', 'failed') }, []],
    },
    2,
  ),
  wire({ type: dbus.MessageType.METHOD_RETURN, replySerial: 5, sender: ':1.0', signature: 'as', body: [Array.from({ length: 500 }, (_, i) => `u${i}.socket`)] }, 3),
  wire({ type: dbus.MessageType.ERROR, replySerial: 6, sender: ':1.0', errorName: 'org.freedesktop.DBus.Error.Failed', signature: 's', body: ['no'] }, 4),
]);

function header(bodyBytes: number, fieldsBytes = 8): Buffer {
  const h = Buffer.alloc(16);
  h.write('l', 0, 'latin1');
  h[1] = 2;
  h[3] = 1;
  h.writeUInt32LE(bodyBytes, 4);
  h.writeUInt32LE(9, 8);
  h.writeUInt32LE(fieldsBytes, 12);
  return h;
}

function feedAll(checker: FrameChecker, bytes: Buffer, sizes: () => number): string | undefined {
  for (let i = 0; i < bytes.length; ) {
    const n = Math.max(1, sizes());
    const problem = checker.feed(bytes.subarray(i, i + n));
    if (problem !== undefined) return problem;
    i += n;
  }
  return undefined;
}

describe('the frame checker', () => {
  it('passes a handshake and real messages whole, byte by byte, and in odd pieces', () => {
    const stream = Buffer.concat([HANDSHAKE, MESSAGES, MESSAGES]);
    expect(new FrameChecker().feed(stream)).toBeUndefined();
    expect(feedAll(new FrameChecker(), stream, () => 1)).toBeUndefined();
    let seed = 7;
    expect(feedAll(new FrameChecker(), stream, () => (seed = (seed * 48271) % 2147483647) % 97)).toBeUndefined();
  });

  it('passes the extra handshake line of unix fd negotiation', () => {
    expect(new FrameChecker(true).feed(Buffer.concat([HANDSHAKE, Buffer.from('AGREE_UNIX_FD\r\n'), MESSAGES]))).toBeUndefined();
  });

  it('says at once when the bytes after the handshake are not D-Bus', () => {
    const checker = new FrameChecker();
    expect(checker.feed(HANDSHAKE)).toBeUndefined();
    expect(checker.feed(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'))).toMatch(/^bytes that are not D-Bus/);
    // Between two real messages, too.
    const late = new FrameChecker();
    expect(late.feed(Buffer.concat([HANDSHAKE, MESSAGES]))).toBeUndefined();
    expect(late.feed(Buffer.alloc(64, 0xff))).toMatch(/^bytes that are not D-Bus/);
  });

  it('refuses a header announcing more than the cap, as soon as its 16 bytes are in, split or not', () => {
    const huge = Buffer.concat([HANDSHAKE, header(2 ** 31)]);
    expect(new FrameChecker().feed(huge)).toMatch(/announces a message of 2147483672 bytes \(over the 32 MiB a message may have\)/);
    expect(feedAll(new FrameChecker(), huge, () => 3)).toMatch(/announces a message of 2147483672 bytes/);
    // The cap itself is allowed: 16 + 8 bytes of fields + the body.
    expect(checkHeader(header(MAX_MESSAGE_BYTES - 24))).toEqual({ rest: MAX_MESSAGE_BYTES - 16 });
    expect(checkHeader(header(MAX_MESSAGE_BYTES - 23))).toHaveProperty('problem');
    expect(checkHeader(header(0, 0xffff_fff0))).toHaveProperty('problem');
  });

  it('refuses a header without header fields (dbus-next would wait for ever on it)', () => {
    expect(checkHeader(header(0, 0))).toEqual({ problem: 'a message header without header fields' });
  });

  it('bounds the handshake', () => {
    const checker = new FrameChecker();
    const line = Buffer.alloc(1024, 0x41);
    let problem: string | undefined;
    for (let i = 0; i < 64 && problem === undefined; i++) problem = checker.feed(line);
    expect(problem).toBe(`over ${MAX_HANDSHAKE_BYTES} bytes of handshake`);
  });
});

describe('the guard on a real socket', () => {
  /** A unix socket server that sends `bytes` to its client; returns the guarded client and the faults. */
  async function pair(bytes: Buffer): Promise<{ client: Socket; faults: string[]; closed: Promise<void> }> {
    const file = path.join(tmpdir(), `sdu-guard-${process.pid}-${Math.random().toString(36).slice(2)}.sock`);
    const server = createServer((s) => {
      s.on('error', () => {});
      s.write(bytes);
    });
    await new Promise<void>((r) => server.listen(file, r));
    const client = connect(file);
    const faults: string[] = [];
    guardSocket(client, (reason) => faults.push(reason));
    const closed = new Promise<void>((r) =>
      client.on('close', () => {
        server.close();
        rmSync(file, { force: true });
        r();
      }),
    );
    return { client, faults, closed };
  }

  it('destroys the socket on a header announcing 2 GiB, before the reader gets any of it', async () => {
    const p = await pair(Buffer.concat([HANDSHAKE, MESSAGES, header(2 ** 31), Buffer.alloc(4 << 20, 0x5a)]));
    let got = 0;
    p.client.on('readable', () => {
      for (let b: Buffer | null; (b = p.client.read() as Buffer | null) !== null; ) got += b.length;
    });
    await p.closed;
    expect(p.faults).toHaveLength(1);
    expect(p.faults[0]).toMatch(/^bad data on the connection: a message header that announces a message of 2147483672 bytes/);
    expect(got).toBeLessThanOrEqual(HANDSHAKE.length + MESSAGES.length);
  });

  it('turns a throw from the reader into one fault, not an uncaught exception', async () => {
    const p = await pair(Buffer.concat([HANDSHAKE, MESSAGES]));
    p.client.on('readable', () => {
      p.client.read();
      throw new RangeError('Unknown type: "\u001b[31m\ufffd\t" in signature');
    });
    await p.closed;
    // The library quotes the bytes it choked on: the line keeps none of them raw.
    expect(p.faults).toEqual(['cannot decode a message from the bus: Unknown type: "?[31m??" in signature']);
  });
});
