// The unit-name glob matcher: same answers as the RegExp compilation it replaced (on patterns where
// that one is safe to run), and a step count bounded by (name + 1) × (tokens + 1) on the patterns
// that made the RegExp backtrack for good.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Glob, type StepCounter } from '../../plugin/units/glob.js';

/** The old compilation (plugin/jobs/selector.ts before issue 10), kept as the reference. */
function oldGlobToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[') {
      const close = glob.indexOf(']', i + 2);
      if (close < 0) {
        re += '\\[';
        continue;
      }
      let body = glob.slice(i + 1, close);
      const negate = body.startsWith('!') || body.startsWith('^');
      if (negate) body = body.slice(1);
      re += `[${negate ? '^' : ''}${body.replace(/[\\\]^]/g, '\\$&')}]`;
      i = close;
    } else re += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, 's');
}

// Small alphabets, so that random names often match random patterns.
const nameChar = fc.constantFrom('a', 'b', 'c', '-', '.', '@', '\\', 'x', '1');
const name = fc.array(nameChar, { maxLength: 14 }).map((cs) => cs.join(''));
// A class the old code and fnmatch read alike: non-empty, no `]`, `!` or `^` first, ranges in order.
const classBody = fc
  .array(fc.oneof(fc.constantFrom('a', 'b', 'c', '.', '@', '\\', 'x', '1'), fc.constantFrom('a-c', '0-9', 'b-x')), { minLength: 1, maxLength: 3 })
  .map((parts) => parts.join(''));
const safePart = fc.oneof(
  { weight: 4, arbitrary: nameChar },
  { weight: 2, arbitrary: fc.constant('*') },
  { weight: 1, arbitrary: fc.constant('?') },
  { weight: 1, arbitrary: classBody.map((b) => `[${b}]`) },
  { weight: 1, arbitrary: classBody.map((b) => `[!${b}]`) },
);
// At most 3 stars: the old RegExp is then quick on these short names.
const safePattern = fc
  .array(safePart, { maxLength: 8 })
  .map((ps) => ps.join(''))
  .filter((p) => (p.match(/\*/g) ?? []).length <= 3);

