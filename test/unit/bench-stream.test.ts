// The benchmark's reader of the plugin's stdout: its start-up and latency figures come from it.
import { describe, expect, it } from 'vitest';
import { PluginStream } from '../../harness/plugin-stream.js';

const isBench = (n: string) => n.startsWith('t@');
const define = (chart: string, units: string[]) =>
  `CHART ${chart} '' 'Socket Unit State' 'state' 'socket' 'systemd.socket_unit_state' line 70001 1 '' 'systemdunits.plugin' 'systemdunits'\n` +
  units.map((u) => `DIMENSION ${u} '${u}' absolute 1 1\n`).join('');
const batch = (chart: string, values: Record<string, number>) =>
  `BEGIN ${chart}\n${Object.entries(values).map(([u, v]) => `SET ${u} = ${v}\n`).join('')}END\n`;

describe('PluginStream', () => {
  it('times a value change by the chunk that completed its line, even when the line is split', () => {
    const s = new PluginStream(new Set(['t@flip.socket']), isBench, 2);
    s.push(define('j.socket_unit_state', ['t@1.socket', 't@flip.socket']), 100);
    s.push(batch('j.socket_unit_state', { 't@1.socket': 1, 't@flip.socket': 1 }), 200);
    s.push('BEGIN j.socket_unit_state\nSET t@1.socket = 1\nSET t@fl', 300);
    s.push('ip.socket = 5\nEND\n', 400);
    expect(s.changes).toEqual([
      { unit: 't@flip.socket', value: 1, atUs: 200 },
      { unit: 't@flip.socket', value: 5, atUs: 400 },
    ]);
    expect(s.changeTo('t@flip.socket', 5, 0)?.atUs).toBe(400);
    expect(s.setLines).toBe(4);
  });

  it('records a change only when the value changes, and finds the first one after a moment', () => {
    const s = new PluginStream(new Set(['t@flip.socket']), isBench, 1);
    s.push(define('c', ['t@flip.socket']), 0);
    const at: Array<[number, number]> = [[1, 10], [5, 20], [5, 30], [1, 40], [5, 50]];
    for (const [v, t] of at) s.push(batch('c', { 't@flip.socket': v }), t);
    expect(s.changes.map((c) => c.atUs)).toEqual([10, 20, 40, 50]);
    expect(s.changeTo('t@flip.socket', 5, 21)?.atUs).toBe(50);
    expect(s.changeTo('t@flip.socket', 5, 51)).toBeUndefined();
    expect(s.lastValueOf('t@flip.socket')).toBe(5);
  });

  it('maps a watched unit through its dimension id, quoted or not', () => {
    const s = new PluginStream(new Set(['t@x.socket']), isBench, 1);
    s.push("CHART c '' 't' 'u' 'f' 'ctx' line 1 1\nDIMENSION t_x 't@x.socket' absolute 1 1\n", 0);
    s.push("BEGIN c\nSET 't_x' = 5\nEND\n", 7);
    expect(s.changeTo('t@x.socket', 5, 0)?.atUs).toBe(7);
  });

  it('calls the first batch complete only once every bench unit has a dimension and every chart has sent one', () => {
    const s = new PluginStream(new Set(), isBench, 2);
    let called = 0;
    s.onFirstComplete = () => called++;
    s.push(define('a', ['t@1.socket']), 1);
    s.push(batch('a', { 't@1.socket': 1 }), 2);
    expect(s.firstCompleteUs).toBeUndefined(); // one bench unit of two
    s.push(define('b', ['t@2.socket', 'other.socket']), 3);
    s.push(batch('a', { 't@1.socket': 1 }), 4);
    expect(s.firstCompleteUs).toBeUndefined(); // chart b has not sent a batch yet
    s.push(batch('b', { 't@2.socket': 1, 'other.socket': 1 }), 5);
    expect(s.firstCompleteUs).toBe(5);
    s.push(batch('a', { 't@1.socket': 1 }) + batch('b', { 't@2.socket': 1 }), 6);
    expect(s.firstCompleteUs).toBe(5);
    expect(called).toBe(1);
    expect(s.batches).toBe(5);
  });

  it('keeps lines the agent would reject, and skips function results and heartbeats', () => {
    const s = new PluginStream(new Set(), isBench, 0);
    s.push('FUNCTION_RESULT_BEGIN tx 200 application/json 0\n{"SET x = 1": 2}\nbogus\nFUNCTION_RESULT_END\n\n', 0);
    expect(s.strayLines).toEqual([]);
    expect(s.setLines).toBe(0);
    s.push('hello world\n', 1);
    expect(s.strayLines).toEqual(['hello world']);
  });
});
