// Real units with the names systemd allows, charted by the compiled plugin from real systemd:
// template instances of systemd-escape'd paths (spaces, UTF-8, quotes, =, :), a name with \x
// escapes and ':', names of exactly 255 characters, a UTF-8 description. The plugin's output is
// read with the agent's tokenizer: no stray line, ids are the names with \ as + (safe, unique),
// names are the escaped text, readable where that cannot be mistaken for another unit's name (two
// units that differ only in an escape, my\x2dapp vs my-app, get two names), and a failed one is
// named in the alarm label.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PluginRun } from '../../harness/plugin.js';
import { startSandbox, type Sandbox } from '../../harness/sandbox.js';

const SERVICES = 'systemdunits_service_units.service_unit_state';
const SAFE_ID = /^[A-Za-z0-9_.@:+-]+$/;

/** Paths whose escaped forms exercise the alphabet; the last makes the name exactly 255 long. */
const PATHS = ['/var/lib/my app/café=1', "/srv/it's \"quoted\"", '/opt/日本/🙂', '/a:b/c-d_e.f', `/x y/${'a'.repeat(236)}`];

let sb: Sandbox;
let plugin: PluginRun;
/** unit name → the text the operator meant (what the dimension name must read) */
const expected = new Map<string, string>();

/** What the agent keeps as it is in a label value or name: see LABEL_SAFE in test/unit/unit-names.test.ts. */
const AGENT_SAFE = /^(?:[A-Za-z0-9:_.@()[\]/ -]|[^\x00-\x7f])*$/u;

beforeAll(async () => {
  sb = await startSandbox();
  const description = 'Überwachung – 日本語 🙂 \'q\' "dq" = \\x2d';
  await sb.writeUnit('esc@.service', `[Unit]\nDescription=${description} %I\n[Service]\nExecStart=/bin/sleep infinity\n`);
  await sb.writeUnit('my\\x2dapp:v2.service', `[Unit]\nDescription=${description}\n[Service]\nExecStart=/bin/sleep infinity\n`);
  // The same name but for the escape: a unit of its own, which must not be shown alike.
  await sb.writeUnit('my-app:v2.service', '[Service]\nExecStart=/bin/sleep infinity\n');
  const long = `${'l'.repeat(255 - '.service'.length)}.service`;
  await sb.writeUnit(long, '[Service]\nExecStart=/bin/sleep infinity\n');
  await sb.writeUnit('fails@.service', '[Service]\nExecStart=/bin/false\n');
  await sb.daemonReload();
  const names: string[] = ['my\\x2dapp:v2.service', 'my-app:v2.service', long];
  expected.set('my\\x2dapp:v2.service', 'my/x2dapp:v2.service');
  expected.set('my-app:v2.service', 'my-app:v2.service');
  expected.set(long, long);
  // Escapes of what a name holds literally (-, _, ., :) or the agent would change (=, quotes,
  // runs of spaces) stay visible as /xNN; other text reads as itself.
  const shownPaths = [
    'esc@var-lib-my app-café/x3d1.service',
    'esc@srv-it/x27s /x22quoted/x22.service',
    'esc@opt-日本-🙂.service',
    'esc@a:b-c/x2dd_e.f.service',
    `esc@x y-${'a'.repeat(236)}.service`,
  ];
  for (const [i, p] of PATHS.entries()) {
    const name = (await sb.execOk('systemd-escape', '--template=esc@.service', '--path', p)).stdout.trim();
    names.push(name);
    expected.set(name, shownPaths[i]!);
  }
  // The long path really lands on the limit: one character more and systemd refuses the name.
  const longest = names.at(-1)!;
  expect(longest.length).toBe(255);
  const tooLong = `${longest.slice(0, -'.service'.length)}x.service`;
  const refused = await sb.exec('systemctl', 'start', tooLong);
  expect(refused.code).not.toBe(0);
  expect(refused.stderr).toMatch(/[Ii]nvalid|not valid/);
  await sb.execOk('systemctl', 'start', ...names);
  plugin = new PluginRun(['1'], { DBUS_SYSTEM_BUS_ADDRESS: sb.busAddress });
  await plugin.waitFor('every odd unit charted', () => {
    const dims = plugin.charts.get(SERVICES)?.dims;
    return dims && [...expected.keys()].every((n) => dims.has(n.replaceAll('\\', '+')));
  }, 20_000).catch((e) => {
    const dims = [...(plugin.charts.get(SERVICES)?.dims.keys() ?? [])].filter((d) => /esc|app|lll/.test(d));
    throw new Error(`${(e as Error).message}\nwanted ${[...expected.keys()].join(' | ')}\nhave ${dims.join(' | ')}`);
  });
}, 120_000);

afterAll(async () => {
  await plugin?.stop();
  await sb?.stop({ removeDir: true });
});

describe('odd unit names in real systemd', () => {
  it('are charted with id = name with \\ as +, and the escaped text as name, one name per unit', async () => {
    const chart = plugin.charts.get(SERVICES)!;
    for (const [unit, text] of expected) {
      const dim = chart.dims.get(unit.replaceAll('\\', '+'));
      expect(dim, unit).toBeDefined();
      expect(dim!.name, unit).toBe(text);
      expect(dim!.name, unit).toMatch(AGENT_SAFE);
      expect(plugin.lastValue(SERVICES, unit.replaceAll('\\', '+')), unit).toBe(1);
    }
  });

  it('give every dimension a safe, JSON-safe, unique id and a JSON-safe name', () => {
    const chart = plugin.charts.get(SERVICES)!;
    const ids = [...chart.dims.keys()];
    expect(new Set(ids).size).toBe(ids.length);
    const names = [...chart.dims.values()].map((d) => d.name);
    expect(new Set(names).size).toBe(names.length);
    for (const [id, d] of chart.dims) {
      expect(id).toMatch(SAFE_ID);
      expect(JSON.stringify(id)).toBe(`"${id}"`);
      expect(JSON.stringify(d.name)).toBe(`"${d.name}"`);
    }
  });

  it('name a failed instance readably in the alarm label, and keep every line valid', async () => {
    const name = (await sb.execOk('systemd-escape', '--template=fails@.service', 'bad day/ünïcödé')).stdout.trim();
    await sb.exec('systemctl', 'start', name);
    const id = name.replaceAll('\\', '+');
    await plugin.waitForValue(SERVICES, id, 5, 10_000);
    await plugin.waitFor('label', () => plugin.charts.get(SERVICES)!.labels.failed_units?.includes('fails@bad day-ünïcödé.service (exit-code status 1/FAILURE)'));
    expect(plugin.strayLines).toEqual([]);
    expect(plugin.protocolErrors).toEqual([]);
    // stderr says why it failed, and nothing else.
    const lines = plugin.stderr.split('\n').filter(Boolean);
    expect(lines.length).toBeGreaterThan(0);
    for (const l of lines) expect(l, l).toMatch(/^systemdunits\.plugin: fails@\S+ failed \(Result=exit-code, status=1\/FAILURE\)/);
  });
});
