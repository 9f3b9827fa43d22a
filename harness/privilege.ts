// Least privilege, observed from outside the plugin: every D-Bus message it sends (a monitoring
// connection on the sandbox's bus), every process and file syscall it makes (strace), and its
// credentials (/proc/PID/status).
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import dbus from 'dbus-next';

/**
 * The D-Bus methods the plugin may call, as `destination interface.member`. All read-only, and none
 * that loads a unit as a side effect (ListUnitsByNames, LoadUnit: see shared notes).
 */
export const ALLOWED_CALLS: ReadonlySet<string> = new Set([
  'org.freedesktop.DBus org.freedesktop.DBus.Hello',
  'org.freedesktop.DBus org.freedesktop.DBus.AddMatch',
  'org.freedesktop.DBus org.freedesktop.DBus.RemoveMatch',
  'org.freedesktop.DBus org.freedesktop.DBus.NameHasOwner',
  'org.freedesktop.DBus org.freedesktop.DBus.GetNameOwner',
  // who sent a forged signal, asked once per report (senders.ts)
  'org.freedesktop.DBus org.freedesktop.DBus.GetConnectionUnixUser',
  'org.freedesktop.DBus org.freedesktop.DBus.GetConnectionUnixProcessID',
  'org.freedesktop.DBus org.freedesktop.DBus.Peer.Ping',
  'org.freedesktop.systemd1 org.freedesktop.systemd1.Manager.Subscribe',
  'org.freedesktop.systemd1 org.freedesktop.systemd1.Manager.ListUnits',
  'org.freedesktop.systemd1 org.freedesktop.systemd1.Manager.ListUnitsFiltered',
  'org.freedesktop.systemd1 org.freedesktop.systemd1.Manager.ListUnitsByPatterns',
  'org.freedesktop.systemd1 org.freedesktop.systemd1.Manager.ListUnitFilesByPatterns',
  'org.freedesktop.systemd1 org.freedesktop.systemd1.Manager.GetUnit',
  'org.freedesktop.systemd1 org.freedesktop.DBus.Properties.Get',
  'org.freedesktop.systemd1 org.freedesktop.DBus.Properties.GetAll',
  'org.freedesktop.systemd1 org.freedesktop.DBus.Peer.Ping',
]);

export interface BusMessage {
  type: 'method_call' | 'method_return' | 'error' | 'signal';
  sender?: string;
  destination?: string;
  path?: string;
  interface?: string;
  member?: string;
  payload?: { type: string; data: unknown[] };
}

/**
 * `busctl monitor` (BecomeMonitor) on a bus, as root: records every message on it. The uid of each
 * sender is asked of the bus as soon as it is first seen, over one connection of our own (a new
 * connection per question would itself be a new sender to ask about).
 */
export class BusMonitor {
  readonly messages: BusMessage[] = [];
  /** unique name → uid (undefined when it left before we could ask) */
  readonly uids = new Map<string, number | undefined>();
  private readonly proc: ChildProcessWithoutNullStreams;
  private readonly asker: dbus.MessageBus;
  private readonly pending: Promise<void>[] = [];
  private partial = '';
  private stderr = '';
  readonly ready: Promise<void>;

  constructor(readonly address: string) {
    this.asker = dbus.sessionBus({ busAddress: address });
    this.asker.on('error', () => {});
    this.proc = spawn('busctl', [`--address=${address}`, 'monitor', '--json=short'], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc.stdout.setEncoding('utf8').on('data', (d: string) => this.onData(d));
    this.ready = new Promise((resolve, reject) => {
      this.proc.stderr.setEncoding('utf8').on('data', (d: string) => {
        this.stderr += d;
        if (this.stderr.includes('Monitoring bus message stream')) resolve();
      });
      this.proc.on('exit', (code) => reject(new Error(`busctl monitor exited (${code}): ${this.stderr}`)));
    });
  }

  /** Stops monitoring (SIGINT makes busctl flush what it has) and waits for the uid answers. */
  async stop(): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      const exited = new Promise((r) => this.proc.once('exit', r));
      this.proc.kill('SIGINT');
      const t = setTimeout(() => this.proc.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
    }
    await Promise.all(this.pending);
    this.asker.disconnect();
  }

