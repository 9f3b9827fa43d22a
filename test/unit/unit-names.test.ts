// Property-based tests over systemd's whole unit-name alphabet: letters, digits, `:-_.\`, `@`
// between template and instance, `\xNN` escapes of any byte (systemd-escape's output for any
// text, UTF-8 included), up to the 255-character limit. Every line the job writes for such units
// must survive the agent's tokenizer word for word; dimension ids must be safe, JSON-safe, unique
// in their chart and the same whatever other units exist and in whatever order they arrived;
// names must read as the text that was escaped, and no two units may get the same name.
import fc from 'fast-check';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { UNIT_STATE_CHARTS } from '../../charts/unit-state.js';
import { defaultJob } from '../../plugin/config/index.js';
import { Job } from '../../plugin/writers/job.js';
import { dimensionName } from '../../plugin/writers/names.js';
import { ProtocolWriter } from '../../plugin/netdata/protocol.js';
import { tokenize } from '../../plugin/netdata/requests.js';
import { decodeUnitName, readableUnitName, unitDimensionId } from '../../plugin/units/names.js';
import { UnitTable, type UnitSnapshot } from '../../plugin/units/table.js';

/** systemd's UNIT_NAME_MAX is 256 bytes with the terminating NUL. */
const NAME_MAX = 255;
const TYPES = UNIT_STATE_CHARTS.map((k) => k.unitType);
const STATES = ['active', 'inactive', 'failed', 'activating', 'deactivating', 'reloading', 'maintenance', 'refreshing', 'bogus'];
const RESULTS = ['success', 'exit-code', 'resources', 'signal', 'core-dump', "we'ird = \"result\"\\"];

/** systemd-escape TEXT (unit_name_escape): keeps [A-Za-z0-9:_.] (no leading .), / → -, else \xNN per UTF-8 byte. */
function systemdEscape(text: string): string {
  let out = '';
  const bytes = Buffer.from(text, 'utf8');
  bytes.forEach((b, i) => {
    const c = String.fromCharCode(b);
    if (c === '/') out += '-';
    else if (/[A-Za-z0-9:_]/.test(c) || (c === '.' && i > 0)) out += c;
    else out += `\\x${b.toString(16).padStart(2, '0')}`;
  });
  return out;
}

const rawChar = fc.constantFrom(...'abcxyzABCXYZ0189:-_.\\'.split(''));
const escapedByte = fc.integer({ min: 0, max: 255 }).map((b) => `\\x${b.toString(16).padStart(2, '0')}`);
/** Text of any kind: any grapheme, and the characters that break protocols (quotes, =, blanks, controls). */
const anyText = fc
  .array(
    fc.oneof(
      fc.string({ unit: 'grapheme', minLength: 1, maxLength: 3 }),
      fc.constantFrom('\n', '\t', "'", '"', '=', '\\', ' ', '/', '-', '.', '@', '\x00', '\x7f', '\u0085', '\u2028', 'é', '日本', '🙂', 'x2d'),
    ),
    { minLength: 1, maxLength: 10 },
  )
  .map((a) => a.join(''));
/** That text escaped as systemd-escape does. */
const escapedText = anyText.map(systemdEscape);
const piece = fc.oneof({ weight: 4, arbitrary: rawChar }, { weight: 2, arbitrary: escapedByte }, { weight: 2, arbitrary: escapedText });
const prefix = fc.array(piece, { minLength: 1, maxLength: 12 }).map((p) => p.join(''));
const unitTypeArb = fc.constantFrom(...TYPES);

/** A unit name as systemd lists it: `prefix.type` or `template@instance.type`, at most 255 long. */
const unitName = fc
  .oneof(
    fc.tuple(prefix, unitTypeArb).map(([p, t]) => `${p}.${t}`),
    fc.tuple(prefix, prefix, unitTypeArb).map(([tpl, inst, t]) => `${tpl.replaceAll('@', '')}@${inst}.${t}`),
    // Right at the limit.
    fc.tuple(prefix, unitTypeArb).map(([p, t]) => `${p}${'x'.repeat(NAME_MAX)}`.slice(0, NAME_MAX - t.length - 1) + `.${t}`),
  )
  .map((n) => (n.length > NAME_MAX ? n.slice(n.length - NAME_MAX) : n))
  .filter((n) => /^[^.]/.test(n) && n.length <= NAME_MAX);

