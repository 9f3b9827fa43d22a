// Command-line numbers for the bench scripts: one check, so a mistyped option stops a script
// before it boots anything (the scripts parse with node:util parseArgs, strict).
import path from 'node:path';

/** A whole number from `min` to `max` given as `--name v`; otherwise the script ends with one line on stderr (exit 2). */
export function wholeOption(v: string, name: string, min = 1, max = Infinity): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) {
    process.stderr.write(`${path.basename(process.argv[1] ?? 'bench')}: --${name}: expected a whole number ${max === Infinity ? `>= ${min}` : `from ${min} to ${max}`}, got '${v}'\n`);
    process.exit(2);
  }
  return n;
}
