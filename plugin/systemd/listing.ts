// systemd's answer to ListUnits / ListUnitsByPatterns, a(ssssssouso), decoded from the raw bytes of
// the reply's body (bus.ts hands them over). dbus-next's generic reader builds two nested arrays
// and ten strings per unit, then copies them all once more; at 20,000 units that was most of a
// resync's CPU and of the peak memory while listing. This reads only what the plugin keeps (the
// name and three state words, the words shared rather than copied) and steps over the rest.
//
// The bytes come from the bus: every length is checked against the body before it is used, and a
// body that does not parse is refused whole with a one-line error.

import { unitPath } from '../units/names.js';

/**
 * Bodies from this size up may be given back at once (see RawBody.release): larger than one read
 * of the socket (Node reads 64 KiB at a time), so the stream copied them together into a buffer of
 * their own. 1 MiB before: 1,000 units' 0.35 MB reply was then left to the GC, and outlived the
 * young collections (+0.35 MB of own memory a resync until a full GC).
 */
export const RELEASE_FROM = 64 * 1024;

/** The body of a message as received, from its first byte (8-aligned in the message). */
export class RawBody {
  constructor(
    readonly bytes: Buffer,
    readonly littleEndian: boolean,
  ) {}

  /**
   * Frees the bytes now, for a caller done with them (and with every unit decoded from them):
   * V8 frees a buffer only with the object that holds it, which dbus-next and the socket stream
   * keep for a while and which then outlives young collections; every resync's reply (3.4 MB at
   * 20,000 units) stayed until a full GC. Only a body that is most of a buffer of its own is
   * freed (a reply of RELEASE_FROM or more, which the stream copied together from its reads: the
   * message's header fields before it, nothing after); the buffer is detached, so every view of it
   * reads as empty from then on. Anything else is left to the GC.
   */
  release(): void {
    const b = this.bytes;
    const whole = b.buffer;
    if (b.length < RELEASE_FROM || b.byteOffset > 1024 || b.byteOffset + b.length !== whole.byteLength) return;
    try {
      structuredClone(whole, { transfer: [whole] }); // the copy owns the bytes, and is garbage at once
    } catch {
      // not transferable (a pooled buffer): left to the GC
    }
  }
}

/** One unit as listed by systemd. */
export interface ListedUnit {
  readonly name: string;
  /** Its D-Bus object, derived from the name (as systemd derives it): not kept per unit. */
  readonly path: string;
  readonly loadState: string;
  readonly activeState: string;
  readonly subState: string;
}

/** A listed unit: four fields, its object path worked out when asked for. */
class ListedRow implements ListedUnit {
  constructor(
    readonly name: string,
    readonly loadState: string,
    readonly activeState: string,
    readonly subState: string,
  ) {}

  get path(): string {
    return unitPath(this.name);
  }
}

export function listedUnit(name: string, loadState: string, activeState: string, subState: string): ListedUnit {
  return new ListedRow(name, loadState, activeState, subState);
}

export class ListingError extends Error {}

/**
 * systemd's load, active and sub state words (src/basic/unit-def.c): decoded once, shared by every
 * unit. Others (a newer systemd's) are decoded each time; the unit table interns those it keeps.
 */
const WORDS = [
  // load states
  'stub', 'loaded', 'not-found', 'bad-setting', 'error', 'merged', 'masked',
  // active states
  'active', 'reloading', 'inactive', 'failed', 'activating', 'deactivating', 'maintenance', 'refreshing',
  // sub states
  'dead', 'running', 'listening', 'exited', 'waiting', 'mounted', 'plugged', 'elapsed', 'abandoned',
  'start-pre', 'start', 'start-post', 'start-chown', 'stop', 'stop-pre', 'stop-post', 'stop-sigterm', 'stop-sigkill',
  'final-sigterm', 'final-sigkill', 'final-watchdog', 'stop-watchdog', 'reload', 'reload-signal', 'reload-notify',
  'auto-restart', 'auto-restart-queued', 'cleaning', 'condition', 'tentative', 'mounting', 'mounting-done',
  'remounting', 'unmounting', 'remounting-sigterm', 'remounting-sigkill', 'unmounting-sigterm', 'unmounting-sigkill',
  'activating-done', 'deactivating-sigterm', 'deactivating-sigkill',
];
/** The known words by length: a word is matched by comparing bytes, without making a string. */
const WORDS_BY_LENGTH: { bytes: Buffer; word: string }[][] = [];
for (const word of WORDS) (WORDS_BY_LENGTH[word.length] ??= []).push({ bytes: Buffer.from(word), word });

/**
 * The units in a ListUnits reply body. Each row is (name, description, load state, active state,
 * sub state, following, object path, job id, job type, job path); the object path is derived
 * from the name instead (systemd derives it the same way). The whole body is checked first, so a
 * malformed one throws a ListingError (a length past its end, a string without its terminating
 * NUL, a misaligned row) before any unit is taken; the units are then decoded one at a time as
 * they are iterated, each garbage as soon as the caller is done with it: a resync of 20,000 units
 * holds no copy of them.
 */
export function decodeUnitList(body: RawBody): UnitRows {
  return new UnitRows(body);
}

/** What a walk compares a row with: a unit as the caller knows it. */
export interface KnownUnit {
  readonly name: string;
  readonly loadState: string;
  readonly activeState: string;
  readonly subState: string;
}

/** A checked listing body (see decodeUnitList). */
export class UnitRows implements Iterable<ListedUnit> {
  readonly size: number;

  constructor(private readonly body: RawBody) {
    const check = new RowReader(body);
    let size = 0;
    while (check.next()) size++;
    this.size = size;
  }

