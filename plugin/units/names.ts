// Unit names: their type, systemd's escapes, and the names systemd gives their D-Bus objects.

/** `foo.socket` → `socket`; `''` when the name has no suffix. */
export function unitType(name: string): string {
  const dot = name.lastIndexOf('.');
  return dot < 0 ? '' : name.slice(dot + 1);
}

const utf8 = new TextDecoder('utf-8', { fatal: false });

/**
 * Decodes systemd's `\xNN` escapes (`my\x2dapp@1.socket` → `my-app@1.socket`). They stand for
 * bytes, and systemd-escape writes non-ASCII text as its UTF-8 bytes, so runs of them are decoded
 * as UTF-8 (`caf\xc3\xa9.service` → `café.service`); bytes that are not UTF-8 become U+FFFD.
 */
export function decodeUnitName(name: string): string {
  if (!name.includes('\\x')) return name;
  return name.replace(/(?:\\x[0-9a-fA-F]{2})+/g, (run) => {
    const bytes = new Uint8Array(run.length / 4);
    for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(run.slice(i * 4 + 2, i * 4 + 4), 16);
    return utf8.decode(bytes);
  });
}

/** Control characters (C0, DEL, C1) and line or paragraph separators: never shown in a name. */
const UNPRINTABLE = /[\x00-\x1f\x7f-\x9f\u2028\u2029]/g;

/** The unit name for people: escapes decoded, unprintable characters shown as `_`. */
export function readableUnitName(name: string): string {
  return decodeUnitName(name).replace(UNPRINTABLE, '_');
}

/**
 * A dimension id for a unit: its name with each `\` written as `+`. systemd's unit names are made
 * of `[A-Za-z0-9:_.@\-]` and `\`, so this is one-to-one (no unit name contains `+`), needs no
 * escaping in the protocol or the agent's JSON, and depends on the name alone: the same unit gets
 * the same id whatever other units exist or in which order they came.
 */
export function unitDimensionId(name: string): string {
  return name.replaceAll('\\', '+');
}

/**
 * The unit name behind a systemd object path. systemd escapes every byte that is not
 * [A-Za-z0-9] as `_xx` (bus_label_escape), so this is exact for paths systemd returns.
 * `/org/freedesktop/systemd1/unit/foo_2esocket` → `foo.socket`; undefined for other paths.
 */
export function unitNameFromPath(path: string): string | undefined {
  if (!path.startsWith(UNIT_PATH_PREFIX)) return undefined;
  const label = path.slice(UNIT_PATH_PREFIX.length);
  if (label === '' || label.includes('/')) return undefined;
  const bytes: number[] = [];
  for (let i = 0; i < label.length; i++) {
    const c = label[i]!;
    if (c === '_' && i + 2 < label.length && /^[0-9a-f]{2}$/.test(label.slice(i + 1, i + 3))) {
      bytes.push(parseInt(label.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(c.charCodeAt(0));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

const UNIT_PATH_PREFIX = '/org/freedesktop/systemd1/unit/';

/**
 * The object path systemd gives a unit (bus_label_escape): every byte of the UTF-8 name that is not
 * [A-Za-z0-9], and a leading digit, becomes `_xx`. Derived rather than stored: at 10,000 units the
 * paths and an index by path would be a tenth of the plugin's heap.
 */
export function unitPath(name: string): string {
  let label = '';
  const bytes = Buffer.from(name, 'utf8');
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    const alpha = (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a);
    const digit = b >= 0x30 && b <= 0x39;
    label += alpha || (digit && i > 0) ? String.fromCharCode(b) : `_${b.toString(16).padStart(2, '0')}`;
  }
  return UNIT_PATH_PREFIX + label;
}

/** A short, stable hash of a name (FNV-1a, 8 hex digits): tells apart ids that clean up alike. */
export function nameHash(text: string): string {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(text, 'utf8')) h = Math.imul(h ^ byte, 0x01000193) >>> 0;
  return h.toString(16).padStart(8, '0');
}
