// Least privilege, against real systemd: the plugin runs as the unprivileged `netdata` user, the
// way the agent runs it (its environment, a bus that user can open), under strace from its first
// instruction, while a monitoring connection records every message on the sandbox's bus.
//  - Every method it calls through start-up, steady state, a daemon-reload, a daemon-reexec and a
//    unit failure is on the read-only allowlist; it emits no signals.
//  - It holds no capability and runs with netdata's uid and gid.
//  - The same when it reconnects after dbus was stopped and started.
//  - Through those and more faults (dbus down, systemd frozen), it creates no process: the
//    launcher execs node, node never forks or execs.
//  - Every file it opens or looks at is named by its argv (its own code), the agent's
//    environment (the config dirs, the bus address, HOME), or is the Node runtime starting.
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PluginRun } from '../../harness/plugin.js';
import {
  ALLOWED_CALLS,
  BusMonitor,
  callName,
  childrenOf,
  credentials,
  idsAndCapabilities,
  parseStrace,
  pathsNamed,
  processCreations,
  unprivileged,
  whyAllowed,
  type BusMessage,
} from '../../harness/privilege.js';
import { repoRoot, run as runCmd } from '../../harness/run.js';
import { SANDBOX_BASE, startSandbox, type Sandbox } from '../../harness/sandbox.js';
import { sleep, until } from '../../harness/wait.js';
import { failSocket, recoverSocket, startSockets, writeSocket } from '../../harness/units.js';

const SOCKETS = 'systemdunits_sockets.socket_unit_state';

let sb: Sandbox;
let plugin: PluginRun | undefined;
let monitor: BusMonitor | undefined;
let netdataUid: number;
let netdataGid: number;
let dir: string;
let env: { NETDATA_USER_CONFIG_DIR: string; NETDATA_STOCK_CONFIG_DIR: string; HOME: string; DBUS_SYSTEM_BUS_ADDRESS: string };
let traceFile: string;
let pluginPid: number;
let sent: BusMessage[] = [];
let stopped: { code: number | null } | undefined;

async function pluginProcess(stracePid: number): Promise<number> {
  // strace -u forks the traced command; the launcher then execs node in that same process.
  return until('the node process under strace', async () => {
    const [kid] = await childrenOf(stracePid);
    if (kid === undefined) return undefined;
    const exe = await readFile(`/proc/${kid}/cmdline`, 'utf8').catch(() => '');
    return exe.includes('dist/systemdunits.mjs') ? kid : undefined;
  }, { timeoutMs: 5000 });
}

beforeAll(async () => {
  netdataUid = Number((await runCmd('id', ['-u', 'netdata'])).stdout.trim());
  netdataGid = Number((await runCmd('id', ['-g', 'netdata'])).stdout.trim());
  sb = await startSandbox();
  for (const name of ['alpha', 'flappy']) {
    await writeSocket(sb, name);
    // They fail and restart more often than systemd's default start limit allows.
    await sb.writeUnit(`${name}.socket.d/no-start-limit.conf`, '[Unit]\nStartLimitIntervalSec=0\n');
  }
  await sb.daemonReload();
  await sb.execOk('systemctl', 'start', 'alpha.socket', 'flappy.socket');
  const bus = await sb.expose();

  // The agent's directories as the plugin sees them: readable by netdata, outside the checkout.
  dir = await mkdtemp(path.join(SANDBOX_BASE, 'privilege-'));
  await chmod(dir, 0o755);
  const user = path.join(dir, 'etc');
  const stock = path.join(dir, 'stock');
  await mkdir(user, { mode: 0o755 });
  await mkdir(stock, { mode: 0o755 });
  await writeFile(path.join(user, 'systemdunits.conf'), "jobs:\n  - name: sockets\n    include: ['*.socket']\n", { mode: 0o644 });
  env = { NETDATA_USER_CONFIG_DIR: user, NETDATA_STOCK_CONFIG_DIR: stock, HOME: path.join(dir, 'home'), DBUS_SYSTEM_BUS_ADDRESS: bus };

  monitor = new BusMonitor(sb.busAddress);
  await monitor.ready;
  traceFile = path.join(dir, 'strace.txt');
  plugin = new PluginRun(
    ['1'],
    { ...env, LC_ALL: 'C', NETDATA_UPDATE_EVERY: '1' },
    { cleanEnv: true, prefix: ['strace', '-f', '-qq', '-s', '4096', '-o', traceFile, '-e', 'trace=%process,%file,connect', '-u', 'netdata', '--'] },
  );
  pluginPid = await pluginProcess(plugin.child.pid!);
  await plugin.waitFor('the first sample', () => plugin!.samplesOf(SOCKETS).length > 0, 30_000);
}, 120_000);

