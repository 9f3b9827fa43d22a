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

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** A name made only of what a unit name holds literally: shown as it is. */
const PLAIN_NAME = /^[A-Za-z0-9:_.@-]*$/;
/**
 * The parts of a unit name: a run of systemd's escapes (lower-case hex, as systemd-escape writes
 * them), a backslash that starts none, or characters no valid unit name holds.
 */
const NAME_PARTS = /((?:\\x[0-9a-f]{2})+)|(\\)|([^A-Za-z0-9:_.@\\-]+)/g;
/**
 * Decoded characters that are shown as their bytes (`%2d`) rather than as themselves: those a unit
 * name may hold literally (`my\x2dapp` must not read as `my-app`), this rendering's own marks `%`
 * and `+`, what the protocol cannot carry, and what cannot be seen (controls, separators, blanks
 * other than the space).
 */
const SHOWN_AS_BYTES = /^(?:[A-Za-z0-9:_.@%+'"\\=`-]|(?! )[\p{C}\p{Z}])$/u;

const hexBytes = (text: string, mark: string): string => [...Buffer.from(text, 'utf8')].map((b) => mark + b.toString(16).padStart(2, '0')).join('');

/**
 * The unit name for people (dimension names, labels, the Function's table): systemd's escapes
 * decoded where that reads better (`esc@my app-café.service`) and kept as `%xx` where the decoded
 * character could be mistaken for one written as such (`my\x2dapp.socket` → `my%2dapp.socket`, not
 * the `my-app.socket` of another unit). A backslash that starts no escape is shown as `+` (as in
 * the dimension ids), and characters no valid unit name holds as `%%xx`. No two names get the same
 * rendering, and the rendering carries nothing the protocol or the agent's JSON cannot:
 *   - `%` and `+` appear only as these marks; characters a name holds literally stand for themselves;
 *   - every other character comes from a maximal run of escapes, whose bytes it spells in UTF-8.
 */
export function readableUnitName(name: string): string {
  if (PLAIN_NAME.test(name)) return name;
  return name.replace(NAME_PARTS, (_, run: string | undefined, backslash: string | undefined, other: string) => {
    if (backslash) return '+';
    if (!run) return hexBytes(other, '%%');
    const bytes = new Uint8Array(run.length / 4);
    for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(run.slice(i * 4 + 2, i * 4 + 4), 16);
    let text: string;
    try {
      text = strictUtf8.decode(bytes);
    } catch {
      return run.replaceAll('\\x', '%'); // not UTF-8: every byte as %xx
    }
    let out = '';
    for (const c of text) out += SHOWN_AS_BYTES.test(c) ? hexBytes(c, '%') : c;
    return out;
  });
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
