// Least privilege as the real agent (Debian's 1.37.1, `run as user = netdata`) runs the plugin
// installed by install.sh: the plugin process the agent starts holds no capability and netdata's
// credentials, and through faults (daemon-reload, a unit failing, dbus restarted, systemd
// re-executed) it starts no process: strace, attached to it by root, sees no fork, clone of a
// process or exec, and /proc shows no child; the only paths it names meanwhile are its own code
// and the bus address from its environment. The files it holds open beyond the stdio the agent
// gave it are sockets, pipes, event fds and /dev/null.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, readdir, readlink, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startAgent, type Agent } from '../../harness/agent.js';
import { childrenOf, credentials, idsAndCapabilities, parseStrace, pathsNamed, processCreations, unprivileged, whyAllowed } from '../../harness/privilege.js';
import { run } from '../../harness/run.js';
import { startSandbox, type Sandbox } from '../../harness/sandbox.js';
import { failSocket, recoverSocket, startSockets } from '../../harness/units.js';
import { installForAgent, processesRunning, SOCKET_CHART, type ProcInfo } from '../../harness/e2e.js';
import { until } from '../../harness/wait.js';

let sb: Sandbox | undefined;
let agent: Agent | undefined;
let agentDir: string;
let pluginPid: number;
let entry: string;
let pluginsDir: string;
let proc: ProcInfo;
let failed = false;

afterEach((ctx) => {
  if (ctx.task.result?.state === 'fail') failed = true;
});

beforeAll(async () => {
  sb = await startSandbox();
  await startSockets(sb, ['watched']);
  const bus = await sb.expose();
  agentDir = await mkdtemp(path.join(os.tmpdir(), 'e2e-privilege-'));
  const installed = await installForAgent(agentDir);
  pluginsDir = installed.pluginsDir;
  const healthDir = installed.healthDir;
  agent = await startAgent({ dir: agentDir, pluginsDir, healthDir, busAddress: bus });
  entry = path.join(pluginsDir, 'systemdunits/systemdunits.mjs');
  const procs = await agent.waitFor(async () => {
    const p = await processesRunning(entry);
    return p.length === 1 ? p : undefined;
  }, 15_000, 'the plugin process');
  proc = procs[0]!;
  pluginPid = proc.pid;
  await agent.waitFor(async () => (await agent!.charts()).charts[SOCKET_CHART], 15_000, `chart ${SOCKET_CHART}`);
}, 240_000);

afterAll(async () => {
  await agent?.stop({ removeDir: !failed }).catch((e) => console.error(e));
  await sb?.stop({ removeDir: !failed }).catch((e) => console.error(e));
  if (failed) console.error(`e2e privilege: kept ${agentDir} and ${sb?.dir ?? ''} for inspection`);
  else if (agentDir) await rm(agentDir, { recursive: true, force: true });
});

describe('the plugin as the agent runs it', () => {
  it('holds no capability and runs with netdata’s uid and gid', async () => {
    const uid = (await run('id', ['-u', 'netdata'])).stdout.trim();
    const gid = (await run('id', ['-g', 'netdata'])).stdout.trim();
    expect(idsAndCapabilities(await credentials(pluginPid))).toEqual(unprivileged(uid, gid));
  });

  it('starts no process through faults, and keeps only sockets, pipes and /dev/null open', async () => {
    const traceFile = path.join(agentDir, 'strace.txt');
    const strace = spawn('strace', ['-f', '-qq', '-s', '4096', '-o', traceFile, '-e', 'trace=%process,%file,connect', '-p', String(pluginPid)], { stdio: 'ignore' });
    const straceExit = new Promise((r) => strace.once('exit', r));
    let kids: number[] = [];
    let tracedToTheEnd = false;
    const watch = setInterval(() => void childrenOf(pluginPid).then((k) => (kids = kids.concat(k))), 20);
    try {
      // Attached once the kernel names strace as the tracer of every thread of the plugin.
      await until('strace attached to every thread of the plugin', async () => {
        const tasks = await readdir(`/proc/${pluginPid}/task`);
        const status = await Promise.all(tasks.map((t) => readFile(`/proc/${pluginPid}/task/${t}/status`, 'utf8')));
        return status.every((st) => /^TracerPid:\s*[1-9]/m.test(st));
      }, { timeoutMs: 10_000, everyMs: 20 });
      const s = sb!;
      await startSockets(s, ['newcomer']);
      /** The agent shows `value` for watched.socket in a row stamped after `since` (epoch s). */
      const shows = (value: number, since: number, what: string) =>
        agent!.waitFor(
          async () => {
            const d = await agent!.data(SOCKET_CHART, -3, 3);
            const i = d.result.labels.indexOf('watched.socket');
            return i > 0 && d.result.data.some((row) => row[0]! > since && row[i] === value);
          },
          30_000,
          what,
        );
      let t = Date.now() / 1000;
      await failSocket(s, 'watched');
      await shows(5, t, 'watched.socket failed (5) in the agent');
      await s.execOk('systemctl', 'restart', 'dbus.service');
      await s.execOk('systemctl', 'daemon-reexec');
      t = Date.now() / 1000;
      await recoverSocket(s, 'watched');
      // The plugin is still the agent's, and shows the unit recovered after all that.
      await shows(1, t, 'watched.socket back to 1 in the agent');
    } finally {
      clearInterval(watch);
      tracedToTheEnd = strace.exitCode === null && strace.signalCode === null;
      strace.kill('SIGINT');
      await straceExit;
    }
    expect(tracedToTheEnd, 'strace stayed attached through the faults').toBe(true);
    const calls = parseStrace(await readFile(traceFile, 'utf8'));
    const created = processCreations(calls);
    expect(created.map((c) => `${c.pid} ${c.name}(${c.args.slice(0, 100)}`)).toEqual([]);
    expect(kids).toEqual([]);
    expect((await processesRunning(entry)).map((p) => p.pid), 'the same plugin process throughout').toEqual([pluginPid]);

    // Every path it named meanwhile (reconnecting included) is its own code or the bus from its environment.
    const env = proc.environ;
    const rules = {
      pluginDir: pluginsDir,
      node: '/nonexistent',
      env: {
        NETDATA_USER_CONFIG_DIR: env.NETDATA_USER_CONFIG_DIR ?? '',
        NETDATA_STOCK_CONFIG_DIR: env.NETDATA_STOCK_CONFIG_DIR ?? '',
        HOME: env.HOME ?? '',
        DBUS_SYSTEM_BUS_ADDRESS: env.DBUS_SYSTEM_BUS_ADDRESS ?? '',
      },
      cwd: '/nonexistent',
    };
    const named = pathsNamed(calls);
    expect(named.filter((n) => !whyAllowed(n.path, rules)).map((n) => `${n.call.name}: ${n.path}`)).toEqual([]);
    expect(named.filter((n) => n.call.name === 'connect').length, 'it reconnected after dbus restarted').toBeGreaterThan(0);

    // 0-2 are what the agent handed over (on 1.37 stderr is its error.log); the rest are the plugin's own.
    const fds = (await readdir(`/proc/${pluginPid}/fd`)).filter((fd) => Number(fd) > 2);
    const targets = await Promise.all(fds.map((fd) => readlink(`/proc/${pluginPid}/fd/${fd}`).catch(() => 'gone')));
    const unexpected = targets.filter((t) => !/^(socket|pipe|anon_inode):/.test(t) && t !== '/dev/null' && t !== 'gone');
    expect(unexpected, targets.join(', ')).toEqual([]);
  }, 120_000);
});
