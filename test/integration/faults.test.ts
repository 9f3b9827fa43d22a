// Faults produced for real: no bus, a bus without systemd, the bus going away, systemd frozen or
// re-executed, signals, stdin and stdout closing, garbage in. The plugin must never crash into a
// restart loop, and must pick up where it left off.
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PluginRun } from '../../harness/plugin.js';
import { startSandbox, type Sandbox } from '../../harness/sandbox.js';
import { failSocket, recoverSocket, startSockets } from '../../harness/units.js';

const SOCKETS = 'systemdunits_service_units.socket_unit_state';

async function exited(run: PluginRun, withinMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }> {
  const t0 = Date.now();
  const r = await Promise.race([run.exit, new Promise<undefined>((res) => setTimeout(res, withinMs))]);
  if (!r) throw new Error(`plugin still running after ${withinMs} ms; stderr:\n${run.stderr}`);
  return { code: r.code, signal: r.signal, ms: Date.now() - t0 };
}

describe('without systemd', () => {
  it('says in one line what to check and prints DISABLE when there is no bus', async () => {
    const run = new PluginRun(['1'], { DBUS_SYSTEM_BUS_ADDRESS: 'unix:path=/nonexistent/system_bus_socket' });
    const { code } = await exited(run, 5000);
    expect(code).toBe(0);
    expect(run.lines.filter((l) => l !== '')).toEqual(['DISABLE']);
    const errors = run.stderr.trim().split('\n');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^systemdunits\.plugin: cannot reach the system bus at unix:path=\/nonexistent\/system_bus_socket/);
    expect(errors[0]).toContain('is /run/dbus mounted?');
  });

  it('prints DISABLE when the bus has no systemd on it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sdu-bus-'));
    const daemon = spawn('dbus-daemon', ['--session', '--nofork', '--print-address', `--address=unix:path=${dir}/bus`], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise((r) => daemon.stdout.once('data', r));
      const run = new PluginRun(['1'], { DBUS_SYSTEM_BUS_ADDRESS: `unix:path=${dir}/bus` });
      expect((await exited(run, 5000)).code).toBe(0);
      expect(run.lines.filter((l) => l !== '')).toEqual(['DISABLE']);
      expect(run.stderr.trim()).toMatch(/^systemdunits\.plugin: systemd is not on the system bus at .*; disabling the plugin$/);
    } finally {
      daemon.kill();
    }
  });
});

