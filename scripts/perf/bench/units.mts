// The benchmark's socket units: instances of three templates in the sandbox, not thousands of
// files. (systemd 252's daemon-reload is slow either way: ~2 s over 1,000 instances, over 3 min
// over 10,000, with no client on the bus; 40-45 s over 5,000 files.)
//   t@.socket   ListenStream=/run/t/%i.sock, plain: the bulk
//   a@.socket   the same with Accept=yes (~2%): socket counters have something to count
//   f@.socket   fails on demand (~1% failed for good, plus f@flip flipped between failed and active).
//               Only these carry the ExecStartPre that checks a flag file: on all 10,000 it made
//               starting them take 7 minutes.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import type { Sandbox } from '../../../harness/sandbox.js';
import { sleep } from './proc.mjs';
import { nowUs } from '../../../harness/plugin-stream.js';

export const FLIP_UNIT = 'f@flip.socket';
/** Globs for the plugin's job include and the peers' unit filters: the bench sockets only. */
export const BENCH_GLOBS = ['t@*.socket', 'a@*.socket', 'f@*.socket'];
export const NODE_EXPORTER_INCLUDE = '(t|a|f)@.+\\.socket';
export const isBenchUnit = (name: string) => /^[taf]@.+\.socket$/.test(name);
/** A bench socket's service (t@N.service, f@N.service): loaded, inactive, in the default job's listing. */
export const isBenchService = (name: string) => /^[taf]@.+\.service$/.test(name);
export const isBenchUnitOrService = (name: string) => isBenchUnit(name) || isBenchService(name);

export interface Mix {
  plain: number;
  accept: number;
  failed: number;
  /** the flipped unit */
  flip: 1;
}

/** N sockets: ~1% failed (at least one), ~2% Accept=yes (at least one), one flipped, the rest plain. */
export function mixFor(n: number): Mix {
  if (n < 4) throw new Error(`at least 4 units, got ${n}`);
  const failed = Math.max(1, Math.round(n / 100));
  const accept = Math.max(1, Math.round(n / 50));
  return { plain: n - failed - accept - 1, accept, failed, flip: 1 };
}

const TEMPLATES: Record<string, string> = {
  't@.socket': '[Unit]\nDescription=bench socket %i\nDefaultDependencies=no\n[Socket]\nListenStream=/run/t/%i.sock\n',
  't@.service': '[Unit]\nDescription=bench service %i\nDefaultDependencies=no\n[Service]\nExecStart=/bin/sleep infinity\n',
  'a@.socket': '[Unit]\nDescription=bench Accept=yes socket %i\nDefaultDependencies=no\n[Socket]\nListenStream=/run/a/%i.sock\nAccept=yes\n',
  // one short-lived instance per connection, collected when it ends
  'a@.service': '[Unit]\nDescription=bench connection %i\nDefaultDependencies=no\nCollectMode=inactive-or-failed\n[Service]\nExecStart=/bin/true\nStandardInput=socket\nStandardOutput=null\n',
  'f@.socket': '[Unit]\nDescription=bench failing socket %i\nDefaultDependencies=no\n[Socket]\nListenStream=/run/f/%i.sock\nExecStartPre=/bin/sh -c "test ! -e /run/f/%i.fail"\n',
  'f@.service': '[Unit]\nDescription=bench service %i\nDefaultDependencies=no\n[Service]\nExecStart=/bin/sleep infinity\n',
};

export class BenchUnits {
  mix: Mix = { plain: 0, accept: 0, failed: 0, flip: 1 };
  private readonly root: string;

  constructor(private readonly sb: Sandbox) {
    this.root = `/proc/${sb.pid}/root`;
  }

