// The plugin's import graph (plugin/ and charts/, type-only imports included) has no cycle, and
// chart writers neither write through nor read from the systemd layer: data flows one way.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');

function tsFiles(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => path.relative(ROOT, path.join(e.parentPath, e.name)));
}

/** Relative imports and re-exports of modules (not JSON) of a file, as repository paths (`.js` specifiers name `.ts` files). */
export function importsOf(file: string, text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/^\s*(?:import|export)\b[^'"]*?\bfrom\s+['"](\.{1,2}\/[^'"]+\.js)['"]/gm)) {
    out.push(path.normalize(path.join(path.dirname(file), m[1]!.replace(/\.js$/, '.ts'))));
  }
  return out;
}

/** A cycle in the graph, as the files along it, or undefined. */
export function findCycle(graph: ReadonlyMap<string, readonly string[]>): string[] | undefined {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (f: string): string[] | undefined => {
    if (state.get(f) === 'done') return undefined;
    if (state.get(f) === 'open') return [...stack.slice(stack.indexOf(f)), f];
    state.set(f, 'open');
    stack.push(f);
    for (const g of graph.get(f) ?? []) {
      const cycle = visit(g);
      if (cycle) return cycle;
    }
    stack.pop();
    state.set(f, 'done');
    return undefined;
  };
  for (const f of graph.keys()) {
    const cycle = visit(f);
    if (cycle) return cycle;
  }
  return undefined;
}

const files = [...tsFiles('plugin'), ...tsFiles('charts')];
const graph = new Map(files.map((f) => [f, importsOf(f, readFileSync(path.join(ROOT, f), 'utf8'))]));

describe('the import graph of plugin/ and charts/', () => {
  it('is read (every relative import names a file that exists)', () => {
    expect(files.length).toBeGreaterThan(30);
    for (const [f, deps] of graph) for (const d of deps) expect(graph.has(d), `${f} imports ${d}`).toBe(true);
  });

  it('has no cycle', () => {
    expect(findCycle(graph)).toBeUndefined();
  });

  it('finds a cycle when there is one (the check itself)', () => {
    // units/table.ts imports units/instances.ts; the other way round (as before issue 11) closes a cycle.
    const cyclic = new Map([...graph, ['plugin/units/instances.ts', [...graph.get('plugin/units/instances.ts')!, 'plugin/units/table.ts']]]);
    expect(findCycle(cyclic)).toEqual(expect.arrayContaining(['plugin/units/table.ts', 'plugin/units/instances.ts']));
    expect(importsOf('plugin/a/b.ts', "import type { X } from '../c/d.js';\nexport { Y } from './e.js';")).toEqual(['plugin/c/d.ts', 'plugin/a/e.ts']);
  });

  it('keeps chart writers and chart definitions off the systemd layer (they read the unit model only)', () => {
    for (const f of files.filter((f) => f.startsWith('plugin/writers/') || f.startsWith('charts/') || f.startsWith('plugin/netdata/chart'))) {
      for (const d of graph.get(f)!) expect(d.startsWith('plugin/systemd/'), `${f} imports ${d}`).toBe(false);
    }
  });
});
