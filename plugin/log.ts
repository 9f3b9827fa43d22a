// Diagnostics. stdout belongs to the Netdata protocol, so everything here goes to stderr:
// `debug` namespaces (enable with DEBUG=systemdunits:*) for detail, and plain one-line errors
// that land in the agent's error log.
import createDebug from 'debug';

export function debugFor(area: string): createDebug.Debugger {
  // debug's default sink for Node is stderr, which is what the protocol needs.
  return createDebug(`systemdunits:${area}`);
}

const lastSaid = new Map<string, number>();
/** Keys remembered at most: callers use a few fixed keys, and a caller's bug must not grow this. */
const MAX_KEYS = 256;

let stamped = false;

/**
 * Whether stderr lines need a time of their own: where they land depends on the agent.
 * NETDATA_LOG_METHOD is what a v1.44+ agent tells its plugins: `journal` and `syslog` add the time
 * themselves; `stderr` (v2 with a log file) and no value at all (1.37.1, whose error.log holds the
 * plugin's stderr as it is; or a person at a terminal) do not.
 */
export function wantsTimestamps(env: NodeJS.ProcessEnv): boolean {
  const method = env.NETDATA_LOG_METHOD?.trim().toLowerCase();
  return method !== 'journal' && method !== 'syslog';
}

/** main decides once, from the environment (see wantsTimestamps). */
export function useTimestamps(on: boolean): void {
  stamped = on;
}

/** `2026-12-07 06:40:53: `, local time, the form of 1.37.1's own error.log lines. */
export function timestamp(at = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${at.getFullYear()}-${p(at.getMonth() + 1)}-${p(at.getDate())} ${p(at.getHours())}:${p(at.getMinutes())}:${p(at.getSeconds())}: `;
}

/** One line on stderr, prefixed with the plugin name as the agent's log expects. */
export function logError(message: string): void {
  process.stderr.write(`${stamped ? timestamp() : ''}systemdunits.plugin: ${message.replace(/[\r\n]+/g, ' ')}\n`);
}

/** Like logError, but the same key is said at most once per `everyMs` (reconnect loops, bad signals). */
export function logErrorThrottled(key: string, message: string, everyMs = 60_000): void {
  const now = Date.now();
  const last = lastSaid.get(key);
  if (last !== undefined && now - last < everyMs) return;
  lastSaid.delete(key);
  if (lastSaid.size >= MAX_KEYS) lastSaid.delete(lastSaid.keys().next().value!);
  lastSaid.set(key, now);
  logError(message);
}

export function errorText(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