  /** What senders with this uid sent. */
  sentBy(uid: number): BusMessage[] {
    return this.messages.filter((m) => m.sender !== undefined && this.uids.get(m.sender) === uid);
  }

  private onData(d: string): void {
    const lines = (this.partial + d).split('\n');
    this.partial = lines.pop() ?? '';
    for (const line of lines) {
      if (line.trim() === '') continue;
      const m = JSON.parse(line) as BusMessage;
      this.messages.push(m);
      const s = m.sender;
      if (s?.startsWith(':') && !this.uids.has(s) && s !== (this.asker as unknown as { name?: string }).name) {
        this.uids.set(s, undefined);
        this.pending.push(this.askUid(s));
      }
    }
  }

  private async askUid(name: string): Promise<void> {
    try {
      const reply = await this.asker.call(
        new dbus.Message({
          destination: 'org.freedesktop.DBus',
          path: '/org/freedesktop/DBus',
          interface: 'org.freedesktop.DBus',
          member: 'GetConnectionUnixUser',
          signature: 's',
          body: [name],
        }),
      );
      this.uids.set(name, Number(reply?.body[0]));
    } catch {
      // gone already: a short-lived client (systemctl), never the plugin's long-lived connection
    }
  }
}

/** `destination interface.member` of each method call, for comparison with ALLOWED_CALLS. */
export function callName(m: BusMessage): string {
  return `${m.destination} ${m.interface}.${m.member}`;
}

// ---------------------------------------------------------------------------------------------
// strace

export interface Syscall {
  pid: number;
  name: string;
  /** the text inside the parentheses (possibly cut at `<unfinished ...>`) */
  args: string;
  /** the result after ` = `, when on the same line */
  result?: string;
}

/** Parses `strace -f` output (pid-prefixed). Resumed halves and signal lines are skipped. */
export function parseStrace(text: string): Syscall[] {
  const out: Syscall[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\d+)\s+(\w+)\((.*)$/.exec(line);
    if (!m) continue;
    const rest = m[3]!;
    const eq = rest.lastIndexOf(') = ');
    out.push({ pid: Number(m[1]), name: m[2]!, args: eq >= 0 ? rest.slice(0, eq) : rest.replace(/ <unfinished \.\.\.>$/, ''), result: eq >= 0 ? rest.slice(eq + 4) : undefined });
  }
  return out;
}

/** Calls that create a process (not a thread) or run a program. */
export function processCreations(calls: readonly Syscall[]): Syscall[] {
  return calls.filter(
    (c) => c.name === 'fork' || c.name === 'vfork' || c.name === 'execve' || c.name === 'execveat' || ((c.name === 'clone' || c.name === 'clone3') && !c.args.includes('CLONE_THREAD')),
  );
}

/** Every absolute path named in a file or connect syscall (sun_path included). */
export function pathsNamed(calls: readonly Syscall[]): { path: string; call: Syscall }[] {
  const out: { path: string; call: Syscall }[] = [];
  for (const c of calls) {
    for (const m of c.args.matchAll(/"((?:[^"\\]|\\.)*)"/g)) {
      const p = m[1]!;
      if (p.startsWith('/')) out.push({ path: p, call: c });
    }
  }
  return out;
}

export interface FileRules {
  /** the directory holding the launcher and its dist/ and node_modules/ (from the plugin's argv) */
  pluginDir: string;
  /** the node binary the launcher runs */
  node: string;
  env: { NETDATA_USER_CONFIG_DIR: string; NETDATA_STOCK_CONFIG_DIR: string; HOME: string; DBUS_SYSTEM_BUS_ADDRESS: string };
  cwd: string;
}

/**
 * Why the plugin may touch this path, or undefined when nothing allows it. The plugin's own files
 * come from its argv (the entry script, and module resolution from there up); the config and the
 * bus from the agent's environment; the rest is the Node runtime starting (loader, libraries,
 * OpenSSL's config, heap sizing from /proc and cgroups).
 */
