// The systemd-socket-units Function, called by speaking the agent's protocol to the plugin's stdin
// (Debian's 1.37.1 agent cannot call functions: its REST endpoint answers 403), against a real
// systemd 252 with real sockets: Accept=yes with live connections, a failed one, one triggering a
// differently named service, an inactive one. Every cell is checked against `systemctl show`.
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tokenize } from '../../plugin/netdata/requests.js';
import { PluginRun, type FunctionAnswer } from '../../harness/plugin.js';
import { ProtocolParser } from '../../harness/protocol.js';
import { repoRoot, run } from '../../harness/run.js';
import { startSandbox, type Sandbox } from '../../harness/sandbox.js';
import { failSocket, freePort, writeSocket } from '../../harness/units.js';
import { until } from '../../harness/wait.js';

let sb: Sandbox;
let plugin: PluginRun;
let webPort: number;
const clients: Socket[] = [];

/** Sends a FUNCTION request line and waits for its FUNCTION_RESULT_BEGIN … END answer. */
function call(tx: string, line: string, timeoutMs = 15_000): Promise<FunctionAnswer> {
  return plugin.call(tx, line, timeoutMs);
}

type Row = Record<string, unknown>;

/** The table's rows as objects keyed by column id. */
function rows(table: { columns: Record<string, { index: number }>; data: unknown[][] }): Map<string, Row> {
  const ids = Object.entries(table.columns).sort((a, b) => a[1].index - b[1].index).map(([id]) => id);
  return new Map(table.data.map((cells) => [cells[ids.indexOf('unit')] as string, Object.fromEntries(ids.map((id, i) => [id, cells[i]]))]));
}

