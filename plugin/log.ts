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

/** One line on stderr, prefixed with the plugin name as the agent's log expects. */
export function logError(message: string): void {
  process.stderr.write(`systemdunits.plugin: ${message.replace(/[\r\n]+/g, ' ')}\n`);
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
