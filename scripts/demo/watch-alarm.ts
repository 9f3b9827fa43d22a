// Prints the status of one alarm of a Netdata agent as it changes: polls /api/v1/alarms?all every
// second and writes a line (local time, status, value, chart, info text) whenever the status or the
// info text of an instance of the alarm changes. Used by scripts/demo/demo.sh.
//
//   node --import tsx scripts/demo/watch-alarm.ts [--url http://127.0.0.1:19999]
//        [--alarm systemd_socket_unit_failed_state] [--interval SECONDS]
// Runs until SIGINT/SIGTERM.
import { parseArgs } from 'node:util';

interface Alarm {
  name: string;
  chart: string;
  status: string;
  value: number | null;
  info: string;
}

const { values } = parseArgs({
  options: {
    url: { type: 'string', default: 'http://127.0.0.1:19999' },
    alarm: { type: 'string', default: 'systemd_socket_unit_failed_state' },
    interval: { type: 'string', default: '1' },
  },
});
const base = values.url!.replace(/\/+$/, '');
const name = values.alarm!;
const intervalMs = Math.max(0.1, Number(values.interval)) * 1000;

const time = () => new Date().toTimeString().slice(0, 8);
const say = (line: string) => process.stdout.write(`${time()}  ${line}\n`);

let stopping = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => (stopping = true));

/** chart → "status\0info" last printed */
const seen = new Map<string, string>();
let down: string | undefined;

async function poll(): Promise<void> {
  let alarms: Record<string, Alarm>;
  try {
    const res = await fetch(`${base}/api/v1/alarms?all`, { signal: AbortSignal.timeout(5000) });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    alarms = ((await res.json()) as { alarms: Record<string, Alarm> }).alarms;
  } catch (err) {
    const why = (err as Error).message;
    if (down === undefined) say(`the agent at ${base} does not answer (${why})`);
    down = why;
    return;
  }
  if (down !== undefined) say(`the agent answers again`);
  down = undefined;
  const mine = Object.values(alarms).filter((a) => a.name === name);
  if (mine.length === 0 && !seen.has('')) {
    say(`${name}: not defined yet (waiting for the plugin's chart)`);
    seen.set('', '');
  }
  for (const a of mine) {
    const key = `${a.status}\0${a.info}`;
    if (seen.get(a.chart) === key) continue;
    seen.set(a.chart, key);
    const value = a.value === null ? '-' : String(a.value);
    say(`${a.status.padEnd(13)} ${name} = ${value} on ${a.chart}: ${a.info}`);
  }
}

while (!stopping) {
  const t0 = Date.now();
  await poll();
  const wait = intervalMs - (Date.now() - t0);
  // Sleep in short steps so that a signal ends the loop promptly.
  for (let left = wait; left > 0 && !stopping; left -= 100) await new Promise((r) => setTimeout(r, Math.min(100, left)));
}