async function show(unit: string, ...props: string[]): Promise<Record<string, string>> {
  const out = (await sb.execOk('systemctl', 'show', unit, ...props.map((p) => `--property=${p}`))).stdout;
  return Object.fromEntries(out.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

beforeAll(async () => {
  sb = await startSandbox();
  webPort = await freePort();
  await sb.writeUnit('web.socket', `[Socket]\nListenStream=127.0.0.1:${webPort}\nAccept=yes\n`);
  await sb.writeUnit('web@.service', '[Service]\nExecStart=/bin/cat\nStandardInput=socket\n');
  await sb.writeUnit('front.socket', '[Socket]\nListenStream=/run/front.sock\nListenDatagram=/run/front.dgram\nService=backend.service\n');
  await sb.writeUnit('backend.service', '[Service]\nExecStart=/bin/sleep infinity\n');
  // Its service cannot start (203/EXEC): the table says how it exited.
  await sb.writeUnit('noexec.socket', '[Socket]\nListenStream=/run/noexec.sock\n');
  await sb.writeUnit('noexec.service', '[Service]\nExecStart=/nonexistent\n');
  await writeSocket(sb, 'broken');
  await writeSocket(sb, 'idle');
  await sb.writeUnit('hold.target', '[Unit]\nAfter=idle.socket\n'); // keeps idle.socket loaded while inactive
  await sb.daemonReload();
  await sb.execOk('systemctl', 'start', 'web.socket', 'front.socket', 'broken.socket', 'hold.target', 'noexec.socket');
  await failSocket(sb, 'broken');
  for (let i = 0; i < 2; i++) {
    clients.push(await new Promise<Socket>((resolve, reject) => {
      const s = connect(webPort, '127.0.0.1', () => resolve(s));
      s.on('error', reject);
    }));
  }
  plugin = new PluginRun(['1'], { DBUS_SYSTEM_BUS_ADDRESS: sb.busAddress });
  await plugin.waitFor('the first samples', () => plugin.samples.length > 0, 15_000);
});

afterAll(async () => {
  for (const c of clients) c.destroy();
  await plugin?.stop();
  await sb?.stop({ removeDir: true });
});

describe('the systemd-socket-units function against real systemd', () => {
  it('is declared once, before any chart, in the form 1.37.1 parses', () => {
    const decl = plugin.lines.filter((l) => l.startsWith('FUNCTION '));
    expect(decl).toHaveLength(1);
    expect(tokenize(decl[0]!).slice(0, 4)).toEqual(['FUNCTION', 'GLOBAL', 'systemd-socket-units', '10']);
    // v2's tags and access: signed-in users only (1.37.1 ignores both words).
    expect(tokenize(decl[0]!).slice(5)).toEqual(['top', 'member']);
    expect(plugin.lines.indexOf(decl[0]!)).toBeLessThan(plugin.lines.findIndex((l) => l.startsWith('CHART ')));
  });

  it('answers with a table of every socket unit systemd has loaded', async () => {
    const a = await call('tx-table', 'FUNCTION tx-table 10 "systemd-socket-units"');
    expect(a).toMatchObject({ status: 200, contentType: 'application/json', expires: 0 });
    const table = JSON.parse(a.body);
    expect(table).toMatchObject({ status: 200, type: 'table', has_history: false, default_sort_column: 'unit' });
    const listed = (await sb.execOk('systemctl', 'list-units', '--type=socket', '--all', '--plain', '--no-legend', '--no-pager')).stdout
      .trim()
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
      .filter((w) => w[1] !== 'not-found')
      .map((w) => w[0]!);
    expect([...rows(table).keys()].sort()).toEqual(listed.sort());
    expect(listed).toEqual(expect.arrayContaining(['web.socket', 'front.socket', 'broken.socket', 'idle.socket', 'dbus.socket']));
  });

  it('shows what systemctl show says of each socket: state, Result, Listen, triggers, counters, time in state', async () => {
    const a = await call('tx-cells', 'FUNCTION tx-cells 10 "systemd-socket-units"');
    const nowMs = Date.now();
    const r = rows(JSON.parse(a.body));
    for (const name of ['web.socket', 'front.socket', 'broken.socket', 'idle.socket', 'dbus.socket']) {
      const s = await show(name, 'ActiveState', 'SubState', 'Result', 'Accept', 'NAccepted', 'NConnections', 'NRefused', 'Triggers', 'StateChangeTimestamp');
      const row = r.get(name)!;
      expect(row, name).toMatchObject({
        state: s.ActiveState,
        substate: s.SubState,
        result: s.Result,
        accept: s.Accept,
        accepted: Number(s.NAccepted),
        connections: Number(s.NConnections),
        refused: Number(s.NRefused),
      });
      const words = (v: unknown) => String(v ?? '').split(' ').filter(Boolean).sort();
      expect(words(row.triggers), name).toEqual(words(s.Triggers));
      const changed = Date.parse(s.StateChangeTimestamp!.replace(/^\w+ /, ''));
      if (Number.isFinite(changed)) expect(Math.abs((row.in_state as number) - (nowMs - changed) / 1000), name).toBeLessThan(3);
    }
    expect(r.get('web.socket')).toMatchObject({ accept: 'yes', connections: 2, accepted: 2, listen: `127.0.0.1:${webPort} (Stream)`, triggers_state: 'active' });
    expect(String(r.get('web.socket')!.triggers).split(' ')).toHaveLength(2); // one instance per connection
    expect(r.get('front.socket')).toMatchObject({ triggers: 'backend.service', triggers_state: 'inactive', listen: '/run/front.sock (Stream) /run/front.dgram (Datagram)' });
    expect(r.get('broken.socket')).toMatchObject({ state: 'failed', result: 'exit-code', triggers: 'broken.service', triggers_state: 'inactive', row_options: { severity: 'error' } });
    expect(r.get('idle.socket')).toMatchObject({ state: 'inactive', substate: 'dead' });
  });

  it('says how the service a socket triggers exited when it failed (203/EXEC)', async () => {
    await sb.exec('systemctl', 'start', 'noexec.service'); // fails, as intended
    await until('noexec.service failed', async () => (await sb.exec('systemctl', 'is-failed', '--quiet', 'noexec.service')).code === 0);
    let n = 0;
    const a = await until('a row saying how noexec.service exited', async () => {
      const tx = `tx-exit-${++n}`;
      const row = rows(JSON.parse((await call(tx, `FUNCTION ${tx} 10 "systemd-socket-units"`)).body)).get('noexec.socket');
      return row?.triggers_exit ? row : undefined;
    }, { timeoutMs: 10_000, everyMs: 200 });
    expect(a.triggers_exit).toMatch(/^noexec\.service: (start-limit-hit, )?exit-code, status=203\/EXEC$/);
  });

  it('answers the preflight info request, and v2-style request lines with extra fields', async () => {
    const info = await call('tx-info', 'FUNCTION tx-info 10 "systemd-socket-units info"');
    expect(info.status).toBe(200);
    expect(JSON.parse(info.body)).toMatchObject({ type: 'table', has_history: false, accepted_params: ['info'] });
    expect(JSON.parse(info.body).data).toBeUndefined();
    const v2 = await call('5b8f2c1e-0d6a-4f0e-9a51-2f6f9a3c7d10', 'FUNCTION 5b8f2c1e-0d6a-4f0e-9a51-2f6f9a3c7d10 10 "systemd-socket-units after:1 before:2" "0x8" "method=api,role=admin"');
    expect(v2.status).toBe(200);
    expect(rows(JSON.parse(v2.body)).has('web.socket')).toBe(true);
  });

  it('keeps answering 404 for unknown functions', async () => {
    const a = await call('tx-404', 'FUNCTION tx-404 10 "systemd-units info"');
    expect(a.status).toBe(404);
    expect(JSON.parse(a.body)).toEqual({ status: 404, error_message: "systemdunits.plugin has no function 'systemd-units'" });
  });

  it('answers within the caller timeout while systemd does not answer (SIGSTOP), with the unread cells null', async () => {
    process.kill(sb.pid, 'SIGSTOP');
    let a: FunctionAnswer;
    const sent = performance.now();
    try {
      a = await call('tx-slow', 'FUNCTION tx-slow 3 "systemd-socket-units"', 10_000);
    } finally {
      process.kill(sb.pid, 'SIGCONT');
    }
    expect(a.at - sent).toBeLessThan(3000);
    expect(a.status).toBe(200);
    const web = rows(JSON.parse(a.body)).get('web.socket')!;
    expect(web).toMatchObject({ state: 'active', accepted: null, listen: null }); // from the unit table; nothing read
    // Still a working plugin afterwards.
    const again = await call('tx-after', 'FUNCTION tx-after 10 "systemd-socket-units"');
    expect(rows(JSON.parse(again.body)).get('web.socket')).toMatchObject({ accepted: 2 });
    expect(plugin.strayLines).toEqual([]);
    expect(plugin.protocolErrors).toEqual([]);
  });
});

describe('a call that arrives before the first listing (issue 15, item 2)', () => {
  /** The README's example, word for word: the one shell line that pipes a request into the plugin. */
  const example = readFileSync(`${repoRoot}/README.md`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith("printf 'FUNCTION ") && l.includes('systemdunits.plugin'));

  /** The answer to `tx` in a plugin's stdout, parsed. */
  function answerIn(stdout: string, tx: string): { status: number; body: string } | undefined {
    const out = new ProtocolParser();
    out.push(stdout.endsWith('\n') ? stdout : stdout + '\n');
    return out.answerTo(tx);
  }

  it('the README example piped into a fresh plugin gets the table, not "out of reach"', async () => {
    expect(example, 'the README has the example').toBeDefined();
    const r = await run('sh', ['-c', `cd '${repoRoot}' && ${example}`], { env: { ...process.env, DBUS_SYSTEM_BUS_ADDRESS: sb.busAddress }, timeoutMs: 20_000 });
    const tx = tokenize(example!.slice(example!.indexOf("'") + 1))[1]!;
    const a = answerIn(r.stdout, tx);
    expect(a, `stdout:\n${r.stdout.slice(0, 2000)}\nstderr:\n${r.stderr}`).toBeDefined();
    expect(a!.status, a!.body).toBe(200);
    expect([...rows(JSON.parse(a!.body)).keys()]).toEqual(expect.arrayContaining(['web.socket', 'front.socket', 'broken.socket', 'idle.socket']));
    expect(r.code).toBe(0); // exits by itself once the call is answered (stdin is at EOF)
  });

  it('waits for a systemd that answers late, within the call\'s timeout; answers 503 only past it', async () => {
    // systemd stopped before the plugin starts: its first listing cannot complete.
    process.kill(sb.pid, 'SIGSTOP');
    let p: PluginRun | undefined;
    try {
      p = new PluginRun(['1'], { DBUS_SYSTEM_BUS_ADDRESS: sb.busAddress });
      const sent = performance.now();
      p.child.stdin.write('FUNCTION tx-early 8 "systemd-socket-units"\n');
      await new Promise((r) => setTimeout(r, 1500)); // a span in which no answer may come
      expect(answerIn(p.lines.join('\n'), 'tx-early'), 'no answer while systemd is merely late').toBeUndefined();
      process.kill(sb.pid, 'SIGCONT');
      const a = await p.waitFor('the answer to tx-early', () => answerIn(p!.lines.join('\n'), 'tx-early'), 10_000);
      expect(performance.now() - sent).toBeLessThan(8000);
      expect(a.status, a.body).toBe(200);
      expect([...rows(JSON.parse(a.body)).keys()]).toEqual(expect.arrayContaining(['web.socket', 'broken.socket']));
      await p.stop();

      // Out of reach for the whole of the call's timeout: 503, by its deadline.
      process.kill(sb.pid, 'SIGSTOP');
      p = new PluginRun(['1'], { DBUS_SYSTEM_BUS_ADDRESS: sb.busAddress });
      const sent2 = performance.now();
      p.child.stdin.write('FUNCTION tx-late 3 "systemd-socket-units"\n');
      const late = await p.waitFor('the answer to tx-late', () => answerIn(p!.lines.join('\n'), 'tx-late'), 10_000);
      const ms = performance.now() - sent2;
      expect(late.status, late.body).toBe(503);
      expect(JSON.parse(late.body).error_message).toMatch(/out of reach/);
      expect(ms).toBeGreaterThan(2000); // it waited…
      expect(ms).toBeLessThan(3500); // …and answered by the caller's deadline
      expect(p.strayLines).toEqual([]);
    } finally {
      process.kill(sb.pid, 'SIGCONT');
      await p?.stop();
    }
  });
});
