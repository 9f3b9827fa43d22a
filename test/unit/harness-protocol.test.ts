// The harness's one reader of the plugin's output (harness/protocol.ts): every integration and e2e
// assertion on charts, samples and function answers goes through it, so it must read the protocol
// as the agent does.
import { describe, expect, it } from 'vitest';
import { ProtocolParser } from '../../harness/protocol.js';

const CHART = "CHART j.socket_unit_state '' 'Socket Unit State' 'state' 'socket' 'systemd.socket_unit_state' line 70001 1 '' 'systemdunits.plugin' 'systemdunits'\n";

describe('ProtocolParser', () => {
  it('reads charts, dimensions, labels, values and variables into samples', () => {
    const p = new ProtocolParser();
    p.push(CHART + "DIMENSION a.socket 'a.socket' absolute 1 1\nDIMENSION 'b+x.socket' 'b\\x.socket' absolute 1 1\n" +
      "CLABEL failed_units 'a.socket (exit-code)' 1\nCLABEL_COMMIT\n", 1);
    p.push("BEGIN j.socket_unit_state\nSET a.socket = 5\nSET 'b+x.socket' = 1\nVARIABLE CHART failed_units = 1\nEND\n", 2);
    p.push('BEGIN j.socket_unit_state 1000123\nSET a.socket = 1\nEND\n', 3);
    const c = p.charts.get('j.socket_unit_state')!;
    expect(c).toMatchObject({ title: 'Socket Unit State', units: 'state', family: 'socket', context: 'systemd.socket_unit_state', obsolete: false });
    expect(c.labels).toEqual({ failed_units: 'a.socket (exit-code)' });
    expect([...c.dims]).toEqual([['a.socket', { name: 'a.socket', obsolete: false }], ['b+x.socket', { name: 'b\\x.socket', obsolete: false }]]);
    expect(p.samplesOf('j.socket_unit_state')).toEqual([
      { chart: 'j.socket_unit_state', at: 2, elapsedUs: undefined, values: { 'a.socket': 5, 'b+x.socket': 1 }, variables: { failed_units: 1 } },
      { chart: 'j.socket_unit_state', at: 3, elapsedUs: 1000123, values: { 'a.socket': 1 }, variables: {} },
    ]);
    expect(p.protocolErrors).toEqual([]);
    expect(p.strayLines).toEqual([]);
    expect([p.setLines, p.batches]).toEqual([3, 2]);
  });

  it('reads a line cut across chunks when its end arrives', () => {
    const p = new ProtocolParser();
    p.push(CHART + 'DIMENSION a.socket a.socket absolute 1 1\nBEGIN j.socket_unit_state\nSET a.soc', 1);
    expect(p.setLines).toBe(0);
    p.push('ket = 5\nEND\n', 2);
    expect(p.samples.at(-1)?.values).toEqual({ 'a.socket': 5 });
    expect(p.lineTimes.at(-2)).toBe(2);
  });

  it('reports what the agent would punish: unknown or obsolete charts and dimensions, stray lines', () => {
    const p = new ProtocolParser();
    p.push('BEGIN nope\nEND\nDIMENSION x x absolute 1 1\n', 0);
    p.push(CHART + 'DIMENSION a.socket a.socket absolute 1 1 obsolete\nBEGIN j.socket_unit_state\nSET a.socket = 1\nSET b = 2\nEND\n', 0);
    p.push("CHART j.socket_unit_state '' 't' 'u' 'f' 'c' line 1 1 obsolete\nBEGIN j.socket_unit_state\nEND\n", 0);
    p.push('hello world\n\n', 0);
    expect(p.protocolErrors.map((e) => e.split(':')[0])).toEqual([
      'BEGIN of an unknown chart', 'DIMENSION outside a chart', 'SET of an unknown dimension', 'SET of an unknown dimension', 'BEGIN of an unknown chart',
    ]);
    expect(p.strayLines).toEqual(['hello world']); // the empty line is a heartbeat
  });

  it('keeps a function answer whole, protocol-looking lines in its body included', () => {
    const p = new ProtocolParser();
    p.push('FUNCTION_RESULT_BEGIN tx1 200 application/json 3\n{"a":\nSET x = 1\nbogus', 1);
    expect(p.answerTo('tx1')).toMatchObject({ status: 200, complete: false });
    p.push('\nFUNCTION_RESULT_END\n', 2);
    expect(p.answerTo('tx1')).toEqual({ tx: 'tx1', status: 200, contentType: 'application/json', expires: 3, body: '{"a":\nSET x = 1\nbogus', complete: true, at: 2 });
    expect([p.strayLines, p.protocolErrors, p.setLines]).toEqual([[], [], 0]);
  });

  it('light: keeps no lines or samples, hands SETs to its hook and caps stray lines', () => {
    const sets: Array<[string, number]> = [];
    const ends: Array<string | undefined> = [];
    const p = new ProtocolParser({ keepLines: false, keepSamples: false, maxStray: 2, hooks: { set: (id, v) => sets.push([id, v]), end: (c) => ends.push(c) } });
    p.push(CHART + "DIMENSION a a absolute 1 1\nBEGIN j.socket_unit_state\nSET a = 5\nSET 'q' = 2\nEND\n" + 'x'.repeat(300) + '\ny\nz\n', 0);
    expect(sets).toEqual([['a', 5], ['q', 2]]);
    expect(ends).toEqual(['j.socket_unit_state']);
    expect([p.lines.length, p.samples.length]).toEqual([0, 0]);
    expect(p.strayLines).toEqual(['x'.repeat(200), 'y']);
  });
});
