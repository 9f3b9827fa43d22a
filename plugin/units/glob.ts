// Unit-name globs (`*`, `?`, `[abc]`, `[!a-z]`), matched without backtracking.
//
// A glob compiled to a RegExp (`.*` per star) backtracks: `*a*a*a…*b` against a long name takes
// time exponential in the stars, and one such pattern in the config pinned the event loop for
// good (issue 10). Here runs of `*` collapse into one, as fnmatch does; the parts before the first
// star and after the last have a fixed length and are compared at the name's ends; each part
// between two stars is then found at its leftmost place after the previous one, and never moved
// again (a later place could only leave less room for what follows). So the work is one search
// per part: at most (name length + 1) × (pattern tokens + 1) steps, whatever the pattern, and a
// part of plain characters is found by String.indexOf.
//
// Syntax as systemd's fnmatch with FNM_NOESCAPE (what ListUnitsByPatterns uses): a backslash is
// an ordinary character, so `my\x2dapp@*.socket` means what it says; a `]` right after `[` or `[!`
// belongs to the class; a `[` that is never closed is an ordinary character.

const STAR = 0;
const ANY = 1;
const CHAR = 2;
const CLASS = 3;

type Token =
  | { readonly kind: typeof STAR }
  | { readonly kind: typeof ANY }
  | { readonly kind: typeof CHAR; readonly code: number }
  | { readonly kind: typeof CLASS; readonly negate: boolean; readonly ranges: readonly (readonly [number, number])[] };

/** A `[...]` bracket expression starting at `open`, or undefined when it is never closed. */
export function bracketAt(glob: string, open: number): { end: number; negate: boolean; body: string } | undefined {
  let start = open + 1;
  const negate = glob[start] === '!' || glob[start] === '^';
  if (negate) start++;
  // The first character of the body may be `]` itself.
  const end = glob.indexOf(']', start + 1);
  if (end < 0) return undefined;
  return { end, negate, body: glob.slice(start, end) };
}

/** `a-z` pairs and single characters of a class body, as code units. */
function classRanges(body: string): [number, number][] {
  const ranges: [number, number][] = [];
  for (let i = 0; i < body.length; i++) {
    const lo = body.charCodeAt(i);
    if (body[i + 1] === '-' && i + 2 < body.length) {
      ranges.push([lo, body.charCodeAt(i + 2)]);
      i += 2;
    } else ranges.push([lo, lo]);
  }
  return ranges;
}

/** The first range of a class whose ends are the wrong way round (`[z-a]` matches nothing), if any. */
export function reversedRange(body: string): string | undefined {
  const r = classRanges(body).find(([lo, hi]) => lo > hi);
  return r && `${String.fromCharCode(r[0])}-${String.fromCharCode(r[1])}`;
}

/** Counts the matcher's steps, for tests that hold it to its bound. */
export interface StepCounter {
  steps: number;
}

/**
 * A part of the pattern between two stars: `text` when it is plain characters only (found with
 * indexOf), else found with bit-parallel matching (Shift-And): one bit per token, `words` 32-bit
 * words, and for each ASCII code the tokens it matches (`ascii`, 128 × words).
 */
interface Part {
  readonly tokens: readonly Token[];
  readonly text: string | undefined;
  readonly words: number;
  readonly ascii: Uint32Array | undefined;
}

function makePart(tokens: Token[]): Part {
  if (tokens.every((t) => t.kind === CHAR)) {
    return { tokens, text: String.fromCharCode(...tokens.map((t) => (t as { code: number }).code)), words: 0, ascii: undefined };
  }
  const words = (tokens.length + 31) >>> 5;
  const ascii = new Uint32Array(128 * words);
  for (let code = 0; code < 128; code++) ascii.set(maskOf(tokens, words, code), code * words);
  return { tokens, text: undefined, words, ascii };
}

/** Bit j set when token j matches `code`. */
function maskOf(tokens: readonly Token[], words: number, code: number): Uint32Array {
  const mask = new Uint32Array(words);
  tokens.forEach((t, j) => {
    if (matchesOne(t, code)) mask[j >>> 5]! |= 1 << (j & 31);
  });
  return mask;
}

export class Glob {
  private readonly tokens: readonly Token[];
  /** Tokens before the first star and after the last: fixed length, matched at the name's ends. */
  private readonly head: number;
  private readonly tail: number;
  private readonly hasStar: boolean;
  /** Between the first and the last star. */
  private readonly parts: readonly Part[];

