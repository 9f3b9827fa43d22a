// The unit listing decoder (plugin/systemd/listing.ts) and bus.ts's hand-over of the raw body,
// against bodies and whole messages made by dbus-next's own marshaller: the same units as the
// library's generic reader, and every malformed body refused with a ListingError.

import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import '../../plugin/systemd/bus.js'; // installs the raw-body reader
import { decodeUnitList, ListingError, RawBody, rawBodyOf, RELEASE_FROM } from '../../plugin/systemd/listing.js';
import { unitPath } from '../../plugin/units/names.js';

const require = createRequire(import.meta.url);
const marshall = require('dbus-next/lib/marshall.js') as (signature: string, data: unknown[]) => Buffer;
const message = require('dbus-next/lib/message.js') as { marshall(m: object): [Buffer, unknown[]]; unmarshall(b: Buffer): { body: unknown[]; signature: string } };
const { messageToJsFmt } = require('dbus-next/lib/marshall-compat.js') as { messageToJsFmt(m: object): { body: unknown[] } };

type Row = [string, string, string, string, string, string, string, number, string, string];
const row = (name: string, load = 'loaded', active = 'active', sub = 'listening', job: [number, string, string] = [0, '', '/']): Row => [
  name,
  `the unit ${name}`,
  load,
  active,
  sub,
  '',
  unitPath(name),
  ...job,
];
const ROWS: Row[] = [
  row('a.socket'),
  row('b@1.service', 'loaded', 'inactive', 'dead'),
  row('caf\\xc3\\xa9.service', 'not-found', 'failed', 'failed', [7, 'start', '/org/freedesktop/systemd1/job/7']),
  row('x.mount', 'loaded', 'some-new-state', 'some-new-sub'),
  row('é.target', 'masked', 'active', 'active'),
];
const body = (rows: Row[]): Buffer => marshall('a(ssssssouso)', [rows]);
const plain = (units: ReturnType<typeof decodeUnitList>) => [...units].map((u) => ({ name: u.name, path: u.path, load: u.loadState, active: u.activeState, sub: u.subState }));
const expected = (rows: Row[]) => rows.map((r) => ({ name: r[0], path: r[6], load: r[2], active: r[3], sub: r[4] }));

