// Per-connection instances of Accept=yes sockets, told apart from ordinary template instances.
//
// A socket with Accept=yes starts one instance of its template service for every connection, named
// by systemd's instance_from_socket() (src/core/socket.c):
//   systemd up to 256-ish   N-LOCAL:PORT-REMOTE:PORT   (IPv4, IPv6 or AF_VSOCK CID:PORT)
//                           N-PID-UID | N-unknown       (AF_UNIX: the peer's credentials)
//   newer systemd           the same with the socket cookie after N: N-COOKIE-…, and PID_PIDFDID
//   very old systemd        N-A.B.C.D-PORT-A.B.C.D-PORT
// N is the socket's connection counter. Only names of that shape are aggregated: `getty@tty1`,
// `user@1000`, `systemd-fsck@dev-sda1`, `openvpn@office` are instances an operator started on
// purpose and keep their own dimension. A hand-made instance that happens to look like
// `7-1234-1000` would be aggregated too; that is the price of not asking systemd per unit
// (which socket spawned it is not a property of the service).

/** The instance part of a per-connection name (chars systemd never escapes, so raw names work). */
const PER_CONNECTION = new RegExp(
  '^\\d+-(?:\\d+-)?' + // connection number, then the socket cookie on newer systemd
    '(?:' +
    'unknown' + // AF_UNIX peer from another namespace
    '|\\d+(?:_\\d+)?-\\d+' + // AF_UNIX: PID[_PIDFDID]-UID
    '|[0-9A-Fa-f.:]*:\\d+-[0-9A-Fa-f.:]*:\\d+' + // IPv4 / IPv6 / vsock ADDR:PORT-ADDR:PORT
    '|\\d+\\.\\d+\\.\\d+\\.\\d+-\\d+-\\d+\\.\\d+\\.\\d+\\.\\d+-\\d+' + // very old systemd
    ')$',
);

export interface InstanceGroup {
  /** What the group's dimension is called: `foo@*.service`. No unit name contains `*`. */
  readonly key: string;
  /** The Accept=yes socket that spawns these instances: `foo.socket`. */
  readonly socket: string;
}

/**
 * The group of a per-connection instance (`foo@3-127.0.0.1:80-127.0.0.1:5566.service` →
 * `foo@*.service`, socket `foo.socket`), or undefined for any other unit name.
 */
export function perConnectionGroup(name: string): InstanceGroup | undefined {
  const at = name.indexOf('@');
  if (at <= 0) return undefined;
  const dot = name.lastIndexOf('.');
  if (dot < at + 2) return undefined;
  if (!PER_CONNECTION.test(name.slice(at + 1, dot))) return undefined;
  const prefix = name.slice(0, at);
  return { key: `${prefix}@*${name.slice(dot)}`, socket: `${prefix}.socket` };
}

/**
 * perConnectionGroup of a unit of the model, which works it out once, as the unit enters: writers
 * ask on every change of the table's membership, for every unit (10,000 calls a time at 10,000 units).
 */
export function instanceGroupOf(unit: { readonly instanceGroup: InstanceGroup | null }): InstanceGroup | undefined {
  return unit.instanceGroup ?? undefined;
}