const unitSet = fc.uniqueArray(fc.tuple(unitName, fc.constantFrom(...STATES), fc.constantFrom(...RESULTS)), {
  minLength: 1,
  maxLength: 25,
  selector: ([n]) => n,
});

/** Names from a tiny alphabet where escapes and plain characters look alike once decoded and cleaned. */
const lookalike = fc
  .array(fc.constantFrom('a', '-', '\\x2d', '_', '\\x20', '\\x3d', '\\x5f', '\\'), { minLength: 1, maxLength: 4 })
  .map((p) => `a${p.join('')}.socket`);
const lookalikeSet = fc.uniqueArray(fc.tuple(lookalike, fc.constantFrom(...STATES), fc.constantFrom(...RESULTS)), {
  minLength: 2,
  maxLength: 12,
  selector: ([n]) => n,
});

function snapshot([name, state, result]: [string, string, string]): UnitSnapshot {
  return { name, loadState: 'loaded', activeState: state, subState: 'x', transient: false, result };
}

/** A job over an in-memory table; returns each sample's lines. */
function harness() {
  const table = new UnitTable();
  const out = new PassThrough();
  let text = '';
  out.on('data', (c: Buffer) => (text += c.toString()));
  const writer = new ProtocolWriter(out);
  const job = new Job({ ...defaultJob(1), include: ['*'] }, table, writer);
  let now = 0;
  return {
    table,
    sample(): string[] {
      text = '';
      job.sample((now += 1_000_000));
      writer.flush();
      out.read();
      return text.split('\n').slice(0, -1);
    },
  };
}

/** Words each keyword's line must tokenize into (a name or label that broke quoting would add some). */
const WORDS: Record<string, number[]> = { CHART: [13], DIMENSION: [6, 7], CLABEL: [4], CLABEL_COMMIT: [1], BEGIN: [2, 3], SET: [3], VARIABLE: [4], END: [1] };
const SAFE_ID = /^[A-Za-z0-9_.@:+-]+$/;
const BAD_IN_WORD = /['"\\=\x00-\x1f\x7f]/;

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(what);
}

/** Checks every line, keeping chart → (dimension id → name) as the agent would hold them. */
function checkLines(lines: string[], charts: Map<string, Map<string, string>>): void {
  let chart: Map<string, string> | undefined;
  for (const line of lines) {
    check(line.length < 15_000, `line over 15 KB: ${line.slice(0, 80)}`);
    const w = tokenize(line);
    check(WORDS[w[0]!]?.includes(w.length) ?? false, `${w.length} words: ${line}`);
    for (const word of w) check(!BAD_IN_WORD.test(word), `unsafe word '${word}' in: ${line}`);
    if (w[0] === 'CHART') {
      if (!charts.has(w[1]!)) charts.set(w[1]!, new Map());
      chart = charts.get(w[1]!);
    } else if (w[0] === 'BEGIN') chart = charts.get(w[1]!);
    else if (w[0] === 'DIMENSION') {
      const [, id, name] = w as [string, string, string];
      check(SAFE_ID.test(id), `unsafe id: ${line}`);
      // The agent (1.37) writes ids and names into its JSON without escaping them.
      check(JSON.stringify(id) === `"${id}"` && JSON.stringify(name) === `"${name}"`, `needs JSON escaping: ${line}`);
      if (w[6] === 'obsolete') chart!.delete(id);
      else {
        const other = chart!.get(id);
        check(other === undefined || other === name, `id ${id} given to '${other}' and '${name}'`);
        chart!.set(id, name);
      }
    } else if (w[0] === 'SET') {
      check(chart?.has(w[1]!) ?? false, `SET of an undeclared dimension: ${line}`);
    }
  }
}