describe('Glob', () => {
  it('answers as the old RegExp did, on patterns where that one is safe', () => {
    fc.assert(
      fc.property(safePattern, name, (pattern, n) => {
        expect(new Glob(pattern).matches(n), `${pattern} vs ${n}`).toBe(oldGlobToRegExp(pattern).test(n));
      }),
      { numRuns: 20_000 },
    );
  });

  it('answers as the old RegExp did for long parts between two stars (many words of bits)', () => {
    const token = fc.oneof(fc.constantFrom('a', 'b', '?'), fc.constant('[ab]'), fc.constant('[!b]'));
    fc.assert(
      fc.property(fc.array(token, { minLength: 30, maxLength: 100 }), fc.array(fc.constantFrom('a', 'b', 'c'), { maxLength: 220 }), (part, cs) => {
        const pattern = `x*${part.join('')}*.service`;
        const n = `x${cs.join('')}.service`;
        expect(new Glob(pattern).matches(n), `${pattern} vs ${n}`).toBe(oldGlobToRegExp(pattern).test(n));
      }),
      { numRuns: 2_000 },
    );
    // A name that does hold the part, so the answer is not always no.
    const part = `${'a?'.repeat(40)}[!a]`;
    expect(new Glob(`*${part}*.service`).matches(`zz${'ab'.repeat(40)}c-1.service`)).toBe(true);
    expect(new Glob(`*${part}*.service`).matches(`zz${'ab'.repeat(39)}c-1.service`)).toBe(false);
  });

  it('matches a name built from the pattern itself', () => {
    // Each star replaced by some text, each ? by one character: the name must match.
    const parts = fc.array(fc.oneof(nameChar, fc.constant('*'), fc.constant('?')), { maxLength: 30 });
    fc.assert(
      fc.property(parts, fc.array(name, { minLength: 30, maxLength: 30 }), (ps, fills) => {
        const pattern = ps.join('');
        const n = ps.map((p, i) => (p === '*' ? fills[i]! : p === '?' ? 'z' : p)).join('');
        expect(new Glob(pattern).matches(n), `${pattern} vs ${n}`).toBe(true);
      }),
    );
  });

  it('reads brackets as fnmatch does', () => {
    expect(new Glob('a[]]b').matches('a]b')).toBe(true);
    expect(new Glob('a[!]]b').matches('a]b')).toBe(false);
    expect(new Glob('a[!]]b').matches('axb')).toBe(true);
    expect(new Glob('web[12.socket').matches('web[12.socket')).toBe(true); // never closed: literal
    expect(new Glob('[a-c-e].socket').matches('-.socket')).toBe(true);
    expect(new Glob('[a-c-e].socket').matches('d.socket')).toBe(false);
    expect(new Glob('[z-a].socket').matches('m.socket')).toBe(false); // reversed: nothing
    expect(new Glob('a\\*').matches('a\\xyz')).toBe(true); // FNM_NOESCAPE: the backslash is literal
    expect(new Glob('a\\*').matches('a*')).toBe(false);
  });

  // The patterns that hung the plugin: the step count stays within the bound, far below what a
  // backtracking matcher needs (it grows with the number of stars, not the name times the pattern).
  const bound = (g: Glob, n: string) => (n.length + 1) * (g.size + 1);
  const steps = (g: Glob, n: string): { matched: boolean; steps: number } => {
    const c: StepCounter = { steps: 0 };
    return { matched: g.matches(n, c), steps: c.steps };
  };

  it("collapses a run of stars: issue 10's pattern costs what '*a.service' costs", () => {
    const hostile = new Glob(`${'*'.repeat(21)}a.service`);
    const plain = new Glob('*a.service');
    expect(hostile.size).toBe(plain.size);
    for (const n of ['sshd.service', `${'x'.repeat(250)}.service`, `${'a'.repeat(240)}.socket`]) {
      expect(steps(hostile, n)).toEqual(steps(plain, n));
    }
  });

  it('stays within (name + 1) × (tokens + 1) steps on patterns that make a RegExp backtrack', () => {
    const cases: [string, string][] = [
      [`${'*a'.repeat(1000)}*b`, 'a'.repeat(10_000)],
      [`${'*'.repeat(1000)}a.service`, 'x'.repeat(10_000)],
      [`${'*?'.repeat(500)}b`, 'a'.repeat(10_000)],
      [`*${'a'.repeat(1000)}b`, 'a'.repeat(10_000)],
      [`${'*[ab]'.repeat(300)}*c`, 'ab'.repeat(5_000)],
      [`*${'a'.repeat(99)}?b*x.service`, `${'a'.repeat(10_000)}x.service`],
    ];
    for (const [pattern, n] of cases) {
      const g = new Glob(pattern);
      const r = steps(g, n);
      expect(r.matched).toBe(false);
      expect(r.steps, pattern.slice(0, 20)).toBeLessThanOrEqual(bound(g, n));
    }
    // A part of 101 tokens is 4 words of bits: about 4 steps per character, not 101.
    const long = new Glob(`*${'a'.repeat(99)}?b*x.service`);
    expect(steps(long, `${'a'.repeat(10_000)}x.service`).steps).toBeLessThan(5 * 10_000);
    // Short segments between stars cost about one pass over the name, not name × pattern.
    const g = new Glob(`${'*a'.repeat(1000)}*b`);
    expect(steps(g, 'a'.repeat(10_000)).steps).toBeLessThan(3 * 10_000);
  });

  it('stays within the bound on any pattern and name', () => {
    const part = fc.oneof(nameChar, fc.constant('*'), fc.constant('?'), classBody.map((b) => `[${b}]`));
    fc.assert(
      fc.property(fc.array(part, { maxLength: 40 }), fc.array(nameChar, { maxLength: 200 }), (ps, cs) => {
        const g = new Glob(ps.join(''));
        const n = cs.join('');
        expect(steps(g, n).steps).toBeLessThanOrEqual(bound(g, n));
      }),
    );
  });
});
