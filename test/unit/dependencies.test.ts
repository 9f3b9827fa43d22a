// What ships: the installed runtime tree (`npm ls --omit=dev --all`) is exactly the README's
// table, and no installed version is one with a known advisory. `npm audit` needs the registry's
// audit endpoint; this check works offline and in CI.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { repoRoot, run } from '../../harness/run.js';

interface LsNode {
  version?: string;
  missing?: boolean;
  dependencies?: Record<string, LsNode>;
}

/** name → installed versions, across the runtime tree. */
let installed: Map<string, Set<string>>;

beforeAll(async () => {
  const r = await run('npm', ['ls', '--omit=dev', '--all', '--json'], { timeoutMs: 60_000 });
  const tree = JSON.parse(r.stdout) as LsNode;
  installed = new Map();
  (function walk(node: LsNode): void {
    for (const [name, dep] of Object.entries(node.dependencies ?? {})) {
      if (!dep.version) continue; // an optional dependency not installed (usocket)
      if (!installed.has(name)) installed.set(name, new Set());
      installed.get(name)!.add(dep.version);
      walk(dep);
    }
  })(tree);
}, 60_000);

/** [major, minor, patch] of a plain x.y.z version. */
function parts(v: string): number[] {
  return v.split(/[.+-]/).slice(0, 3).map(Number);
}

function lessThan(v: string, limit: string): boolean {
  const a = parts(v);
  const b = parts(limit);
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i]! < b[i]!;
  return false;
}

/**
 * Published advisories and compromised releases for packages that are (or were) in this tree:
 * `below` = affected below that version within the same major; `exactly` = that release.
 */
const KNOWN_BAD: { name: string; below?: string; from?: string; exactly?: string; why: string }[] = [
  { name: 'xml2js', below: '0.5.0', why: 'prototype pollution, CVE-2023-0842' },
  { name: 'yargs-parser', below: '13.1.2', why: 'prototype pollution, CVE-2020-7608' },
  { name: 'yargs-parser', from: '14.0.0', below: '15.0.1', why: 'prototype pollution, CVE-2020-7608' },
  { name: 'yargs-parser', from: '16.0.0', below: '18.1.1', why: 'prototype pollution, CVE-2020-7608' },
  { name: 'ansi-regex', from: '5.0.0', below: '5.0.1', why: 'ReDoS, CVE-2021-3807' },
  { name: 'ansi-regex', from: '4.0.0', below: '4.1.1', why: 'ReDoS, CVE-2021-3807' },
  { name: 'debug', from: '4.0.0', below: '4.3.1', why: 'ReDoS in the %o formatter (GHSA-gxpj-cx7g-858c)' },
  { name: 'ms', below: '2.0.0', why: 'ReDoS, CVE-2017-20162' },
  { name: 'yaml', from: '2.0.0', below: '2.2.2', why: 'uncaught exception on crafted input, CVE-2023-2251' },
  { name: 'event-stream', exactly: '3.3.6', why: 'compromised release (flatmap-stream)' },
  // The compromised releases of 8 September 2025.
  { name: 'debug', exactly: '4.4.2', why: 'compromised release' },
  { name: 'ansi-regex', exactly: '6.2.1', why: 'compromised release' },
  { name: 'ansi-styles', exactly: '6.2.2', why: 'compromised release' },
  { name: 'strip-ansi', exactly: '7.1.1', why: 'compromised release' },
  { name: 'wrap-ansi', exactly: '9.0.1', why: 'compromised release' },
  { name: 'color-convert', exactly: '3.1.1', why: 'compromised release' },
  { name: 'color-name', exactly: '2.0.1', why: 'compromised release' },
];

describe('runtime dependencies', () => {
  it('are found (the tree is installed)', () => {
    expect(installed.get('dbus-next')).toEqual(new Set(['0.10.2']));
  });

  it('ship no xml2js older than 0.5 (the override in package.json is in effect)', () => {
    const versions = [...(installed.get('xml2js') ?? [])];
    expect(versions.length).toBeGreaterThan(0);
    for (const v of versions) expect(lessThan(v, '0.5.0'), `xml2js ${v}`).toBe(false);
    const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { overrides?: Record<string, string> };
    expect(pkg.overrides?.xml2js).toBe('^0.6.2');
  });

  it('include no version with a known advisory', () => {
    const hits: string[] = [];
    for (const bad of KNOWN_BAD) {
      for (const v of installed.get(bad.name) ?? []) {
        const hit = bad.exactly ? v === bad.exactly : (!bad.from || !lessThan(v, bad.from)) && lessThan(v, bad.below!);
        if (hit) hits.push(`${bad.name}@${v}: ${bad.why}`);
      }
    }
    expect(hits).toEqual([]);
  });

  it('are exactly the README table, versions included', () => {
    const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Runtime dependencies'), readme.indexOf('\n## ', readme.indexOf('## Runtime dependencies') + 1));
    const listed = new Map<string, string>();
    for (const row of section.split('\n').filter((l) => l.startsWith('| `'))) {
      const [names, versions] = row.split('|').slice(1, 3).map((c) => c.trim());
      const n = [...names!.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
      const v = versions!.split(',').map((x) => x.trim());
      expect(v.length, row).toBe(n.length);
      n.forEach((name, i) => listed.set(name, v[i]!));
    }
    const actual = new Map([...installed].map(([name, vs]) => [name, [...vs].join(', ')]));
    expect(Object.fromEntries([...listed].sort())).toEqual(Object.fromEntries([...actual].sort()));
  });
});