describe('with systemd', () => {
  let sb: Sandbox;

  beforeAll(async () => {
    sb = await startSandbox();
    await startSockets(sb, ['steady', 'probe']);
  });
  afterAll(async () => {
    await sb?.stop({ removeDir: true });
  });

  async function running(): Promise<PluginRun> {
    const run = new PluginRun(['1'], { DBUS_SYSTEM_BUS_ADDRESS: sb.busAddress });
    await run.waitForValue(SOCKETS, 'steady.socket', 1);
    return run;
  }

  it('ends at once on SIGTERM, by the signal itself (agents count that as a clean end)', async () => {
    // No handler: the kernel ends the plugin even with its event loop busy, within the few ms a v2
    // agent stopped by systemd leaves before it SIGKILLs what is left (see plugin/main.ts).
    const run = await running();
    run.child.kill('SIGTERM');
    const { code, signal, ms } = await exited(run, 2000);
    expect({ code, signal }).toEqual({ code: null, signal: 'SIGTERM' });
    expect(ms).toBeLessThan(1000);
    expect(run.stderr).toBe('');
  });

  for (const [how, act] of [
    ['SIGINT', (r: PluginRun) => r.child.kill('SIGINT')],
    ['stdin EOF', (r: PluginRun) => r.child.stdin.end()],
    ['a QUIT line', (r: PluginRun) => r.child.stdin.write('QUIT\n')],
  ] as const) {
    it(`exits 0 within 1 s on ${how}`, async () => {
      const run = await running();
      act(run);
      const { code, ms } = await exited(run, 2000);
      expect(code).toBe(0);
      expect(ms).toBeLessThan(1000);
      expect(run.stderr).toBe('');
    });
  }

  it('exits quietly when the agent stops reading its stdout (EPIPE)', async () => {
    const run = await running();
    run.child.stdout.destroy();
    const { code } = await exited(run, 3000);
    expect(code).toBe(0);
    expect(run.stderr).not.toMatch(/Error|at /);
  });

  it('ignores garbage on stdin and answers unknown functions with 404', async () => {
    const run = await running();
    try {
      run.child.stdin.write(Buffer.from([0x00, 0xff, 0x0a]));
      run.child.stdin.write('BEGIN x\nSET y = 1\n"unterminated\n' + 'z'.repeat(200_000) + '\n');
      run.child.stdin.write('FUNCTION tx42 10 "no-such-function arg"\n');
      await run.waitFor('function answer', () => run.lines.includes('FUNCTION_RESULT_END'));
      const begin = run.lines.find((l) => l.startsWith('FUNCTION_RESULT_BEGIN'));
      expect(begin).toBe('FUNCTION_RESULT_BEGIN tx42 404 application/json 0');
      const before = run.samplesOf(SOCKETS).length;
      await run.waitFor('samples go on', () => run.samplesOf(SOCKETS).length >= before + 2);
      expect(run.strayLines).toEqual([]);
    } finally {
      await run.stop();
    }
  });

  it('reports a config it cannot parse in one line and disables itself instead of guessing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sdu-conf-'));
    writeFileSync(join(dir, 'systemdunits.conf'), 'jobs:\n  - name: x\n    include: [oops\n');
    const run = new PluginRun(['1'], { DBUS_SYSTEM_BUS_ADDRESS: sb.busAddress, NETDATA_USER_CONFIG_DIR: dir });
    expect((await exited(run, 5000)).code).toBe(0);
    expect(run.lines.filter((l) => l !== '')).toEqual(['DISABLE']);
    const lines = run.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^systemdunits\\.plugin: ${dir}/systemdunits\\.conf: job 'x' \\(jobs\\[0\\]\\): include: not valid YAML at line \\d+, column \\d+: .*; disabling the plugin$`));
  });

  it('keeps sampling while systemd is frozen (SIGSTOP) and follows it again after SIGCONT', async () => {
    const run = await running();
    try {
      process.kill(sb.pid, 'SIGSTOP');
      const before = run.samplesOf(SOCKETS).length;
      await run.waitFor('samples while frozen', () => run.samplesOf(SOCKETS).length >= before + 3, 6000);
      expect(run.lastValue(SOCKETS, 'steady.socket')).toBe(1);
      process.kill(sb.pid, 'SIGCONT');
      await failSocket(sb, 'probe');
      await run.waitForValue(SOCKETS, 'probe.socket', 5, 5000);
      await recoverSocket(sb, 'probe');
      await run.waitForValue(SOCKETS, 'probe.socket', 1, 5000);
      expect(run.child.exitCode).toBeNull();
    } finally {
      process.kill(sb.pid, 'SIGCONT');
      await run.stop();
    }
  });

  it('starts while systemd does not answer (SIGSTOP): stays up, then charts once it does', async () => {
    process.kill(sb.pid, 'SIGSTOP');
    let run: PluginRun | undefined;
    try {
      run = new PluginRun(['1'], { DBUS_SYSTEM_BUS_ADDRESS: sb.busAddress });
      const r = run;
      await r.waitFor('the plugin to notice', () => r.stderr.includes('systemd does not answer yet'), 10_000);
      await r.waitFor('heartbeats', () => r.lines.filter((l) => l === '').length >= 2, 5000);
      expect(r.lines.filter((l) => l !== '')).toEqual([]); // neither DISABLE nor charts
      process.kill(sb.pid, 'SIGCONT');
      await r.waitForValue(SOCKETS, 'steady.socket', 1, 20_000);
      expect(r.child.exitCode).toBeNull();
    } finally {
      process.kill(sb.pid, 'SIGCONT');
      await run?.stop();
    }
  });

  it('resyncs and keeps following units after systemd re-executes itself (new bus owner)', async () => {
    const run = await running();
    try {
      await sb.execOk('systemctl', 'daemon-reexec');
      await sb.execOk('systemctl', 'is-system-running', '--wait');
      await failSocket(sb, 'probe');
      await run.waitForValue(SOCKETS, 'probe.socket', 5, 5000);
      await recoverSocket(sb, 'probe');
      await run.waitForValue(SOCKETS, 'probe.socket', 1, 5000);
    } finally {
      await run.stop();
    }
  });

  it('stays alive with gaps while the bus is gone, then reconnects and resyncs', async () => {
    const run = await running();
    try {
      await sb.execOk('systemctl', 'stop', 'dbus.socket', 'dbus.service');
      await run.waitFor('connection loss noticed', () => run.stderr.includes('lost the system bus'), 5000);
      const n = run.samplesOf(SOCKETS).length;
      const heartbeats = run.lines.length;
      await new Promise((r) => setTimeout(r, 2500)); // a span in which at most one sample may come
      expect(run.samplesOf(SOCKETS).length - n).toBeLessThanOrEqual(1); // a gap, not stale values
      expect(run.lines.slice(heartbeats).filter((l) => l === '').length).toBeGreaterThanOrEqual(1);
      // Changed while the plugin could not see it: the resync after reconnecting must catch it.
      await failSocket(sb, 'probe');
      await sb.execOk('systemctl', 'start', 'dbus.socket', 'dbus.service');
      await run.waitFor('reconnected', () => run.stderr.includes('reconnected to the system bus'), 40_000);
      await run.waitForValue(SOCKETS, 'probe.socket', 5, 5000);
      await recoverSocket(sb, 'probe');
      await run.waitForValue(SOCKETS, 'probe.socket', 1, 5000);
      expect(run.child.exitCode).toBeNull();
      expect(run.protocolErrors).toEqual([]);
    } finally {
      await run.stop();
    }
  });
});
