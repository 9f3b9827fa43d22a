// One chart's life on the protocol (netdata/chart.ts), as every chart writer gets it.
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { Chart } from '../../plugin/netdata/chart.js';
import { ProtocolWriter, type ChartLine } from '../../plugin/netdata/protocol.js';

const LINE: ChartLine = { fullId: 'systemdunits_j.c', title: 'T', units: 'u', family: 'f', context: 'x.c', chartType: 'line', priority: 1, updateEvery: 1, plugin: 'p', module: 'm' };
const lineOf = (id: string) => ({ id, name: id, algorithm: 'absolute' as const });

function harness(options = {}) {
  const out = new PassThrough();
  let text = '';
  out.on('data', (c: Buffer) => (text += c.toString()));
  const writer = new ProtocolWriter(out);
  const chart = new Chart(writer, LINE, lineOf, options);
  return {
    chart,
    /** One sample's lines, first words only where that is enough. */
    sample(nowUs: number): string[] {
      text = '';
      chart.sample(nowUs);
      writer.flush();
      out.read();
      return text.split('\n').filter((l) => l !== '');
    },
  };
}

describe('a chart', () => {
  it('is defined before its first sample, then only sampled; the first BEGIN has no elapsed time', () => {
    const h = harness();
    h.chart.setLabel('job', 'j');
    h.chart.addDimension('a', undefined, 3);
    h.chart.setVariable('v', 7);
    expect(h.sample(1_000_000)).toEqual([
      "CHART systemdunits_j.c '' 'T' 'u' 'f' 'x.c' line 1 1 '' 'p' 'm'",
      "CLABEL 'job' 'j' 1",
      'CLABEL_COMMIT',
      "DIMENSION a 'a' absolute 1 1",
      'BEGIN systemdunits_j.c',
      'SET a = 3',
      'VARIABLE CHART v = 7',
      'END',
    ]);
    expect(h.sample(2_500_000)).toEqual(['BEGIN systemdunits_j.c 1500000', 'SET a = 3', 'VARIABLE CHART v = 7', 'END']);
  });

  it('re-sends only CHART and labels when only a label changed; with variables if asked', () => {
    const h = harness({ variablesWithLabels: true });
    h.chart.addDimension('a', undefined);
    h.chart.setLabel('l', 'one');
    h.chart.setVariable('v', 1);
    h.sample(1);
    h.chart.setLabel('l', 'one');
    expect(h.sample(2)[0]).toBe('BEGIN systemdunits_j.c 1');
    h.chart.setLabel('l', 'two');
    expect(h.sample(3).slice(0, 5)).toEqual(["CHART systemdunits_j.c '' 'T' 'u' 'f' 'x.c' line 1 1 '' 'p' 'm'", "CLABEL 'l' 'two' 1", 'CLABEL_COMMIT', 'VARIABLE CHART v = 1', 'BEGIN systemdunits_j.c 1']);
  });

  it('retires a dimension with the next definition, and goes obsolete when none is left; comes back anew', () => {
    const h = harness({ digits: true });
    h.chart.addDimension('a', undefined, 1);
    h.chart.addDimension('b', undefined, 2);
    h.sample(1);
    h.chart.retireWhere((key) => key === 'a');
    const next = h.sample(2);
    expect(next.filter((l) => l.startsWith('DIMENSION'))).toEqual(["DIMENSION b 'b' absolute 1 1", "DIMENSION a 'a' absolute 1 1 obsolete"]);
    expect(next.filter((l) => l.startsWith('SET'))).toEqual(['SET b = 2']);
    h.chart.retireWhere((key) => key === 'b');
    expect(h.sample(3)).toEqual([
      "CHART systemdunits_j.c '' 'T' 'u' 'f' 'x.c' line 1 1 '' 'p' 'm'",
      "DIMENSION b 'b' absolute 1 1 obsolete",
      "CHART systemdunits_j.c '' 'T' 'u' 'f' 'x.c' line 1 1 obsolete 'p' 'm'",
    ]);
    expect(h.sample(4)).toEqual([]);
    expect(h.chart.active).toBe(false);
    h.chart.addDimension('c', undefined, 5);
    expect(h.sample(5).slice(-4)).toEqual(["DIMENSION c 'c' absolute 1 1", 'BEGIN systemdunits_j.c', 'SET c = 5', 'END']);
  });

  it('keeps each value with its dimension when dimensions are retired from a digit chart (values then live outside the block)', () => {
    const h = harness({ digits: true });
    for (const [key, value] of [['a', 1], ['b', 2], ['c', 3], ['d', 4]] as const) h.chart.addDimension(key, undefined, value);
    h.sample(1);
    h.chart.setValue(2, 5); // c, patched in the block
    h.chart.retireWhere((key) => key === 'a' || key === 'c');
    expect([0, 1].map((i) => [h.chart.key(i), h.chart.value(i)])).toEqual([['b', 2], ['d', 4]]);
    h.chart.setValue(1, 6); // d, now second
    h.chart.addDimension('e', undefined, 7);
    const next = h.sample(2);
    expect(next.filter((l) => l.startsWith('SET'))).toEqual(['SET b = 2', 'SET d = 6', 'SET e = 7']);
    expect(next.filter((l) => l.endsWith('obsolete'))).toEqual(["DIMENSION a 'a' absolute 1 1 obsolete", "DIMENSION c 'c' absolute 1 1 obsolete"]);
    h.chart.setValue(0, 1);
    expect(h.sample(3)).toEqual(['BEGIN systemdunits_j.c 1', 'SET b = 1', 'SET d = 6', 'SET e = 7', 'END']);
  });

  it('patches a digit chart\'s SET block in place when a value changes', () => {
    const h = harness({ digits: true });
    const a = h.chart.addDimension('a', undefined, 1);
    h.chart.addDimension('b', undefined, 1);
    h.sample(1);
    h.chart.setValue(a, 5);
    expect(h.sample(2)).toEqual(['BEGIN systemdunits_j.c 1', 'SET a = 5', 'SET b = 1', 'END']);
  });

  it('reuses a sample\'s rendered lines only while its values, variables and labels stand', () => {
    const h = harness({ variablesWithLabels: true });
    const a = h.chart.addDimension('a', undefined, 1);
    h.chart.addDimension('b', undefined, 2);
    h.chart.setVariable('v', 1);
    h.chart.setLabel('l', 'x');
    h.sample(1_000_000);
    expect(h.sample(2_000_000)).toEqual(['BEGIN systemdunits_j.c 1000000', 'SET a = 1', 'SET b = 2', 'VARIABLE CHART v = 1', 'END']);
    h.chart.setValue(a, 7);
    expect(h.sample(3_000_000)).toEqual(['BEGIN systemdunits_j.c 1000000', 'SET a = 7', 'SET b = 2', 'VARIABLE CHART v = 1', 'END']);
    h.chart.setVariable('v', 2);
    expect(h.sample(4_500_000)).toEqual(['BEGIN systemdunits_j.c 1500000', 'SET a = 7', 'SET b = 2', 'VARIABLE CHART v = 2', 'END']);
    h.chart.setLabel('l', 'y');
    expect(h.sample(5_500_000)).toEqual([
      "CHART systemdunits_j.c '' 'T' 'u' 'f' 'x.c' line 1 1 '' 'p' 'm'",
      "CLABEL 'l' 'y' 1",
      'CLABEL_COMMIT',
      'VARIABLE CHART v = 2',
      'BEGIN systemdunits_j.c 1000000',
      'SET a = 7',
      'SET b = 2',
      'VARIABLE CHART v = 2',
      'END',
    ]);
    h.chart.addDimension('c', undefined, 3);
    expect(h.sample(6_500_000).slice(-6)).toEqual(['BEGIN systemdunits_j.c 1000000', 'SET a = 7', 'SET b = 2', 'SET c = 3', 'VARIABLE CHART v = 2', 'END']);
  });

  it('names dimensions through the writer only when a definition is written, a retired one when it is retired', () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (c: Buffer) => (text += c.toString()));
    const writer = new ProtocolWriter(out);
    const asked: string[] = [];
    const chart = new Chart(writer, LINE, (key: string) => (asked.push(key), { id: `id_${key}`, name: `name ${key}`, algorithm: 'absolute' as const }), { digits: true });
    chart.addDimension('a', undefined, 1);
    chart.addDimension('b', undefined, 2);
    chart.sample(1);
    chart.sample(2);
    expect(asked).toEqual(['a', 'b']);
    chart.retireWhere((key) => key === 'a');
    expect(asked).toEqual(['a', 'b', 'a']);
    chart.sample(3);
    writer.flush();
    expect(asked).toEqual(['a', 'b', 'a', 'b']);
    expect(text).toContain("DIMENSION id_a 'name a' absolute 1 1 obsolete\nBEGIN systemdunits_j.c 1\nSET id_b = 2\nEND\n");
  });
});
