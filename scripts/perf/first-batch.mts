// The time from launch to the first complete batch (every bench socket and service charted, every
// chart defined so far ended), as the full bench measures it (scripts/perf/bench.mts), over many
// starts of the plugin against one sandboxed systemd with N bench sockets: one start is within its
// noise of issue 4's line (≤ 500 ms at 1,000). Each start also reports its CPU to that batch. The
// default job, as a user has it (no jobs key). Starts one after another, --gap seconds apart.
// Needs root (boots systemd in a namespace, like the tests); the built bundle (`npm run build`).
//   npx tsx scripts/perf/first-batch.mts [--n 1000] [--starts 12] [--gap 2] [--plugin label=path/to/systemdunits.plugin ...]
// Several --plugin: their starts alternate (a, b, a, b, …), so load swings hit each alike.
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { repoRoot } from '../../harness/run.js';
import { loadAvg, quantile, sleep } from './bench/proc.mjs';
import { growBenchUnits, startScriptSandbox } from './bench/session.mjs';
import { PluginProc } from './bench/tools.mjs';
import { isBenchUnitOrService } from './bench/units.mjs';
import { wholeOption } from './bench/options.mjs';

// Strict, like the other bench scripts: an unknown option (or --help) must not start a benchmark.
const { values: opt } = parseArgs({
  options: {
    n: { type: 'string', default: '1000' },
    starts: { type: 'string', default: '12' },
    gap: { type: 'string', default: '2' },
    plugin: { type: 'string', multiple: true, default: [] },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
});
if (opt.help) {
  console.log('usage: npx tsx scripts/perf/first-batch.mts [--n 1000] [--starts 12] [--gap 2] [--plugin label=path/to/systemdunits.plugin ...]');
  process.exit(0);
}
const N = wholeOption(opt.n!, 'n');
const STARTS = wholeOption(opt.starts!, 'starts');
const GAP = wholeOption(opt.gap!, 'gap');
const plugins = (opt.plugin!.length ? opt.plugin! : [`this=${path.join(repoRoot, 'systemdunits.plugin')}`]).map((spec) => {
  const eq = spec.indexOf('=');
  if (eq < 1) throw new Error(`--plugin: expected label=path, got '${spec}'`);
  return { label: spec.slice(0, eq), exe: path.resolve(spec.slice(eq + 1)), ms: [] as number[], cpuMs: [] as number[] };
});
const say = (line: string) => console.log(`${line}  (load ${loadAvg().toFixed(2)})`);

const sb = await startScriptSandbox();
try {
  const { units, seconds } = await growBenchUnits(sb, N, (m) => process.stderr.write(`${m}\n`));
  const expected = N + (await units.services());
  say(`${N} bench sockets up in ${seconds.toFixed(0)} s; ${expected} bench units to chart`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'first-batch-'));
  const config = path.join(dir, 'default.conf');
  writeFileSync(config, 'update_every: 1\n');
  for (let k = 0; k < STARTS; k++) {
    for (const pl of plugins) {
      await sleep(GAP * 1000);
      const p = new PluginProc({ bus: sb.busAddress, configFile: config, watched: new Set(), isBenchUnit: isBenchUnitOrService, units: expected, exe: pl.exe });
      try {
        await p.waitFor('the first complete batch', () => p.stream.firstCompleteUs, 120_000);
        const ms = (p.stream.firstCompleteUs! - p.execUs) / 1000;
        pl.ms.push(ms);
        pl.cpuMs.push((p.atFirst?.cpuS ?? NaN) * 1000);
        say(`${pl.label} start ${k + 1}: first complete batch after ${ms.toFixed(0)} ms, ${pl.cpuMs.at(-1)!.toFixed(0)} ms of CPU`);
      } finally {
        await p.stop();
      }
    }
  }
  const f = (v: number | undefined) => (v === undefined ? '-' : v.toFixed(0));
  for (const pl of plugins) {
    say(`${pl.label}: first batch at ${N} over ${pl.ms.length} starts: median ${f(quantile(pl.ms, 0.5))} ms, p90 ${f(quantile(pl.ms, 0.9))}, min ${f(Math.min(...pl.ms))}, max ${f(Math.max(...pl.ms))}; CPU to it median ${f(quantile(pl.cpuMs, 0.5))} ms`);
  }
} finally {
  await sb.stop({ removeDir: true });
}