afterAll(async () => {
  await monitor?.stop().catch(() => {});
  await plugin?.stop();
  await sb?.stop({ removeDir: true });
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('on the bus', () => {
  it('calls only read-only methods through start-up, steady state, daemon-reload, reexec and a unit failure', async () => {
    const p = plugin!;
    // Steady state: two more samples, each with the calls the plugin makes per interval.
    await p.nextSample(SOCKETS, 10_000);
    await p.nextSample(SOCKETS, 10_000);
    await startSockets(sb, ['newcomer']);
    await p.waitForValue(SOCKETS, 'newcomer.socket', 1, 30_000);
    await failSocket(sb, 'flappy');
    await p.waitForValue(SOCKETS, 'flappy.socket', 5, 30_000);
    await recoverSocket(sb, 'flappy');
    await p.waitForValue(SOCKETS, 'flappy.socket', 1, 30_000);
    await sb.execOk('systemctl', 'daemon-reexec');
    await failSocket(sb, 'flappy');
    await p.waitForValue(SOCKETS, 'flappy.socket', 5, 30_000);
    await recoverSocket(sb, 'flappy');
    await p.waitForValue(SOCKETS, 'flappy.socket', 1, 30_000);
    await monitor!.stop();

    sent = monitor!.sentBy(netdataUid);
    const calls = sent.filter((m) => m.type === 'method_call');
    const names = [...new Set(calls.map(callName))].sort();
    expect(calls.length, 'the monitor saw the plugin').toBeGreaterThan(3);
    expect(names).toContain('org.freedesktop.DBus org.freedesktop.DBus.Hello');
    expect(names).toContain('org.freedesktop.systemd1 org.freedesktop.systemd1.Manager.Subscribe');
    const forbidden = calls.filter((m) => !ALLOWED_CALLS.has(callName(m)));
    expect(forbidden.map((m) => `${callName(m)} ${m.path}`), `every call: ${names.join(', ')}`).toEqual([]);
    // Properties are read only of systemd's own interfaces.
    for (const m of calls.filter((c) => c.interface === 'org.freedesktop.DBus.Properties')) {
      expect(String(m.payload?.data[0])).toMatch(/^org\.freedesktop\.systemd1\./);
    }
    expect(sent.filter((m) => m.type === 'signal'), 'signals the plugin emitted').toEqual([]);
  }, 120_000);
});

describe('as a process', () => {
  it('runs as netdata with no capability', async () => {
    expect(idsAndCapabilities(await credentials(pluginPid))).toEqual(unprivileged(String(netdataUid), String(netdataGid)));
  });

  it('calls only read-only methods when it reconnects after dbus was stopped and started', async () => {
    const p = plugin!;
    await sb.execOk('systemctl', 'stop', 'dbus.socket', 'dbus.service');
    await sleep(3500); // the fault: the bus gone for a set time (the plugin's retries fail meanwhile)
    // The plugin retries an unreachable bus every 500 ms: held while the bus comes back and the
    // second monitor starts listening, so that monitor sees its reconnect from the Hello on.
    process.kill(pluginPid, 'SIGSTOP');
    let again: BusMonitor | undefined;
    try {
      await sb.execOk('systemctl', 'start', 'dbus.socket', 'dbus.service');
      again = new BusMonitor(sb.busAddress);
      await again.ready;
    } finally {
      process.kill(pluginPid, 'SIGCONT');
    }
    try {
      await failSocket(sb, 'alpha');
      await p.waitForValue(SOCKETS, 'alpha.socket', 5, 30_000);
      await recoverSocket(sb, 'alpha');
      await p.waitForValue(SOCKETS, 'alpha.socket', 1, 30_000);
    } finally {
      await again.stop();
    }
    const calls = again.sentBy(netdataUid).filter((m) => m.type === 'method_call');
    const names = [...new Set(calls.map(callName))].sort();
    expect(names, 'the second monitor saw the reconnect from its Hello on').toContain('org.freedesktop.DBus org.freedesktop.DBus.Hello');
    expect(calls.filter((m) => !ALLOWED_CALLS.has(callName(m))).map(callName), names.join(', ')).toEqual([]);
    // One match rule of each kind on the new connection, not a second set.
    const rules = calls.filter((m) => m.member === 'AddMatch').map((m) => String(m.payload?.data[0]));
    expect(rules.length).toBeGreaterThan(0);
    expect(new Set(rules).size).toBe(rules.length);
  }, 120_000);

  it('survives more faults without creating a process, and exits 0 on stdin EOF', async () => {
    const p = plugin!;
    // systemd frozen for 3 s: calls time out, the loop goes on.
    process.kill(sb.pid, 'SIGSTOP');
    await sleep(3000); // the fault: systemd frozen for a set time
    process.kill(sb.pid, 'SIGCONT');
    await failSocket(sb, 'alpha');
    await p.waitForValue(SOCKETS, 'alpha.socket', 5, 30_000);
    expect(await childrenOf(pluginPid)).toEqual([]);
    p.child.stdin.end();
    stopped = await Promise.race([p.exit, new Promise<undefined>((r) => setTimeout(r, 5000))]);
    expect(stopped?.code, p.stderr).toBe(0);

    const calls = parseStrace(await readFile(traceFile, 'utf8'));
    const created = processCreations(calls);
    // The launcher (sh) execs node in place: execve of the launcher, PATH lookups of node, node.
    const execs = created.filter((c) => c.name === 'execve');
    const firstPid = calls[0]!.pid;
    expect(created.filter((c) => c.name !== 'execve').map((c) => `${c.pid} ${c.name}(${c.args.slice(0, 120)}`)).toEqual([]);
    expect(execs.every((c) => c.pid === firstPid)).toBe(true);
    const ran = execs.filter((c) => c.result === '0').map((c) => /^"([^"]*)"/.exec(c.args)?.[1]);
    expect(ran).toEqual([path.join(repoRoot, 'systemdunits.plugin'), expect.stringMatching(/\/node$/)]);
  }, 120_000);

  it('touches only files named by its argv or the agent environment, and the Node runtime', async () => {
    expect(stopped, 'the previous test ran the plugin to its end').toBeDefined();
    const calls = parseStrace(await readFile(traceFile, 'utf8'));
    // From node's start on (the launcher before it is sh finding node).
    const start = calls.map((c) => c.name === 'execve' && c.result === '0').lastIndexOf(true);
    const nodeBin = /^"([^"]*)"/.exec(calls[start]!.args)![1]!;
    const named = pathsNamed(calls.slice(start + 1));
    const rules = { pluginDir: repoRoot, node: nodeBin, env, cwd: process.cwd() };
    const why = new Map<string, string>();
    const unexplained = new Set<string>();
    for (const { path: p, call } of named) {
      const reason = whyAllowed(p, rules);
      if (reason) why.set(reason, p);
      else unexplained.add(`${call.name}: ${p}`);
    }
    expect([...unexplained]).toEqual([]);
    // It did read what it should have, from where it should have.
    const opened = named.filter((n) => n.call.name === 'openat' && !n.call.result?.startsWith('-1')).map((n) => n.path);
    expect(opened).toContain(path.join(env.NETDATA_USER_CONFIG_DIR, 'systemdunits.conf'));
    const connects = named.filter((n) => n.call.name === 'connect').map((n) => n.path);
    expect(new Set(connects)).toEqual(new Set([env.DBUS_SYSTEM_BUS_ADDRESS.slice('unix:path='.length)]));
    expect(connects.length, 'connected again after dbus came back').toBeGreaterThanOrEqual(2);
  });
});

describe('a bus address that would run a program', () => {
  it('is refused: dbus-next would spawn it for unixexec:, the plugin prints DISABLE instead', async () => {
    const marker = path.join(dir, 'unixexec-ran');
    const p = new PluginRun(['1'], { DBUS_SYSTEM_BUS_ADDRESS: `unixexec:path=/usr/bin/touch,arg1=${marker}` });
    const r = await Promise.race([p.exit, new Promise<undefined>((res) => setTimeout(res, 5000))]);
    if (!r) await p.stop();
    expect(r?.code).toBe(0);
    expect(p.lines.filter((l) => l !== '')).toEqual(['DISABLE']);
    expect(p.stderr).toContain('only a unix:path= address is supported');
    expect(p.stderr, 'no hint that points elsewhere').not.toContain('is systemd running');
    await expect(readFile(marker)).rejects.toThrow(/ENOENT/);
  });
});
