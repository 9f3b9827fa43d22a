// Unit-name globs (`*`, `?`, `[abc]`, `[!a-z]`), matched without backtracking.
//
// A glob compiled to a RegExp (`.*` per star) backtracks: `*a*a*a…*b` against a long name takes
// time exponential in the stars, and one such pattern in the config pinned the event loop for
// good (issue 10). Here runs of `*` collapse into one, as fnmatch does, and the matcher only ever
// returns to the last star it passed: at most (name length + 1) × (pattern tokens + 1) steps,
// linear in the name for a given pattern, whatever the pattern.
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
  | { readonly kind: typeof CLASS; readonly negate: boolean; readonly ranges: readonly (readonly [number, number])[]};

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

export class Glob {
  private readonly tokens: readonly Token[];
  /** Tokens before the first star and after the last: fixed length, matched at the name's ends. */
  private readonly head: number;
  private readonly tail: number;
  private readonly hasStar: boolean;

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
    this.hasStar = first >= 0;
    this.head = this.hasStar ? first : tokens.length;
    this.tail = this.hasStar ? tokens.length - 1 - tokens.map((t) => t.kind).lastIndexOf(STAR) : 0;
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
    if (!this.hasStar) return count(counter, head, true);
    // Between the first and the last star (both included), against the rest of the name.
    const pEnd = t.length - tail;
    const nEnd = name.length - tail;
    if (pEnd - head === 1) return count(counter, head + tail, true); // one star: takes the rest
    let p = head;
    let n = head;
    // Where the last star was, and where in the name its match currently ends.
    let starP = -1;
    let starN = 0;
    let steps = head + tail;
    while (n < nEnd) {
      steps++;
      const tok = p < pEnd ? t[p]! : undefined;
      if (tok?.kind === STAR) {
        starP = p++;
        starN = n;
      } else if (tok !== undefined && matchesOne(tok, name.charCodeAt(n))) {
        p++;
        n++;
      } else if (starP >= 0) {
        // Let the last star take one more character and retry what follows it. Earlier stars
        // never need to move: what they took cannot help a later part to match.
        p = starP + 1;
        n = ++starN;
      } else return count(counter, steps, false);
    }
    while (p < pEnd && t[p]!.kind === STAR) p++;
    return count(counter, steps, p === pEnd);
  }
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