/**
 * The unit name back from its shown name, by the rules readableUnitName documents: `/xhh` an
 * escape, `/[hh]` a byte no valid name holds, any other `/` a backslash, [A-Za-z0-9:_.@-] itself,
 * other characters the UTF-8 bytes of escapes. That it always gives the name back proves that no
 * two names are shown alike.
 */
function unshow(shown: string): string {
  let out = '';
  let raw: number[] = [];
  const flush = () => {
    out += Buffer.from(raw).toString('utf8');
    raw = [];
  };
  for (let i = 0; i < shown.length; ) {
    const bracket = /^\/\[([0-9a-f]{2})\]/.exec(shown.slice(i, i + 5));
    if (bracket) {
      raw.push(parseInt(bracket[1]!, 16));
      i += 5;
      continue;
    }
    flush();
    if (/^\/x[0-9a-f]{2}/.test(shown.slice(i, i + 4))) {
      out += `\\${shown.slice(i + 1, i + 4)}`;
      i += 4;
      continue;
    }
    const c = String.fromCodePoint(shown.codePointAt(i)!);
    if (c === '/') out += '\\';
    else if (/[A-Za-z0-9:_.@-]/.test(c)) out += c;
    else for (const b of Buffer.from(c, 'utf8')) out += `\\x${b.toString(16).padStart(2, '0')}`;
    i += c.length;
  }
  flush();
  return out;
}

/** What the agent keeps as it is in a label value (its sanitizer maps other ASCII to _ . : /, merges spaces). */
const LABEL_SAFE = /^(?! )(?!.* $)(?!.*  )(?:[A-Za-z0-9:_.@()[\]/ -]|[^\x00-\x7f])*$/su;