describe('the unit listing decoder', () => {
  it('reads what the generic reader reads, with the object path derived from the name', () => {
    expect(plain(decodeUnitList(new RawBody(body(ROWS), true)))).toEqual(expected(ROWS));
    expect([...decodeUnitList(new RawBody(body([]), true))]).toEqual([]);
    // the state words are shared, not a copy per unit
    const [a, b] = [...decodeUnitList(new RawBody(body([row('a.socket'), row('b.socket')]), true))];
    expect(Object.is(a!.activeState, b!.activeState)).toBe(true);
  });

  it('gets the raw body from dbus-next for a(ssssssouso), through both of its passes; other bodies as before', () => {
    const reply = message.marshall({ type: 2, serial: 5, replySerial: 3, destination: ':1.9', signature: 'a(ssssssouso)', body: [ROWS] });
    const got = messageToJsFmt(message.unmarshall(reply[0]));
    const raw = rawBodyOf(got.body);
    expect(raw).toBeInstanceOf(RawBody);
    expect(plain(decodeUnitList(raw!))).toEqual(expected(ROWS));
    const other = message.marshall({ type: 2, serial: 6, replySerial: 4, destination: ':1.9', signature: 'a(ss)', body: [[['a', 'b']]] });
    expect(messageToJsFmt(message.unmarshall(other[0])).body).toEqual([[['a', 'b']]]);
  });

  it('reads big-endian bodies', () => {
    // One row by hand: strings and the job id as big-endian u32 lengths.
    const parts: number[] = [];
    const pad = (n: number) => {
      while (parts.length % n) parts.push(0);
    };
    const u32 = (v: number) => parts.push((v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255);
    const str = (s: string) => {
      pad(4);
      const bytes = Buffer.from(s);
      u32(bytes.length);
      parts.push(...bytes, 0);
    };
    u32(0); // array length, patched below
    pad(8);
    for (const f of row('big.socket', 'loaded', 'failed', 'failed')) {
      if (typeof f === 'number') {
        pad(4);
        u32(f);
      } else str(f);
    }
    const b = Buffer.from(parts);
    b.writeUInt32BE(b.length - 8, 0);
    expect(plain(decodeUnitList(new RawBody(b, false)))).toEqual(expected([row('big.socket', 'loaded', 'failed', 'failed')]));
  });

  it('refuses every truncated body, any announced length past the end, and strings without their NUL', () => {
    const good = body(ROWS);
    for (let n = 0; n < good.length; n++) {
      const cut = Buffer.from(good.subarray(0, n));
      // A cut that keeps the announced length is past the end.
      expect(() => decodeUnitList(new RawBody(cut, true)), `cut at ${n}`).toThrow(ListingError);
      if (n < 8) continue;
      // With the length fitted: the rows before the cut when it falls between two, else refused.
      cut.writeUInt32LE(n - 8, 0);
      try {
        const units = plain(decodeUnitList(new RawBody(cut, true)));
        expect(units, `cut at ${n}, length fitted`).toEqual(expected(ROWS.slice(0, units.length)));
        expect(body(ROWS.slice(0, units.length)).length, `cut at ${n}, length fitted`).toBe(n);
      } catch (err) {
        expect(err, `cut at ${n}, length fitted`).toBeInstanceOf(ListingError);
      }
    }
    const huge = Buffer.from(good);
    huge.writeUInt32LE(0xffffffff, 0);
    expect(() => decodeUnitList(new RawBody(huge, true))).toThrow(/announces 4294967295 bytes/);
    const noNul = Buffer.from(good);
    noNul[8 + 4 + 'a.socket'.length] = 0x41;
    expect(() => decodeUnitList(new RawBody(noNul, true))).toThrow(/without its NUL/);
    const longString = Buffer.from(good);
    longString.writeUInt32LE(0x7fffffff, 8);
    expect(() => decodeUnitList(new RawBody(longString, true))).toThrow(/longer than the listing/);
  });

  it('walk: rows naming the guessed unit with its states are visited as the same unit, every other row decoded', () => {
    const rows = [row('a.socket'), row('b@1.service', 'loaded', 'inactive', 'dead'), row('c.socket', 'loaded', 'failed', 'failed'), row('é.target', 'loaded', 'active', 'active'), row('d.socket')];
    const known = (name: string, load = 'loaded', active = 'active', sub = 'listening') => ({ name, loadState: load, activeState: active, subState: sub });
    const a = known('a.socket');
    const b = known('b@1.service', 'loaded', 'active', 'running'); // it stopped since
    const c = known('x.socket', 'loaded', 'failed', 'failed'); // another unit at that place now
    const e = known('é.target', 'loaded', 'active', 'active'); // not ASCII: always decoded
    const guesses = [a, b, c, e, undefined];
    const seen: string[] = [];
    decodeUnitList(new RawBody(body(rows), true)).walk(
      (i) => guesses[i],
      (unit, i) => seen.push(`${i} same ${unit.name}`),
      (u, unit, i) => seen.push(`${i} changed ${u.name} ${u.loadState}/${u.activeState}/${u.subState}${unit ? ` was ${unit.activeState}/${unit.subState}` : ''}`),
    );
    expect(seen).toEqual([
      '0 same a.socket',
      '1 changed b@1.service loaded/inactive/dead was active/running',
      '2 changed c.socket loaded/failed/failed',
      '3 changed é.target loaded/active/active',
      '4 changed d.socket loaded/active/listening',
    ]);
    // A name that is a prefix of the row's, or as long with one byte off, is another unit.
    const near: string[] = [];
    decodeUnitList(new RawBody(body([row('ab.socket'), row('ab.socket')]), true)).walk(
      (i) => [known('a.socket'), known('ac.socket')][i],
      (unit) => near.push(`same ${unit.name}`),
      (u, unit) => near.push(`changed ${u.name} ${unit?.name}`),
    );
    expect(near).toEqual(['changed ab.socket undefined', 'changed ab.socket undefined']);
  });

  it('release: a big reply body that is its buffer (after its header fields) is freed at once; anything else is left alone', () => {
    const many = Array.from({ length: 8000 }, (_, i) => row(`unit-number-${i}.socket`));
    const own = (rows: Row[], before = 120, after = 0) => {
      const b = body(rows);
      const whole = Buffer.alloc(before + b.length + after); // as the socket stream copies a big message together
      b.copy(whole, before);
      return whole.subarray(before, before + b.length);
    };
    const big = own(many);
    expect(big.length).toBeGreaterThanOrEqual(RELEASE_FROM);
    const units = decodeUnitList(new RawBody(big, true));
    expect(units.size).toBe(8000);
    units.release();
    expect(big.buffer.byteLength).toBe(0); // detached: the bytes are gone
    // 1,000 bench sockets' listing (~0.35 MB, 2,092 units): freed too, not left to a full GC.
    const mid = own(many.slice(0, 2000));
    expect(mid.length).toBeLessThan(1 << 20);
    decodeUnitList(new RawBody(mid, true)).release();
    expect(mid.buffer.byteLength).toBe(0);
    // Left alone: a small body, one with more bytes after it in its buffer (another message's),
    // one far into its buffer.
    for (const b of [own(ROWS), own(many, 120, 64), own(many, 4096)]) {
      const size = b.buffer.byteLength;
      new RawBody(b, true).release();
      expect(b.buffer.byteLength).toBe(size);
      expect(decodeUnitList(new RawBody(b, true)).size).toBeGreaterThan(0);
    }
  });

  it('any corrupted byte: the units decoded, or a one-line ListingError; never another error', () => {
    const good = body(ROWS);
    let refused = 0;
    for (let i = 0; i < good.length; i++) {
      for (const v of [0, 1, 0x7f, 0xff]) {
        const bad = Buffer.from(good);
        bad[i] = v;
        try {
          const units = decodeUnitList(new RawBody(bad, true));
          expect(units.size).toBeLessThanOrEqual(ROWS.length);
          expect([...units].length).toBe(units.size);
        } catch (err) {
          expect(err, `byte ${i} = ${v}`).toBeInstanceOf(ListingError);
          expect((err as Error).message).not.toContain('\n');
          refused++;
        }
      }
    }
    expect(refused).toBeGreaterThan(0);
  });
});