  /** See RawBody.release: the caller is done with these units, and with every unit decoded from them. */
  release(): void {
    this.body.release();
  }

  *[Symbol.iterator](): Iterator<ListedUnit> {
    const r = new RowReader(this.body);
    while (r.next()) yield r.row();
  }

  /**
   * Visits every row in order, for a resync of units the caller mostly knows already: a row that
   * names `guess(i)` (what the caller saw at that place in its previous listing; systemd lists in
   * the same order while its units stay) with the same three states is visited as `same`, without
   * a string or an object made for it; any other row as `changed`, decoded, with `guess(i)` when it
   * names that unit.
   */
  walk<T extends KnownUnit>(guess: (i: number) => T | undefined, same: (unit: T, i: number) => void, changed: (row: ListedUnit, unit: T | undefined, i: number) => void): void {
    const r = new RowReader(this.body);
    for (let i = 0; r.next(); i++) {
      const unit = guess(i);
      if (unit === undefined || !r.equals(r.nameAt, r.nameEnd, unit.name)) changed(r.row(), undefined, i);
      else if (r.equals(r.loadAt, r.loadEnd, unit.loadState) && r.equals(r.activeAt, r.activeEnd, unit.activeState) && r.equals(r.subAt, r.subEnd, unit.subState)) same(unit, i);
      else changed(r.row(), unit, i);
    }
  }
}

/** Steps through the rows of a listing, checking every length; where the kept fields lie in the current row. */
class RowReader {
  private readonly b: Buffer;
  private readonly le: boolean;
  private pos = 8; // the array's elements are structs: 8-aligned, after padding even when there are none
  private readonly end: number;
  nameAt = 0;
  nameEnd = 0;
  loadAt = 0;
  loadEnd = 0;
  activeAt = 0;
  activeEnd = 0;
  subAt = 0;
  subEnd = 0;

  constructor(body: RawBody) {
    this.b = body.bytes;
    this.le = body.littleEndian;
    if (this.b.length < 4) throw new ListingError(`systemd's unit listing is malformed (${this.b.length} bytes)`);
    const arrayBytes = this.u32(0);
    this.end = 8 + arrayBytes;
    if (arrayBytes > 0 && this.end > this.b.length) throw new ListingError(`systemd's unit listing is malformed (it announces ${arrayBytes} bytes of units in a body of ${this.b.length})`);
  }

  /** Steps over the next row; false at the end of the listing. */
  next(): boolean {
    if (this.pos >= this.end) {
      if (this.pos !== this.end) this.fail('a unit that runs past the listing');
      return false;
    }
    this.pos = (this.pos + 7) & ~7;
    if (this.pos >= this.end) this.fail('padding after the last unit');
    this.nameAt = this.string();
    this.nameEnd = this.pos - 1;
    this.string(); // description
    this.loadAt = this.string();
    this.loadEnd = this.pos - 1;
    this.activeAt = this.string();
    this.activeEnd = this.pos - 1;
    this.subAt = this.string();
    this.subEnd = this.pos - 1;
    this.string(); // following
    this.string(); // object path
    this.pos = (this.pos + 3) & ~3;
    if (this.pos + 4 > this.end) this.fail('a job id past the end');
    this.pos += 4; // job id
    this.string(); // job type
    this.string(); // job path
    if (this.pos > this.end) this.fail('a unit that runs past the listing');
    return true;
  }

  /** The current row, decoded. */
  row(): ListedUnit {
    return new ListedRow(this.text(this.nameAt, this.nameEnd), this.word(this.loadAt, this.loadEnd), this.word(this.activeAt, this.activeEnd), this.word(this.subAt, this.subEnd));
  }

  text(at: number, end: number): string {
    return this.b.toString('utf8', at, end);
  }

  /**
   * Whether the bytes are `s`, compared in place. Only ASCII compares equal (unit names and state
   * words are ASCII): any other character decides nothing, and the row is decoded instead.
   */
  equals(at: number, end: number, s: string): boolean {
    if (end - at !== s.length) return false;
    const b = this.b;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80 || b[at + i] !== c) return false;
    }
    return true;
  }

  /** A state word: the shared copy of a known one, without making a string to find it. */
  word(at: number, end: number): string {
    const b = this.b;
    const length = end - at;
    // Byte by byte: Buffer.compare's argument checks cost more than these few bytes.
    for (const known of WORDS_BY_LENGTH[length] ?? []) {
      const w = known.bytes;
      let i = 0;
      while (i < length && b[at + i] === w[i]) i++;
      if (i === length) return known.word;
    }
    return b.toString('utf8', at, end);
  }

  /** A 32-bit length at `at` (within the body: checked by the caller). Byte by byte: readUInt32*'s checks cost more. */
  private u32(at: number): number {
    const b = this.b;
    return this.le ? (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0 : ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
  }

  /** Steps over one string (or object path); returns where its bytes start. */
  private string(): number {
    this.pos = (this.pos + 3) & ~3;
    if (this.pos + 4 > this.end) this.fail('a string past the end');
    const length = this.u32(this.pos);
    const at = this.pos + 4;
    if (length > this.end - at - 1) this.fail('a string longer than the listing');
    if (this.b[at + length] !== 0) this.fail('a string without its NUL');
    this.pos = at + length + 1;
    return at;
  }

  private fail(what: string): never {
    throw new ListingError(`systemd's unit listing is malformed (${what} at byte ${this.pos} of ${this.b.length})`);
  }
}

/** The raw body of a reply whose signature bus.ts hands over undecoded, or undefined. */
export function rawBodyOf(body: readonly unknown[]): RawBody | undefined {
  const raw = (body[0] as unknown[][] | undefined)?.[0]?.[0];
  return raw instanceof RawBody ? raw : undefined;
}
