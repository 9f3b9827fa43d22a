// A fault proxy between a client (the plugin) and the real, sandboxed dbus-daemon: a unix socket
// that forwards each connection to the daemon byte for byte and, on command, breaks the connections
// open at that moment the way a bus connection turns bad mid-run: garbage bytes, or a message
// header announcing an absurd body, injected into the stream towards the client (at a message
// boundary, so the client takes them for the start of a message), or forwarding frozen both ways
// with both sockets kept open. Connections made after the command are forwarded faithfully: a
// client that drops the bad connection and opens a new one gets a working bus.
import { rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';

/** A D-Bus message header (little-endian) announcing `bodyBytes` of body after 8 bytes of fields. */
export function headerAnnouncing(bodyBytes: number): Buffer {
  const h = Buffer.alloc(16);
  h.write('l', 0, 'latin1'); // little-endian
  h[1] = 2; // METHOD_RETURN
  h[3] = 1; // protocol version
  h.writeUInt32LE(bodyBytes, 4);
  h.writeUInt32LE(0x7fff_fff0, 8); // serial
  h.writeUInt32LE(8, 12); // header fields
  return h;
}

/** One client connection and its connection to the daemon. */
class Link {
  /** The client has sent BEGIN: from then on every byte from the daemon belongs to a message. */
  begun = false;
  frozen = false;
  /** The stream towards the client now carries an injected message: the daemon's is not forwarded. */
  private hijacked = false;
  private clientTail = '';
  /** A message header from the daemon being read, and the bytes left of the current message. */
  private header = Buffer.alloc(0);
  private left = 0;
  /** Injections waiting for the end of the message under way. */
  private waiting: { bytes: Buffer; fillerBytes: number }[] = [];

  constructor(
    readonly client: Socket,
    readonly daemon: Socket,
    private readonly onBegin: (link: Link) => void,
  ) {
    client.on('data', (d: Buffer) => this.fromClient(d));
    daemon.on('data', (d: Buffer) => this.fromDaemon(d));
    const end = () => {
      client.destroy();
      daemon.destroy();
    };
    for (const s of [client, daemon]) {
      s.on('error', end);
      s.on('close', end);
    }
  }

  get open(): boolean {
    return !this.client.destroyed;
  }

  /** Writes `bytes` to the client at the next message boundary, then `fillerBytes` of filler (if any) instead of the daemon's messages. */
  inject(bytes: Buffer, fillerBytes = 0): void {
    this.waiting.push({ bytes, fillerBytes });
    if (this.atBoundary()) this.flush();
  }

  freeze(): void {
    this.frozen = true;
    this.client.pause();
    this.daemon.pause();
  }

  private fromClient(d: Buffer): void {
    if (this.frozen) return;
    if (!this.begun) {
      const text = this.clientTail + d.toString('latin1');
      this.begun = text.includes('BEGIN\r\n');
      this.clientTail = text.slice(-8);
      if (this.begun) this.onBegin(this);
    }
    this.daemon.write(d);
  }

  private fromDaemon(d: Buffer): void {
    if (this.frozen || this.hijacked) return;
    if (!this.begun) return void this.client.write(d); // the handshake's lines
    let i = 0;
    while (i < d.length) {
      if (this.atBoundary()) {
        this.flush();
        if (this.hijacked) return;
      }
      if (this.left > 0) {
        const n = Math.min(this.left, d.length - i);
        this.client.write(d.subarray(i, i + n));
        this.left -= n;
        i += n;
        continue;
      }
      const part = d.subarray(i, i + 16 - this.header.length);
      this.header = Buffer.concat([this.header, part]);
      this.client.write(part);
      i += part.length;
      if (this.header.length === 16) {
        const le = this.header[0] === 0x6c;
        const body = le ? this.header.readUInt32LE(4) : this.header.readUInt32BE(4);
        const fields = le ? this.header.readUInt32LE(12) : this.header.readUInt32BE(12);
        this.left = ((fields + 7) & ~7) + body;
        this.header = Buffer.alloc(0);
      }
    }
    if (this.atBoundary()) this.flush();
  }

  private atBoundary(): boolean {
    return this.begun && this.left === 0 && this.header.length === 0;
  }

  private flush(): void {
    for (const { bytes, fillerBytes } of this.waiting.splice(0)) {
      this.client.write(bytes);
      if (fillerBytes > 0) {
        this.hijacked = true;
        void this.fill(fillerBytes);
      }
    }
  }

  /** Writes filler as fast as the client reads it, until done or the client hangs up. */
  private async fill(total: number): Promise<void> {
    const chunk = Buffer.alloc(1 << 20, 0x5a);
    for (let sent = 0; sent < total && this.open; sent += chunk.length) {
      const piece = chunk.subarray(0, Math.min(chunk.length, total - sent));
      if (!this.client.write(piece)) {
        await new Promise<void>((resolve) => {
          const done = (): void => {
            this.client.off('drain', done).off('close', done);
            resolve();
          };
          this.client.on('drain', done).on('close', done);
        });
      }
    }
  }
}

export class BusProxy {
  /** Connections accepted so far. */
  opened = 0;
  private readonly links = new Set<Link>();
  /** Applied to every connection made from now on, `afterMs` after its handshake. */
  private breakNew: { afterMs: number; bytes: Buffer } | undefined;

  private constructor(
    private readonly server: Server,
    /** Where clients connect: a unix:path= address. */
    readonly address: string,
  ) {}

  /** Listens on `listenPath` and forwards to the daemon's socket at `daemonPath`. */
  static async start(daemonPath: string, listenPath: string): Promise<BusProxy> {
    rmSync(listenPath, { force: true });
    let proxy: BusProxy | undefined;
    const server = createServer((client) => {
      proxy!.opened++;
      const link = new Link(client, connect(daemonPath), (l) => {
        const rule = proxy!.breakNew;
        if (rule) setTimeout(() => l.open && l.inject(rule.bytes), rule.afterMs);
      });
      proxy!.links.add(link);
      client.on('close', () => proxy!.links.delete(link));
    });
    proxy = new BusProxy(server, `unix:path=${listenPath}`);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(listenPath, resolve);
    });
    return proxy;
  }

  /** Connections open now that have finished their handshake. */
  private current(): Link[] {
    const links = [...this.links].filter((l) => l.open && l.begun && !l.frozen);
    if (links.length === 0) throw new Error('no proxied connection to break');
    return links;
  }

  /** Injects `bytes` towards each current client, at a message boundary. */
  injectGarbage(bytes: Buffer): void {
    for (const l of this.current()) l.inject(bytes);
  }

  /** Injects a header announcing a body of `bodyBytes`, then `fillerBytes` of filler in place of the daemon's messages. */
  injectHeader(bodyBytes: number, fillerBytes = 0): void {
    for (const l of this.current()) l.inject(headerAnnouncing(bodyBytes), fillerBytes);
  }

  /** From now on, injects `bytes` into every new connection `afterMs` after its handshake: a bus that keeps breaking. */
  breakEveryNewConnection(afterMs: number, bytes: Buffer): void {
    this.breakNew = { afterMs, bytes };
  }

  /** Stops forwarding both ways on the current connections, keeping their sockets open. */
  freeze(): void {
    for (const l of this.current()) l.freeze();
  }

  async close(): Promise<void> {
    for (const l of this.links) {
      l.client.destroy();
      l.daemon.destroy();
    }
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