export function whyAllowed(p: string, r: FileRules): string | undefined {
  const under = (dir: string) => p === dir || p.startsWith(dir.endsWith('/') ? dir : `${dir}/`);
  if (p === path.join(r.env.NETDATA_USER_CONFIG_DIR, 'systemdunits.conf') || p === path.join(r.env.NETDATA_STOCK_CONFIG_DIR, 'systemdunits.conf')) return 'config (agent env)';
  if (`unix:path=${p}` === r.env.DBUS_SYSTEM_BUS_ADDRESS) return 'bus (agent env)';
  if (under(r.pluginDir)) return 'own code (argv)';
  if (r.pluginDir.startsWith(p.endsWith('/') ? p : `${p}/`)) return 'real path of the entry script (argv)';
  for (let dir = path.dirname(r.pluginDir); ; dir = path.dirname(dir)) {
    if (p === path.join(dir, 'node_modules') || p === path.join(dir, 'package.json')) return 'module resolution (argv)';
    if (dir === '/') break;
  }
  if (p === path.join(r.env.HOME, '.node_modules') || p === path.join(r.env.HOME, '.node_libraries')) return 'module resolution (HOME)';
  if (p === r.cwd) return 'working directory';
  if (p === r.node || p === '/usr/lib/node' || p === '/proc/self/exe') return 'node runtime';
  if (['/etc/ld.so.cache', '/etc/ld.so.preload'].includes(p) || under('/lib') || under('/lib64') || under('/usr/lib/x86_64-linux-gnu') || under('/usr/lib/aarch64-linux-gnu')) return 'dynamic loader';
  if (p === '/etc/ssl/openssl.cnf' || under('/usr/lib/ssl')) return 'node runtime (OpenSSL config)';
  if (['/proc/self/maps', '/proc/self/cgroup', '/proc/self/stat', '/proc/meminfo', '/proc/sys/vm/overcommit_memory', '/dev/null', '/dev/urandom'].includes(p)) return 'node runtime';
  if (under('/sys/fs/cgroup') || under('/sys/devices/system/cpu')) return 'node runtime (memory and CPU limits)';
  // stderr lines carry the local time, as the agent's own log lines do: ICU resolves the zone once,
  // reading /etc/localtime's link (each component of its real path) and the zone file.
  if (p === '/etc/localtime' || under('/usr/share/zoneinfo') || ['/etc', '/usr', '/usr/share'].includes(p)) return 'time zone (stderr timestamps)';
  return undefined;
}

export interface Credentials {
  uid: string[];
  gid: string[];
  capInh: string;
  capPrm: string;
  capEff: string;
  capAmb: string;
  noNewPrivs: string;
}

export async function credentials(pid: number): Promise<Credentials> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8');
  const f = (k: string) => new RegExp(`^${k}:\\s*(.*)$`, 'm').exec(text)?.[1]?.trim() ?? '';
  return {
    uid: f('Uid').split(/\s+/),
    gid: f('Gid').split(/\s+/),
    capInh: f('CapInh'),
    capPrm: f('CapPrm'),
    capEff: f('CapEff'),
    capAmb: f('CapAmb'),
    noNewPrivs: f('NoNewPrivs'),
  };
}

/** The ids and capability sets of a process, in the shape `unprivileged` describes. */
export function idsAndCapabilities(c: Credentials): { uid: string[]; gid: string[]; caps: Record<'inh' | 'prm' | 'eff' | 'amb', string> } {
  return { uid: c.uid, gid: c.gid, caps: { inh: c.capInh, prm: c.capPrm, eff: c.capEff, amb: c.capAmb } };
}

/** A process running as uid/gid (real, effective, saved and filesystem ids) with no capability at all. */
export function unprivileged(uid: string, gid: string): ReturnType<typeof idsAndCapabilities> {
  const none = '0000000000000000';
  return { uid: [uid, uid, uid, uid], gid: [gid, gid, gid, gid], caps: { inh: none, prm: none, eff: none, amb: none } };
}

/** Direct children of a process (every thread's). */
export async function childrenOf(pid: number): Promise<number[]> {
  const { readdir } = await import('node:fs/promises');
  const kids: number[] = [];
  for (const tid of await readdir(`/proc/${pid}/task`).catch(() => [] as string[])) {
    const text = await readFile(`/proc/${pid}/task/${tid}/children`, 'utf8').catch(() => '');
    kids.push(...text.split(/\s+/).filter((x) => x !== '').map(Number));
  }
  return kids;
}