describe('unit names, property-based (fast-check)', () => {
  it('every line survives the tokenizer, ids are safe, JSON-safe and unique in their chart', () => {
    fc.assert(
      fc.property(unitSet, fc.array(fc.nat(), { maxLength: 5 }), (units, removals) => {
        const h = harness();
        const charts = new Map<string, Map<string, string>>();
        h.table.applySnapshot(units.map(snapshot));
        checkLines(h.sample(), charts);
        // Some units go, states change, the rest is sampled again.
        for (const r of removals) h.table.remove(units[r % units.length]![0]);
        for (const u of h.table.units()) h.table.update(u, { activeState: 'failed', result: 'exit-code' });
        checkLines(h.sample(), charts);
        checkLines(h.sample(), charts);
        // One dimension per unit still there, each with its own id.
        const stateCharts = [...charts].filter(([id]) => id.endsWith('_unit_state')).map(([, dims]) => dims);
        const live = stateCharts.reduce((n, c) => n + c.size, 0);
        expect(live).toBe([...h.table.units()].filter((u) => TYPES.includes(u.type)).length);
      }),
      { numRuns: 400 },
    );
  });

  it('a unit gets the same id whatever other units exist and in whatever order they came', () => {
    fc.assert(
      fc.property(fc.oneof(unitSet, lookalikeSet), fc.infiniteStream(fc.nat()), (units, rnd) => {
        const ids = (order: typeof units, batches: boolean) => {
          const h = harness();
          const charts = new Map<string, Map<string, string>>();
          if (batches) {
            // One unit at a time, sampled in between (the ids handed out early must not move).
            h.table.applySnapshot([]);
            for (const u of order) {
              h.table.upsert(snapshot(u));
              checkLines(h.sample(), charts);
            }
          } else {
            h.table.applySnapshot(order.map(snapshot));
            checkLines(h.sample(), charts);
          }
          return new Map([...charts].map(([c, dims]) => [c, new Set([...dims].map(([id, name]) => `${id} ${name}`))]));
        };
        const shuffled = [...units].sort(() => (rnd.next().value % 3) - 1);
        expect(ids(shuffled, true)).toEqual(ids(units, false));
      }),
      { numRuns: 300 },
    );
  });

  it('ids are one-to-one with unit names', () => {
    fc.assert(
      fc.property(fc.oneof(unitName, lookalike), fc.oneof(unitName, lookalike), (a, b) => {
        expect(unitDimensionId(a)).toMatch(SAFE_ID);
        if (a !== b) expect(unitDimensionId(a)).not.toBe(unitDimensionId(b));
      }),
      { numRuns: 2000 },
    );
  });

  it('names read as the text that was escaped (UTF-8 included) where that cannot be mistaken for a plain name', () => {
    fc.assert(
      fc.property(anyText, unitTypeArb, (text, type) => {
        const name = `${systemdEscape(text)}.${type}`;
        expect(decodeUnitName(name)).toBe(`${text.replaceAll('/', '-')}.${type}`);
        const shown = readableUnitName(name);
        expect(unshow(shown)).toBe(name);
        // Text that no unit name holds as such and that can be seen reads as itself (é, 日本, 🙂).
        for (const c of text) if (/^[^\x00-\x7f]$/u.test(c) && !/[\p{C}\p{Z}]/u.test(c)) expect(shown).toContain(c);
      }),
      { numRuns: 1000 },
    );
    expect(readableUnitName('esc@var-lib-my\\x20app-caf\\xc3\\xa9\\x3d1.service')).toBe('esc@var-lib-my app-café/x3d1.service');
    expect(readableUnitName('two\\x20\\x20spaces.service')).toBe('two/x20/x20spaces.service'); // the agent would merge them
    expect(readableUnitName('dev-disk-by\\x2duuid-1234.swap')).toBe('dev-disk-by/x2duuid-1234.swap');
    expect(readableUnitName('plain-name@1.socket')).toBe('plain-name@1.socket');
  });

  it('no two unit names get the same dimension name, and every name survives the protocol and the agent unchanged', () => {
    const hostile = fc.string({ unit: 'binary', maxLength: 12 });
    fc.assert(
      fc.property(fc.oneof(unitName, lookalike, hostile), fc.oneof(unitName, lookalike, hostile), (a, b) => {
        const [x, y] = [dimensionName(a), dimensionName(b)];
        for (const n of [x, y]) {
          expect(n).not.toMatch(/['"\\=`\x00-\x1f\x7f-\x9f]/);
          if (n !== '') expect(n, JSON.stringify(n)).toMatch(LABEL_SAFE);
        }
        expect(unshow(x)).toBe(a);
        if (a !== b) expect(x).not.toBe(y);
      }),
      { numRuns: 3000 },
    );
    expect(dimensionName('my\\x2dapp.socket')).not.toBe(dimensionName('my-app.socket'));
    expect(dimensionName('a\\x5cb.socket')).not.toBe(dimensionName('a\\b.socket'));
    expect(dimensionName('caf\\xc3\\xa9.socket')).not.toBe(dimensionName('caf\\xC3\\xA9.socket'));
  });

  it('bytes that are not UTF-8 keep their escapes, never a crash, a raw byte or U+FFFD', () => {
    expect(readableUnitName('a\\xff\\xfe.service')).toBe('a/xff/xfe.service');
    expect(readableUnitName('caf\\xc3\\xa9@x\\x0ay.service')).toBe('café@x/x0ay.service');
    expect(decodeUnitName('a\\xZZ.service')).toBe('a\\xZZ.service');
    expect(readableUnitName('a\\xZZ.service')).toBe('a/xZZ.service');
    fc.assert(
      fc.property(fc.array(escapedByte, { minLength: 1, maxLength: 30 }), (bytes) => {
        const name = readableUnitName(`${bytes.join('')}.service`);
        expect(name).not.toMatch(/[\x00-\x1f\x7f-\x9f\ufffd]/);
        expect(name.endsWith('.service')).toBe(true);
      }),
    );
  });
});
