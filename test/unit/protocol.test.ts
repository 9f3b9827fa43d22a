import { PassThrough, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ProtocolWriter, SetBlock, beginWords, safeId, safeWord } from '../../plugin/netdata/protocol.js';
import { tokenize } from '../../plugin/netdata/requests.js';

function capture(): { writer: ProtocolWriter; text: () => string } {
  const out = new PassThrough();
  const chunks: string[] = [];
  out.on('data', (c: Buffer) => chunks.push(c.toString()));
  return { writer: new ProtocolWriter(out), text: () => chunks.join('') };
}

const chart = {
  fullId: 'systemdunits_service_units.socket_unit_state',
  title: "Socket Unit State (1: active, 2: inactive)",
  units: 'state',
  family: 'socket',
  context: 'systemd.socket_unit_state',
  chartType: 'line' as const,
  priority: 70001,
  updateEvery: 1,
  plugin: 'systemdunits.plugin',
  module: 'systemdunits',
};

describe('protocol writer', () => {
  it('writes a CHART line whose words the agent tokenizes into the 12 fields', () => {
    const { writer, text } = capture();
    writer.chart(chart).flush();
    const words = tokenize(text().trimEnd());
    expect(words).toEqual([
      'CHART',
      'systemdunits_service_units.socket_unit_state',
      '',
      'Socket Unit State (1: active, 2: inactive)',
      'state',
      'socket',
      'systemd.socket_unit_state',
      'line',
      '70001',
      '1',
      '',
      'systemdunits.plugin',
      'systemdunits',
    ]);
  });

  it('marks obsolete charts and dimensions in the options field', () => {
    const { writer, text } = capture();
    writer.chart(chart, true).dimension({ id: 'a.socket', name: 'a.socket', algorithm: 'absolute' }, true).flush();
    const [c, d] = text().trimEnd().split('\n').map(tokenize);
    expect(c![10]).toBe('obsolete');
    expect(d).toEqual(['DIMENSION', 'a.socket', 'a.socket', 'absolute', '1', '1', 'obsolete']);
  });

  it('writes BEGIN without elapsed time first, then with it, and integer SETs', () => {
    const { writer, text } = capture();
    writer.begin(chart.fullId).set('a.socket', 5).chartVariable('failed_units', 1).end();
    writer.begin(chart.fullId, 1000123.7).set('a.socket', 1.9).end().flush();
    expect(text()).toBe(
      'BEGIN systemdunits_service_units.socket_unit_state\nSET a.socket = 5\nVARIABLE CHART failed_units = 1\nEND\n' +
        'BEGIN systemdunits_service_units.socket_unit_state 1000123\nSET a.socket = 1\nEND\n',
    );
  });

  it('keeps quotes, backslashes, = and control characters out of every word', () => {
    const { writer, text } = capture();
    const nasty = `my\\x2d'app"=1\t\n.socket`;
    writer.dimension({ id: nasty, name: nasty, algorithm: 'absolute' }).label('failed units', nasty).flush();
    const out = text();
    expect(out.trimEnd().split('\n')).toHaveLength(2);
    for (const line of out.trimEnd().split('\n')) {
      const inner = line.replace(/^(\S+)/, '').replace(/'[^']*'/g, (w) => w.slice(1, -1));
      expect(inner).not.toMatch(/["\\=\t]/);
    }
    const [dim] = out.split('\n').map(tokenize);
    expect(dim![1]).toMatch(/^[A-Za-z0-9_.@:+-]+$/);
    expect(tokenize(out.split('\n')[1]!)[1]).toBe('failed_units');
  });

  it('safeId and safeWord are total', () => {
    expect(safeId('')).toBe('_');
    expect(safeId('a b=c')).toBe('a_b_c');
    expect(safeWord("it's")).toBe('it_s');
  });

  it('wraps function results as one JSON line the end keyword cannot cut short', () => {
    const { writer, text } = capture();
    const json = { error_message: 'a\nFUNCTION_RESULT_END\nb', FUNCTION_RESULT_END: 1 };
    writer.functionResult({ transaction: 'tx1', status: 404, expires: 0, json }).flush();
    const lines = text().trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toBe('FUNCTION_RESULT_BEGIN tx1 404 application/json 0');
    expect(lines[1]).not.toContain('FUNCTION_RESULT_END');
    expect(JSON.parse(lines[1]!)).toEqual(json);
    expect(lines[2]).toBe('FUNCTION_RESULT_END');
  });

  it('writes a batch in one write and nothing when empty', () => {
    const out = new PassThrough();
    let writes = 0;
    out.on('data', () => writes++);
    const writer = new ProtocolWriter(out);
    writer.flush();
    writer.begin('a.b').set('x', 1).end().flush();
    return new Promise<void>((resolve) =>
      setImmediate(() => {
        expect(writes).toBe(1);
        resolve();
      }),
    );
  });

  it('writes a SET block between other lines, with values patched in place', () => {
    const { writer, text } = capture();
    const block = new SetBlock(['a.socket', 'b"bad.socket', 'c'], [1, 2, 3]);
    writer.begin('x.y', 1000).setBlock(block).chartVariable('failed_units', 0).end().flush();
    block.set(1, 5);
    block.set(2, 1);
    writer.begin('x.y', 1000).setBlock(block).end().flush();
    expect(text()).toBe(
      'BEGIN x.y 1000\nSET a.socket = 1\nSET b_bad.socket = 2\nSET c = 3\nVARIABLE CHART failed_units = 0\nEND\n' +
        'BEGIN x.y 1000\nSET a.socket = 1\nSET b_bad.socket = 5\nSET c = 1\nEND\n',
    );
    expect(() => block.set(0, 10)).toThrow(RangeError);
  });

  it('never touches bytes that stdout has not taken yet', () => {
    // A pipe that is full: writes stay queued (by reference) until released.
    const written: Buffer[] = [];
    const pending: Array<() => void> = [];
    const out = new Writable({
      highWaterMark: 1,
      writev(chunks, done) {
        for (const c of chunks) written.push(Buffer.from(c.chunk as Buffer)); // copied only when taken
        pending.push(done);
      },
      write(chunk, _enc, done) {
        written.push(Buffer.from(chunk as Buffer));
        pending.push(done);
      },
    });
    const writer = new ProtocolWriter(out);
    const block = new SetBlock(['a'], [1]);
    writer.begin('x.y').flush(); // occupies the stream: later writes queue up
    writer.setBlock(block).end().flush();
    expect(out.writableLength).toBeGreaterThan(0);
    block.set(0, 5); // the next sample's patch, and its batch, while the previous one is still queued
    writer.begin('x.y', 7).setBlock(block).end().flush();
    while (pending.length) pending.shift()!();
    expect(Buffer.concat(written).toString()).toBe('BEGIN x.y\nSET a = 1\nEND\nBEGIN x.y 7\nSET a = 5\nEND\n');
    // Written, those buffers are taken up again, and what is queued then is kept as well.
    for (let i = 0; i < 4; i++) writer.begin('x.y', i).end().flush();
    const queued = 'BEGIN x.y 0\nEND\nBEGIN x.y 1\nEND\nBEGIN x.y 2\nEND\nBEGIN x.y 3\nEND\n';
    while (pending.length) pending.shift()!();
    expect(Buffer.concat(written).toString()).toBe('BEGIN x.y\nSET a = 1\nEND\nBEGIN x.y 7\nSET a = 5\nEND\n' + queued);
  });

  it('writes a large SET block by reference, and never patches it while stdout holds it', () => {
    const written: Buffer[] = [];
    const pending: Array<() => void> = [];
    const out = new Writable({
      highWaterMark: 1,
      writev(chunks, done) {
        written.push(Buffer.concat(chunks.map((c) => Buffer.from(c.chunk as Buffer)))); // copied only when taken
        pending.push(done);
      },
      write(chunk, _enc, done) {
        written.push(Buffer.from(chunk as Buffer));
        pending.push(done);
      },
    });
    const writer = new ProtocolWriter(out);
    const ids = Array.from({ length: 2000 }, (_, i) => `unit-${i}.service`); // ~50 KB of SET lines
    const block = new SetBlock(ids, ids.map(() => 1));
    const lines = (values: number[]) => ids.map((id, i) => `SET ${id} = ${values[i]}\n`).join('');
    writer.begin('x.y').flush(); // occupies the stream: later writes queue up
    writer.begin('x.y', 1).setBlock(block).chartVariable('v', 1).end().flush();
    expect(out.writableLength).toBeGreaterThan(0);
    block.set(1999, 5); // the next sample's patch while the previous batch is still queued
    writer.begin('x.y', 2).setBlock(block).end().flush();
    while (pending.length) pending.shift()!();
    block.set(0, 3); // written: patched in place again
    writer.begin('x.y', 3).setBlock(block).end().flush();
    while (pending.length) pending.shift()!();
    const v = (last: number, first = 1) => ids.map((_, i) => (i === 1999 ? last : i === 0 ? first : 1));
    expect(Buffer.concat(written).toString()).toBe(
      'BEGIN x.y\n' +
        `BEGIN x.y 1\n${lines(v(1))}VARIABLE CHART v = 1\nEND\n` +
        `BEGIN x.y 2\n${lines(v(5))}END\n` +
        `BEGIN x.y 3\n${lines(v(5, 3))}END\n`,
    );
  });

  it('writes a batch larger than 64 KiB in parts that end at line ends', () => {
    const out = new PassThrough();
    const chunks: string[] = [];
    out.on('data', (c: Buffer) => chunks.push(c.toString()));
    const writer = new ProtocolWriter(out);
    const expected: string[] = [];
    for (let i = 0; i < 5000; i++) {
      writer.beginRendered(`BEGIN chart_${i}.x`, 1_000_000 + i).rendered(`SET d = ${i}`);
      expected.push(`BEGIN chart_${i}.x ${1_000_000 + i}\nSET d = ${i}\n`);
    }
    writer.flush();
    expect(chunks.join('')).toBe(expected.join(''));
    expect(chunks.length).toBeGreaterThan(1);
    for (const c of chunks) expect(c.endsWith('\n') && c.length <= 64 * 1024).toBe(true);
  });

  it('renders BEGIN from its words with the elapsed time as int() writes it', () => {
    const { writer, text } = capture();
    const words = beginWords('a b.c');
    for (const us of [undefined, 0, 7, 1000154, 999873.9, 2 ** 53, -3, NaN]) writer.beginRendered(words, us);
    writer.flush();
    const begins = ['BEGIN a_b.c', 'BEGIN a_b.c 0', 'BEGIN a_b.c 7', 'BEGIN a_b.c 1000154', 'BEGIN a_b.c 999873', `BEGIN a_b.c ${2 ** 53}`, 'BEGIN a_b.c -3', 'BEGIN a_b.c 0'];
    expect(text()).toBe(begins.join('\n') + '\n');
  });

  it('grows its buffer for a large batch, and lets it go after', () => {
    const { writer, text } = capture();
    const big = 'x'.repeat(3 * 1024 * 1024) + 'é';
    writer.rendered(big).flush();
    writer.begin('a.b', 1).end().flush();
    writer.begin('a.b', 2).end().flush();
    expect(text()).toBe(`${big}\nBEGIN a.b 1\nEND\nBEGIN a.b 2\nEND\n`);
  });
});
