// What the plugin's code can do, read from the code itself: which modules it imports (no process
// spawning, no network but the bus, no file access outside the config loader), and a launcher that
// execs node without forking. The runtime side is test/integration/privilege.test.ts (strace).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../../harness/run.js';

const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };

/** Node built-ins the shipped code may import, and why. Anything else fails the test. */
const BUILTINS: Record<string, string> = {
  'node:fs': 'reading systemdunits.conf (plugin/config.ts only, see below)',
  'node:path': 'joining the config dir and file name',
  'node:stream': 'types of stdin/stdout',
  'node:readline': 'stdin requests, line by line',
  'node:perf_hooks': 'the monotonic clock',
  'node:events': 'EventEmitter',
  'node:timers': 'timers',
  'node:util': 'formatting',
  'node:buffer': 'Buffer',
};

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

const SHIPPED = [...sources(path.join(repoRoot, 'plugin')), ...sources(path.join(repoRoot, 'charts'))];

function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+'([^']+)'/gms)].map((m) => m[1]!).filter((s) => !s.startsWith('.'));
}

describe('the shipped code (plugin/, charts/)', () => {
  it('is found', () => {
    expect(SHIPPED.map((f) => path.relative(repoRoot, f))).toContain('plugin/main.ts');
  });

  it('imports only the listed built-ins and its runtime dependencies: no child_process, no worker, no network module', () => {
    const bad: string[] = [];
    for (const file of SHIPPED) {
      for (const spec of imports(file)) {
        // A dependency's own module too (bus.ts reads dbus-next's body reader, dbus-next/lib/…).
        const dependency = spec.split('/').slice(0, spec.startsWith('@') ? 2 : 1).join('/');
        const allowed = spec in BUILTINS || dependency in pkg.dependencies;
        if (!allowed) bad.push(`${path.relative(repoRoot, file)}: ${spec}`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('never names child_process, loads code at run time or reaches into the runtime', () => {
    const pattern = /child_process|worker_threads|\bcluster\b['"]|\brequire\s*\(|\bimport\s*\(|process\.(binding|dlopen)|\beval\s*\(|new Function\b/;
    const hits = SHIPPED.flatMap((file) =>
      readFileSync(file, 'utf8')
        .split('\n')
        .map((line, i) => ({ line, i }))
        .filter(({ line }) => !/^\s*(\/\/|\*)/.test(line) && pattern.test(line))
        .map(({ line, i }) => `${path.relative(repoRoot, file)}:${i + 1}: ${line.trim()}`),
    );
    expect(hits).toEqual([]);
  });

  it('touches files only in the config loader, and only the file the arguments or the agent name', () => {
    const fsUsers = SHIPPED.filter((f) => imports(f).some((s) => s === 'node:fs' || s === 'node:fs/promises' || s === 'fs'));
    expect(fsUsers.map((f) => path.relative(repoRoot, f))).toEqual(['plugin/config/load.ts']);
    const config = readFileSync(path.join(repoRoot, 'plugin/config/load.ts'), 'utf8');
    // The fs functions it calls, and on what.
    const calls = [...config.matchAll(/\b(existsSync|readFileSync|[a-z]+Sync|open|readFile|writeFile|createReadStream)\(([^,)]*)/g)].map((m) => `${m[1]}(${m[2]})`);
    expect(calls.sort()).toEqual(['closeSync(fd)', 'existsSync(file)', 'fstatSync(fd)', 'openSync(file)', 'readSync(fd)']);
    // Opened read-only, and `fd` is only ever that descriptor.
    expect(config).toMatch(/fd = openSync\(file, constants\.O_RDONLY \| constants\.O_NONBLOCK \| constants\.O_NOCTTY\);/);
    expect([...config.matchAll(/\bfd = /g)]).toHaveLength(1);
    // `file` is --config or DIR/systemdunits.conf with DIR from NETDATA_USER_CONFIG_DIR / NETDATA_STOCK_CONFIG_DIR,
    // or (--check-config by hand, without them) the agents' usual config dirs.
    expect(config).toMatch(/const dirs = \[env\.NETDATA_USER_CONFIG_DIR, env\.NETDATA_STOCK_CONFIG_DIR, \.\.\.\(env\.NETDATA_USER_CONFIG_DIR \? \[\] : agentDirs\)\];\n  for \(const dir of dirs\)/);
    expect(config).toMatch(/const file = join\(dir, CONFIG_FILE_NAME\);/);
  });
});

describe('the launcher (systemdunits.plugin)', () => {
  it('execs node in place: no command substitution, pipe or background job that would fork', () => {
    const code = readFileSync(path.join(repoRoot, 'systemdunits.plugin'), 'utf8')
      .split('\n')
      .filter((l) => !l.trim().startsWith('#'))
      .join('\n');
    expect(code).not.toMatch(/\$\(|`|\|(?!\|)|&\s*$/m);
    expect(code).toMatch(/exec "\$\{NODE:-node\}" (--[a-z0-9-]+(=[0-9]+)? )*"\$entry" "\$@"/);
  });
});