  /** PID 1 holds one fd per listening socket: its soft limit caps N. */
  fdLimit(): number {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync(`/proc/${this.sb.pid}/limits`, 'utf8'));
    return m?.[1] === 'unlimited' ? Infinity : Number(m?.[1] ?? NaN);
  }

  async install(): Promise<void> {
    for (const [name, text] of Object.entries(TEMPLATES)) await this.sb.writeUnit(name, text);
    for (const d of ['t', 'a', 'f']) mkdirSync(`${this.root}/run/${d}`, { recursive: true });
    await this.sb.daemonReload();
  }

  /**
   * Starts the instances missing for N units and waits until every one is in its intended state.
   * The fastest way found: one `systemctl start --no-block` with every new name (~1.3 ms a unit
   * here, the same as a target with N Wants=; the time is systemd's own, per job).
   */
  async growTo(n: number, progress: (msg: string) => void): Promise<number> {
    const want = mixFor(n);
    const names: string[] = [];
    for (let i = this.mix.plain + 1; i <= want.plain; i++) names.push(`t@${i}.socket`);
    for (let i = this.mix.accept + 1; i <= want.accept; i++) names.push(`a@${i}.socket`);
    for (let i = this.mix.failed + 1; i <= want.failed; i++) {
      writeFileSync(`${this.root}/run/f/${i}.fail`, '');
      names.push(`f@${i}.socket`);
    }
    if (this.mix.plain === 0) names.push(FLIP_UNIT);
    const t0 = performance.now();
    for (let i = 0; i < names.length; i += 2000) {
      const r = await this.sb.exec('systemctl', 'start', '--no-block', ...names.slice(i, i + 2000));
      if (r.code !== 0) throw new Error(`systemctl start: ${r.stderr.trim()}`);
    }
    for (;;) {
      const s = await this.states();
      const ok = s.active === want.plain + want.accept + 1 && s.failed === want.failed;
      if (ok && s.other === 0) break;
      if (performance.now() - t0 > 600_000) throw new Error(`after 10 min: ${JSON.stringify(s)} of ${JSON.stringify(want)}`);
      progress(`  ${s.active + s.failed} of ${n} sockets up (${s.failed} failed)`);
      await sleep(2000);
    }
    const added = want.accept - this.mix.accept;
    const firstNew = this.mix.accept + 1;
    this.mix = want;
    // One connection to each new Accept=yes socket: NAccepted is no longer 0.
    for (let i = 0; i < added; i++) await this.connect(`${this.root}/run/a/${firstNew + i}.sock`);
    return (performance.now() - t0) / 1000;
  }

  /** The bench sockets' services that systemd has loaded (each socket but an Accept=yes one has its own). */
  async services(): Promise<number> {
    const r = await this.sb.exec('systemctl', 'list-units', '--all', '--no-legend', '--plain', 't@*.service', 'a@*.service', 'f@*.service');
    return r.stdout.split('\n').filter((l) => isBenchService(l.trim().split(/\s+/)[0] ?? '')).length;
  }

  /** Active, failed and other bench sockets. */
  async states(): Promise<{ active: number; failed: number; other: number }> {
    const r = await this.sb.exec('systemctl', 'list-units', '--all', '--no-legend', '--plain', ...BENCH_GLOBS);
    const s = { active: 0, failed: 0, other: 0 };
    for (const line of r.stdout.split('\n')) {
      const w = line.trim().split(/\s+/);
      if (w.length < 3) continue;
      if (w[2] === 'active') s.active++;
      else if (w[2] === 'failed') s.failed++;
      else s.other++;
    }
    return s;
  }

  private connect(path: string): Promise<void> {
    return new Promise((resolve) => {
      const c = net.connect(path);
      c.on('connect', () => c.end());
      c.on('close', () => resolve());
      c.on('error', () => resolve());
    });
  }

  /**
   * Fails the flipped unit; returns its StateChangeTimestamp (wall clock µs, from systemd) and
   * when the command was issued.
   */
  async fail(): Promise<{ issuedUs: number; changedUs: number }> {
    writeFileSync(`${this.root}/run/f/flip.fail`, '');
    const issuedUs = nowUs();
    // restart exits 1 (the start fails, as intended); the property is read in the same exec.
    const r = await this.sb.exec('sh', '-c',
      `systemctl restart ${FLIP_UNIT} 2>/dev/null; systemctl is-failed -q ${FLIP_UNIT} && ` +
      `busctl get-property org.freedesktop.systemd1 /org/freedesktop/systemd1/unit/f_40flip_2esocket org.freedesktop.systemd1.Unit StateChangeTimestamp`);
    const m = /^t (\d+)/.exec(r.stdout.trim());
    if (!m) throw new Error(`${FLIP_UNIT} did not fail: ${r.stdout}${r.stderr}`);
    return { issuedUs, changedUs: Number(m[1]) };
  }

  async recover(): Promise<void> {
    rmSync(`${this.root}/run/f/flip.fail`, { force: true });
    const r = await this.sb.exec('sh', '-c', `systemctl reset-failed ${FLIP_UNIT}; systemctl start ${FLIP_UNIT}`);
    if (r.code !== 0) throw new Error(`${FLIP_UNIT} does not start again: ${r.stderr}`);
  }
}
