// Issue 10, item 4, through the real plugin process: config files that ate memory or hung the
// plugin. A file that is no config (a device, a FIFO, 100 MB) is refused like any unreadable
// config: one stderr line naming it, DISABLE, exit 0, at once. A pattern whose stars made the old
// RegExp backtrack for good now charts real systemd units, and SIGTERM still ends the plugin
// within 1 s.
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PluginRun } from '../../harness/plugin.js';
import { startSandbox, type Sandbox } from '../../harness/sandbox.js';
import { writeSocket } from '../../harness/units.js';

const made: string[] = [];
afterAll(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sdu-hostile-'));
  made.push(dir);
  return dir;
}

async function exited(run: PluginRun, withinMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }> {
  const t0 = Date.now();
  const r = await Promise.race([run.exit, new Promise<undefined>((res) => setTimeout(res, withinMs))]);
  if (!r) {
    await run.stop();
    throw new Error(`plugin still running after ${withinMs} ms; stderr:\n${run.stderr}`);
  }
  return { code: r.code, signal: r.signal, ms: Date.now() - t0 };
}

describe('a config file that is no config', () => {
  // The bus leads nowhere: a plugin that got past the config would say "cannot reach the system bus".
  const NO_BUS = { DBUS_SYSTEM_BUS_ADDRESS: 'unix:path=/nonexistent/bus' };

  async function refused(args: string[], env: NodeJS.ProcessEnv, file: string, reason: string): Promise<void> {
    const run = new PluginRun(args, { ...NO_BUS, ...env });
    // Generous: the machine may be busy; the old plugin never got there at all.
    const { code } = await exited(run, 10_000);
    expect(code).toBe(0);
    expect(run.lines.filter((l) => l !== '')).toEqual(['DISABLE']);
    expect(run.stderr).toBe(`systemdunits.plugin: ${file}: ${reason}; disabling the plugin\n`);
  }

  it('/dev/zero named with --config', async () => {
    await refused(['1', '--config', '/dev/zero'], {}, '/dev/zero', 'cannot read the config (a character device, not a regular file)');
  });

  it('a FIFO where the agent looks, with no writer', async () => {
    const dir = tempDir();
    const fifo = join(dir, 'systemdunits.conf');
    execFileSync('mkfifo', [fifo]);
    await refused(['1'], { NETDATA_USER_CONFIG_DIR: dir }, fifo, 'cannot read the config (a FIFO, not a regular file)');
  });

  it('100 MB of valid YAML', async () => {
    const dir = tempDir();
    const file = join(dir, 'systemdunits.conf');
    const fd = openSync(file, 'w');
    writeSync(fd, 'jobs:\n');
    const chunk = Buffer.from(Array.from({ length: 10_000 }, (_, i) => `  - name: j${i}\n    include: ['*.service']\n`).join(''));
    let size = 6;
    for (; size + chunk.length <= 100 * 1024 * 1024; size += chunk.length) writeSync(fd, chunk);
    closeSync(fd);
    await refused(['1'], { NETDATA_USER_CONFIG_DIR: dir }, file, `refusing the config (${size} bytes, over the 32 KiB limit: a config is a few KB)`);
  });
});

describe("issue 10's star pattern against real systemd", () => {
  let sb: Sandbox;
  let run: PluginRun | undefined;

  beforeAll(async () => {
    sb = await startSandbox();
    await writeSocket(sb, 'alpha');
    await writeSocket(sb, 'gamma');
    await sb.daemonReload();
    await sb.execOk('systemctl', 'start', 'alpha.socket', 'gamma.service');
  });
  afterAll(async () => {
    await run?.stop();
    await sb?.stop({ removeDir: true });
  });

  it('charts the units it selects, says nothing, and exits within 1 s of SIGTERM', async () => {
    const dir = tempDir();
    // Every unit name is tested against the star pattern first (the old RegExp: 21 × `.*`).
    writeFileSync(join(dir, 'systemdunits.conf'), `jobs:\n  - name: stars\n    include: ['*********************a.service', '*.socket']\n`);
    run = new PluginRun(['1'], { DBUS_SYSTEM_BUS_ADDRESS: sb.busAddress, NETDATA_USER_CONFIG_DIR: dir });
    await run.waitForValue('systemdunits_stars.service_unit_state', 'gamma.service', 1, 20_000);
    await run.waitForValue('systemdunits_stars.socket_unit_state', 'alpha.socket', 1);
    // Only services whose names end in `a.service`.
    const services = run.charts.get('systemdunits_stars.service_unit_state')!;
    expect([...services.dims.keys()].filter((d) => !d.endsWith('a.service'))).toEqual([]);
    // Charts keep coming: the event loop is free.
    await run.nextSample('systemdunits_stars.socket_unit_state');
    run.child.kill('SIGTERM');
    const { code, signal, ms } = await exited(run, 3000);
    // Ended by the signal itself, which agents count as a clean end (see main.ts).
    expect({ code, signal }).toEqual({ code: null, signal: 'SIGTERM' });
    expect(ms).toBeLessThan(1000);
    expect(run.stderr).toBe('');
  });
});
