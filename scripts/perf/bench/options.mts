// Command-line numbers for the bench scripts: one check, so a mistyped option stops a script
// before it boots anything (the scripts parse with node:util parseArgs, strict).

/** A whole number from `min` to `max` given as `--name v`; throws a one-line error otherwise. */
export function wholeOption(v: string, name: string, min = 1, max = Infinity): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new Error(`--${name}: expected a whole number ${max === Infinity ? `>= ${min}` : `from ${min} to ${max}`}, got '${v}'`);
  }
  return n;
}
