// /proc readers and small statistics for the benchmark.
import { readFileSync, readdirSync, appendFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

/** Clock ticks per second for /proc/PID/stat times (100 on every Linux we know, but ask). */
export const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** Fields of /proc/PID/stat after "pid (comm)": index 0 is field 3 (state). */
function statFields(pid: number): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).trim().split(' ');
  } catch {
    return undefined;
  }
}

export interface Cpu {
  /** utime + stime of the process (all its threads), seconds */
  self: number;
  /** cutime + cstime: its children that it has waited for, seconds */
  children: number;
}

/** CPU of a process so far, or undefined if it is gone. */
export function cpuOf(pid: number): Cpu | undefined {
  const f = statFields(pid);
  if (!f) return undefined;
  // fields 14..17 of stat: utime stime cutime cstime → indexes 11..14 here
  return {
    self: (Number(f[11]) + Number(f[12])) / CLK_TCK,
    children: (Number(f[13]) + Number(f[14])) / CLK_TCK,
  };
}

/**
 * CPU time of a process so far, ns: the sum over its threads of /proc/PID/task/TID/schedstat's first
 * field (time on CPU, exact to the ns), or undefined if it is gone. Clock ticks (/proc/PID/stat) are
 * 10 ms, and 0.1% of a core is 1 ms a second: over a 60 s window a tick is 0.017% of a core. A thread
 * that has exited takes its time with it; the processes measured here keep theirs for their life.
 */
export function cpuNsOf(pid: number): number | undefined {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return undefined;
  }
  let ns = 0;
  for (const tid of tids) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return ns;
}

/** Field 22 (starttime): with the PID, names one process for its whole life. */
export function startTimeOf(pid: number): string | undefined {
  return statFields(pid)?.[19];
}

function commOf(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** First child of `ppid` whose comm is `comm`. */
export function childNamed(ppid: number, comm: string): number | undefined {
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const pid = Number(e);
    const f = statFields(pid);
    if (f && Number(f[1]) === ppid && commOf(pid) === comm) return pid;
  }
  return undefined;
}

export interface Rss {
  /** resident now, KiB */
  rssKb: number;
  /** peak resident over the process's life (VmHWM), KiB */
  hwmKb: number;
}

export interface Mem extends Rss {
  /** the process's own memory, KiB: RssAnon + RssShmem (RSS less the pages of files it maps, such as the node binary) */
  ownKb: number;
}

/** A reader of /proc/PID/status's numeric fields (`kb('VmRSS')`, NaN if absent), or undefined if the process is gone. */
export function statusOf(pid: number): ((key: string) => number) | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  return (key) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? NaN);
}

export function rssOf(pid: number): Mem | undefined {
  const kb = statusOf(pid);
  return kb && { rssKb: kb('VmRSS'), hwmKb: kb('VmHWM'), ownKb: kb('RssAnon') + kb('RssShmem') };
}

/** Records "PID STARTTIME WHAT" in the state dir, so that scripts/perf/bench.sh can kill what is left. */
export function recordPid(pidFile: string | undefined, pid: number | undefined, what: string): void {
  if (!pidFile || pid === undefined) return;
  const start = startTimeOf(pid);
  if (start !== undefined) appendFileSync(pidFile, `${pid} ${start} ${what}\n`);
}

export function loadAvg(): number {
  try {
    return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
  } catch {
    return NaN;
  }
}

// ---- statistics ----

export function quantile(values: readonly number[], q: number): number | undefined {
  if (values.length === 0) return undefined;
  const s = [...values].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo);
}

export const median = (v: readonly number[]) => quantile(v, 0.5);

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