  constructor(readonly source: string) {
    const tokens: Token[] = [];
    for (let i = 0; i < source.length; i++) {
      const c = source[i]!;
      if (c === '*') {
        if (tokens[tokens.length - 1]?.kind !== STAR) tokens.push({ kind: STAR });
      } else if (c === '?') tokens.push({ kind: ANY });
      else if (c === '[' && bracketAt(source, i)) {
        const b = bracketAt(source, i)!;
        tokens.push({ kind: CLASS, negate: b.negate, ranges: classRanges(b.body) });
        i = b.end;
      } else tokens.push({ kind: CHAR, code: source.charCodeAt(i) });
    }
    this.tokens = tokens;
    const first = tokens.findIndex((t) => t.kind === STAR);
    const last = tokens.map((t) => t.kind).lastIndexOf(STAR);
    this.hasStar = first >= 0;
    this.head = this.hasStar ? first : tokens.length;
    this.tail = this.hasStar ? tokens.length - 1 - last : 0;
    const parts: Part[] = [];
    let part: Token[] = [];
    for (const t of this.hasStar ? tokens.slice(first + 1, last + 1) : []) {
      if (t.kind !== STAR) {
        part.push(t);
        continue;
      }
      parts.push(makePart(part));
      part = [];
    }
    this.parts = parts;
  }

  /** Tokens after collapsing runs of `*` (a class counts as one). */
  get size(): number {
    return this.tokens.length;
  }

  matches(name: string, counter?: StepCounter): boolean {
    const t = this.tokens;
    const { head, tail } = this;
    if (!this.hasStar ? name.length !== head : name.length < head + tail) return false;
    // The fixed ends first: `*.service` is then one comparison of 8 characters.
    for (let i = 0; i < head; i++) if (!matchesOne(t[i]!, name.charCodeAt(i))) return count(counter, i + 1, false);
    for (let i = 1; i <= tail; i++) if (!matchesOne(t[t.length - i]!, name.charCodeAt(name.length - i))) return count(counter, head + i, false);
    let steps = head + tail;
    // Each part between stars at its leftmost place, within what the tail left.
    const end = name.length - tail;
    let n = head;
    for (const part of this.parts) {
      const found = find(part, name, n, end);
      steps += found.steps;
      if (found.at < 0) return count(counter, steps, false);
      n = found.at + part.tokens.length;
    }
    return count(counter, steps, true);
  }
}

/** Where `part` first matches in name[from, end), or -1; and the steps taken to find out. */
function find(part: Part, name: string, from: number, end: number): { at: number; steps: number } {
  const len = part.tokens.length;
  if (part.text !== undefined) {
    const at = name.indexOf(part.text, from);
    // Counted as one step per place tried (indexOf compares in native code).
    return at >= 0 && at + len <= end ? { at, steps: at - from + 1 } : { at: -1, steps: Math.max(1, end - from) };
  }
  // Shift-And: bit j of `state` says the last j + 1 characters match the part's first j + 1 tokens.
  const { words, ascii } = part;
  const state = new Uint32Array(words);
  const last = len - 1;
  let steps = 0;
  for (let i = from; i < end; i++) {
    const code = name.charCodeAt(i);
    const mask = code < 128 ? ascii!.subarray(code * words, code * words + words) : maskOf(part.tokens, words, code);
    let carry = 1;
    for (let w = 0; w < words; w++) {
      const v = state[w]!;
      state[w] = ((v << 1) | carry) & mask[w]!;
      carry = v >>> 31;
    }
    steps += words;
    if (state[last >>> 5]! & (1 << (last & 31))) return { at: i - last, steps };
  }
  return { at: -1, steps: Math.max(1, steps) };
}

function count(counter: StepCounter | undefined, steps: number, result: boolean): boolean {
  if (counter) counter.steps += steps;
  return result;
}

function matchesOne(tok: Token, code: number): boolean {
  switch (tok.kind) {
    case ANY:
      return true;
    case CHAR:
      return tok.code === code;
    case CLASS: {
      const inside = tok.ranges.some(([lo, hi]) => code >= lo && code <= hi);
      return inside !== tok.negate;
    }
    default:
      return false;
  }
}
