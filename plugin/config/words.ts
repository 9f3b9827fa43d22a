// Message helpers: every value quoted back is short, on one line, and free of control characters.

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function oneLine(text: string, max = 60): string {
  const t = text.replace(/[\x00-\x1f\x7f]/g, ' ');
  return t.length > max ? `${t.slice(0, max - 3)}...` : t;
}

export function describe(value: unknown): string {
  if (value === null || value === undefined) return 'nothing (leave the key out for the default)';
  if (typeof value === 'string') return `'${oneLine(value)}'`;
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return oneLine(String(value));
}

/** ` (did you mean 'X'?)` for a near miss, else `otherwise`. */
export function suggest(word: string, known: readonly string[], otherwise: string): string {
  const near = known.filter((k) => editDistance(word.toLowerCase(), k) <= Math.max(1, Math.floor(k.length / 4)));
  return near.length > 0 ? ` (did you mean '${near[0]}'?)` : otherwise;
}

/** Edit distance counting a swap of two neighbours as one edit (the commonest typo). */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 0; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const row = d[i]!;
      row[j] = Math.min(d[i - 1]![j]! + 1, row[j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) row[j] = Math.min(row[j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}
