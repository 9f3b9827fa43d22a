// A D-Bus client of the sandbox's systemd and dbus-daemon, for tests that need more than systemctl
// gives in reasonable time: thousands of transient units (the calls systemd-run makes, without a
// process per unit), the bus daemon's own statistics (match rules per connection), job queue state.
import dbus from 'dbus-next';
import { until } from './wait.js';

const SYSTEMD = 'org.freedesktop.systemd1';
const MANAGER_PATH = '/org/freedesktop/systemd1';
const MANAGER = 'org.freedesktop.systemd1.Manager';

export class SystemdClient {
  private readonly bus: dbus.MessageBus;

  private constructor(address: string) {
    this.bus = dbus.sessionBus({ busAddress: address });
    this.bus.on('error', () => {}); // the tests restart the bus under it
  }

  static async connect(address: string): Promise<SystemdClient> {
    const c = new SystemdClient(address);
    await new Promise<void>((resolve, reject) => {
      c.bus.once('connect', () => resolve());
      c.bus.once('error', reject);
    });
    return c;
  }

  close(): void {
    try {
      this.bus.disconnect();
    } catch {
      // gone already
    }
  }

  async call(destination: string, path: string, iface: string, member: string, signature = '', body: unknown[] = []): Promise<unknown[]> {
    const reply = await this.bus.call(new dbus.Message({ destination, path, interface: iface, member, signature, body }));
    return reply?.body ?? [];
  }

  private manager(member: string, signature = '', body: unknown[] = []): Promise<unknown[]> {
    return this.call(SYSTEMD, MANAGER_PATH, MANAGER, member, signature, body);
  }

  /**
   * Creates transient timer units NAME.timer (each with its transient NAME.service), as
   * `systemd-run --on-active=1d --unit=NAME true` does: two transient units each, no process.
   */
  async startTransientTimers(names: readonly string[], concurrency = 8): Promise<void> {
    await this.inBatches(names, concurrency, (name) =>
      this.manager('StartTransientUnit', 'ssa(sv)a(sa(sv))', [
        `${name}.timer`,
        'fail',
        [['OnActiveSec', new dbus.Variant('t', 86_400_000_000n)]],
        [[`${name}.service`, [['ExecStart', new dbus.Variant('a(sasb)', [['/bin/true', ['/bin/true'], false]])]]]],
      ]),
    );
  }

  /** Starts or stops units by name (one job each), `concurrency` calls at a time. */
  async unitJobs(method: 'StartUnit' | 'StopUnit', units: readonly string[], concurrency = 8): Promise<void> {
    await this.inBatches(units, concurrency, (u) => this.manager(method, 'ss', [u, 'replace']));
  }

  /**
   * Runs calls in batches and lets systemd's job queue drain after each: systemd tracks the
   * client of every queued job with a match rule of its own, and past dbus-daemon's 512 rules
   * per connection it is thrown off the bus (seen here with ~1000 StopUnit calls in a row).
   */
  private async inBatches<T>(items: readonly T[], concurrency: number, one: (item: T) => Promise<unknown>, batch = 200): Promise<void> {
    for (let start = 0; start < items.length; start += batch) {
      const slice = items.slice(start, start + batch);
      let i = 0;
      const worker = async (): Promise<void> => {
        while (i < slice.length) await one(slice[i++]!);
      };
      await Promise.all(Array.from({ length: concurrency }, worker));
      await this.jobsDone();
    }
  }

  /** Waits until systemd has no job queued or running. */
  async jobsDone(timeoutMs = 60_000): Promise<void> {
    await until('systemd to have no job', async () => {
      const [jobs] = await this.manager('ListJobs');
      return !Array.isArray(jobs) || jobs.length === 0;
    }, { timeoutMs, everyMs: 20 });
  }

  /** Names of loaded units matching the globs (ListUnitsByPatterns). */
  async listUnitNames(patterns: string[]): Promise<string[]> {
    const [rows] = await this.manager('ListUnitsByPatterns', 'asas', [[], patterns]);
    return (rows as unknown[][]).map((r) => String(r[0]));
  }

  /** dbus-daemon's match rules, by connection (org.freedesktop.DBus.Debug.Stats, root only). */
  async matchRules(): Promise<Map<string, string[]>> {
    const [rules] = await this.call('org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus.Debug.Stats', 'GetAllMatchRules');
    return new Map(Object.entries(rules as Record<string, string[]>));
  }
}

/** Connections holding the plugin's unit-signal rule (no other client here uses path_namespace on units). */
export async function pluginMatchRules(client: SystemdClient): Promise<Map<string, string[]>> {
  const all = await client.matchRules();
  return new Map([...all].filter(([, rules]) => rules.some((r) => r.includes("path_namespace='/org/freedesktop/systemd1/unit'"))));
}

/** The unique name of the one plugin connected to the bus at `address`, as an attacker would find it (ListNames; here: its match rules). */
export async function pluginUniqueName(address: string): Promise<string> {
  const client = await SystemdClient.connect(address);
  try {
    const names = [...(await pluginMatchRules(client)).keys()];
    if (names.length !== 1) throw new Error(`expected one plugin connection, got ${names.join(', ')}`);
    return names[0]!;
  } finally {
    client.close();
  }
}
