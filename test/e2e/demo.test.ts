// scripts/demo/demo.sh leaves the host alone: a Netdata agent running on the host (in the host's own
// mount namespace, as a packaged one runs) keeps running and its service stays enabled while the
// demo comes and goes; and Ctrl-C with the output piped into tee (SIGPIPE in the cleanup used to
// kill the demo with 141) still stops the demo's agent and its sandboxed systemd.
// The host's netdata.service is enabled for the test if it was not, and put back afterwards.
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot, run, runOk } from '../../harness/run.js';
import { freePort } from '../../harness/ports.js';
import { sleep } from '../../harness/wait.js';

const DEMO = path.join(repoRoot, 'scripts/demo/demo.sh');
const BASE = '/var/lib/systemdunits-tests';
let dir = '';
let hostPid = 0;
let hostPort = 0;
let wasEnabled = true;

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const answers = (port: number) => fetch(`http://127.0.0.1:${port}/api/v1/info`).then((r) => r.ok, () => false);
const isEnabled = async () => (await run('systemctl', ['is-enabled', 'netdata'])).stdout.trim();

beforeAll(async () => {
  await mkdir(BASE, { recursive: true, mode: 0o755 });
  dir = await mkdtemp(path.join(BASE, 'host-agent-'));
  wasEnabled = (await isEnabled()) === 'enabled';
  if (!wasEnabled) await runOk('systemctl', ['enable', 'netdata']);
  // The "host" agent: Debian's netdata in the host's mount namespace (as the packaged service runs
  // it), with a config, state and port of its own so it disturbs nothing else.
  await mkdir(path.join(dir, 'none'));
  for (const d of ['log', 'cache', 'lib', 'lock', 'home', 'run']) {
    await mkdir(path.join(dir, d));
    await runOk('chown', ['netdata:netdata', path.join(dir, d)]);
  }
  await runOk('chmod', ['755', dir]);
  hostPort = await freePort();
  await writeFile(
    path.join(dir, 'netdata.conf'),
    [
      '[global]', '  run as user = netdata', '[db]', '  mode = ram',
      '[directories]', `  config = ${dir}`, '  stock config = /usr/lib/netdata/conf.d', `  log = ${dir}/log`,
      '  web = /usr/share/netdata/web', `  cache = ${dir}/cache`, `  lib = ${dir}/lib`, `  lock = ${dir}/lock`, `  home = ${dir}/home`,
      `  plugins = "${dir}/none"`, `  health config = ${dir}/none`, `  stock health config = ${dir}/none`,
      '[web]', `  bind to = 127.0.0.1:${hostPort}`, '  web files owner = root', '  web files group = root', '[registry]', '  enabled = no', '[ml]', '  enabled = no', '[health]', '  enabled = no',
      '[plugins]', ...['proc', 'cgroups', 'diskspace', 'tc', 'idlejitter', 'timex', 'statsd'].map((p) => `  ${p} = no`), '  enable running new plugins = no',
    ].join('\n') + '\n',
  );
  const child = spawn('netdata', ['-D', '-c', path.join(dir, 'netdata.conf')], { detached: true, stdio: 'ignore' });
  child.unref();
  hostPid = child.pid!;
  for (let i = 0; !(await answers(hostPort)); i++) {
    if (i > 200 || !alive(hostPid)) throw new Error(`the host agent did not come up on ${hostPort}`);
    await sleep(100);
  }
}, 60_000);

afterAll(async () => {
  if (hostPid && alive(hostPid)) {
    process.kill(hostPid, 'SIGTERM');
    for (let i = 0; i < 100 && alive(hostPid); i++) await sleep(100);
    if (alive(hostPid)) process.kill(hostPid, 'SIGKILL');
  }
  if (!wasEnabled) await run('systemctl', ['disable', 'netdata']);
  if (dir) await rm(dir, { recursive: true, force: true });
}, 60_000);

describe('demo.sh and a Netdata running on the host', () => {
  it('runs its own agent beside the host agent, which keeps running, enabled, on its port', async () => {
    const r = await run('bash', [DEMO, '--duration', '5'], { timeoutMs: 400_000 });
    expect(alive(hostPid), 'the host agent is still running').toBe(true);
    expect(await answers(hostPort), 'the host agent still answers on its port').toBe(true);
    expect(await isEnabled(), 'netdata.service is still enabled').toBe('enabled');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('stopped; nothing left running');
    const demoPort = Number(/Dashboard:\s+http:\/\/127\.0\.0\.1:(\d+)\//.exec(r.stdout)?.[1]);
    expect(demoPort, 'the demo printed its dashboard').toBeGreaterThan(0);
    expect(demoPort, 'the demo agent used a port of its own').not.toBe(hostPort);
    expect(r.stdout, 'the URL asks for the last minute, not the empty default 5 minutes').toMatch(/Dashboard:\s+\S+;after=-60;before=0/);
  }, 420_000);

  it('Ctrl-C with the output piped into tee stops the demo agent and its sandboxed systemd', async () => {
    const out = path.join(dir, 'demo-tee.log');
    // Its own process group, as a shell pipeline is: Ctrl-C goes to the demo and to tee at once.
    const child = spawn('bash', ['-c', `bash ${DEMO} | tee ${out} >/dev/null`], { detached: true, stdio: 'ignore' });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    let text = '';
    for (let i = 0; !/watching the alarm/.test(text); i++) {
      if (i > 1600) throw new Error(`the demo did not get going:\n${text}`);
      await sleep(250);
      text = await readFile(out, 'utf8').catch(() => '');
    }
    const port = Number(/Dashboard:\s+http:\/\/127\.0\.0\.1:(\d+)\//.exec(text)?.[1]);
    const state = path.dirname(path.dirname(path.dirname(/Agent log:\s+(\S+)/.exec(text)![1]!)));
    const tag = (await readFile(path.join(state, 'sandbox/tag'), 'utf8')).trim();
    expect(await answers(port), 'the demo agent runs').toBe(true);
    process.kill(-child.pid!, 'SIGINT');
    await exited;
    // Whatever it left would still be there now: the demo exits only after its cleanup.
    expect(await answers(port), 'the demo agent answers after Ctrl-C').toBe(false);
    const left = await run('sh', ['-c', `grep -lxF SANDBOX_TAG=${tag} --null-data /proc/[0-9]*/environ 2>/dev/null || true`]);
    expect(left.stdout.trim(), 'processes of the demo sandbox left after Ctrl-C').toBe('');
    expect(existsSync(state), `${state} removed`).toBe(false);
    expect(alive(hostPid), 'the host agent is still running').toBe(true);
  }, 480_000);
});
